"""The Slack stand-in's wire: request parameters as Slack reads them (JSON or form fields), what Slack
refuses in a message, and writing an answer.
"""

from __future__ import annotations

import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

# Form fields Slack reads as JSON.
JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "user_ids")


def parse_params(body: bytes, content_type: str, query: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
    if not body:
        return params
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return params
        return {**params, **data} if isinstance(data, dict) else params
    if "x-www-form-urlencoded" in content_type:
        for key, value in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            if key in JSON_FIELDS or key in ("files",):
                try:
                    params[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            params[key] = value
        return params
    return {**params, "_body": body[:1000].decode("utf-8", "replace")}


def check_message(p: dict[str, Any]) -> str | None:
    """What Slack would refuse: no content, more than 50 blocks, a section text over 3000 characters."""
    blocks = p.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks_format"
    if not p.get("text") and not blocks:
        return "no_text"
    if blocks:
        if len(blocks) > 50:
            return "invalid_blocks"
        for block in blocks:
            text = block.get("text") if isinstance(block, dict) else None
            if isinstance(text, dict) and len(str(text.get("text", ""))) > 3000:
                return "invalid_blocks"
    return None


def send(
    request: BaseHTTPRequestHandler,
    status: int,
    payload: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> None:
    body = json.dumps(payload).encode() if payload is not None else b"<html>upstream error</html>"
    request.send_response(status)
    request.send_header(
        "Content-Type", "application/json; charset=utf-8" if payload is not None else "text/html"
    )
    request.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.end_headers()
    request.wfile.write(body)
