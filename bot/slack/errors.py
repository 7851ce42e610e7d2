"""A failed Slack call in one line: which method, and Slack's error code.

A refused call (`not_in_channel`, `invalid_auth`, a rate limit) is an operating condition, not a bug:
it is logged as one line with the code, never as a traceback, and never with the request or response
body (which hold the message text and, in the request, the token).
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError


def slack_failure(exc: BaseException) -> str | None:
    """`Slack chat.postMessage: channel_not_found` when `exc` (or what caused it) is a failed Slack call."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SlackApiError):
            method = str(getattr(current.response, "api_url", "") or "").rstrip("/").rsplit("/", 1)[-1]
            data = current.response.data if isinstance(current.response.data, dict) else {}
            code = data.get("error") or f"http {current.response.status_code}"
            return f"Slack {method or 'call'}: {code}"
        if isinstance(current, SlackClientError):
            return f"Slack client: {type(current).__name__}"
        current = current.__cause__ or current.__context__
    return None
