"""Requests as Slack sends them: signed v0 bodies for slash commands, block_actions, view_submission.

Slack signs `v0:{timestamp}:{body}` with HMAC-SHA256 of the signing secret and sends the hex digest as
`X-Slack-Signature: v0=…` with `X-Slack-Request-Timestamp` (api.slack.com/authentication/verifying-requests-from-slack).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

SECRET = "test-signing-secret"
TEAM = {"id": "T0TEST", "domain": "test"}


def _trigger_id() -> str:
    """Slack gives every request its own trigger_id: two identical presses are never identical bytes."""
    return f"{time.time_ns()}.42.abc"


def sign(body: str, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds to every request."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_body(
    text: str, *, user: str = "U0ALICE", command: str = "/bucketwatch", channel: str = "C0ALERTS"
) -> dict[str, str]:
    """The form fields of a slash command invocation."""
    return {
        "token": "legacy-unused",
        "team_id": TEAM["id"],
        "team_domain": TEAM["domain"],
        "channel_id": channel,
        "channel_name": "alerts",
        "user_id": user,
        "user_name": user.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A0TEST",
        "response_url": "http://127.0.0.1:9/unused",
        "trigger_id": _trigger_id(),
    }


def block_action(
    action_id: str,
    value: str,
    *,
    user: str = "U0ALICE",
    channel: str = "C0ALERTS",
    message_ts: str = "1700000000.000100",
    response_url: str = "http://127.0.0.1:9/unused",
) -> dict[str, Any]:
    """A block_actions payload for one button press on a channel message."""
    return {
        "type": "block_actions",
        "team": TEAM,
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0TEST",
        "token": "legacy-unused",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": _trigger_id(),
        "channel": {"id": channel, "name": "alerts"},
        "message": {"type": "message", "ts": message_ts, "text": "card", "blocks": []},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "actions",
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def view_submission(
    callback_id: str, values: dict[str, dict[str, dict[str, Any]]], private_metadata: str, *, user: str = "U0ALICE"
) -> dict[str, Any]:
    """A view_submission payload; `values` is view.state.values (block_id → action_id → value)."""
    return {
        "type": "view_submission",
        "team": TEAM,
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0TEST",
        "token": "legacy-unused",
        "trigger_id": _trigger_id(),
        "view": {
            "id": "V0TEST",
            "team_id": TEAM["id"],
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": values},
            "hash": "1.abc",
        },
    }


def encode_form(fields: dict[str, str]) -> str:
    return urllib.parse.urlencode(fields)


def encode_payload(payload: dict[str, Any]) -> str:
    """Interactivity requests arrive as a form with one `payload` field holding JSON."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


@dataclass
class Reply:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def post(
    url: str,
    body: str,
    *,
    headers: dict[str, str] | None = None,
    signed: bool = True,
    secret: str = SECRET,
    timestamp: int | None = None,
) -> Reply:
    """POST a form body to the app, signed unless told otherwise, and return status and body."""
    all_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        all_headers.update(sign(body, secret, timestamp))
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=body.encode(), headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.read().decode())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read().decode())
