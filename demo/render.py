"""Render Slack messages (Block Kit JSON as sent to the Web API) as terminal text.

Used by `demo` to show what a channel would see. Slack's own renderer is not available offline;
this keeps the structure (header, fields, buttons) and turns mrkdwn entities back into text.
"""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime
from typing import Any

_DATE = re.compile(r"<!date\^(\d+)\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)>")
_GROUP = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")


def _inline(text: str, users: dict[str, str] | None = None) -> str:
    text = _DATE.sub(lambda m: datetime.fromtimestamp(int(m.group(1)), UTC).strftime("%Y-%m-%d %H:%M UTC"), text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    text = _USER.sub(lambda m: "@" + (users or {}).get(m.group(1), m.group(1)), text)
    text = _GROUP.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return str(obj or "")


def render_blocks(blocks: list[dict[str, Any]], *, fallback: str = "", width: int = 96,
                  users: dict[str, str] | None = None) -> list[str]:
    """Lines of text for a message's blocks (or its fallback text when it has none)."""
    if not blocks:
        return textwrap.wrap(_inline(fallback, users), width) or [""]
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _inline(_text_of(block.get("text")), users)
            lines += [title, "─" * min(width, len(title))]
        elif kind == "section":
            if block.get("text"):
                for para in _inline(_text_of(block["text"]), users).splitlines():
                    lines += textwrap.wrap(para, width) or [""]
            for fld in block.get("fields") or ():
                flat = _inline(_text_of(fld), users).replace("\n", " ")
                lines += textwrap.wrap(flat, width, subsequent_indent="    ")
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                lines.append(f"    [ {_inline(_text_of(accessory.get('text')), users)} ]")
        elif kind == "context":
            parts = [_inline(_text_of(e), users) for e in block.get("elements") or ()]
            lines += textwrap.wrap("  ".join(p for p in parts if p), width)
        elif kind == "actions":
            buttons = []
            for element in block.get("elements") or ():
                label = _inline(_text_of(element.get("text")), users)
                style = element.get("style")
                buttons.append(f"[ {label} ]" + ("!" if style == "danger" else ""))
            lines.append("  ".join(buttons))
        elif kind == "divider":
            lines.append("·" * 24)
        elif kind == "rich_text" or kind == "image":
            continue
    return lines
