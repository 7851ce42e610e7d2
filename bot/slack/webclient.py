"""The WebClient's retry policy and the Slack error codes the outbox sorts failures by.

Rate limits are not retried inside a call: slack-sdk's RateLimitErrorRetryHandler sleeps Retry-After in
the call (20 s or more), holding whatever thread made it. The outbox reschedules a 429'd message after
Retry-After and sends the others meanwhile; listeners' private replies are best effort.
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler

# Errors that no retry soon will cure: an admin has to invite the bot or fix the token.
PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "is_archived",
        "missing_scope",
        "restricted_action",
        "team_access_not_granted",
        "ekm_access_denied",
    }
)
# The message itself is the problem: send the text alone so the channel still hears about it.
BAD_PAYLOAD = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_attachments"})
GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed", "thread_not_found"})


def retry_handlers() -> list[RetryHandler]:
    """Retry handlers for the shared WebClient (listeners' replies, views, look-ups): 5xx and dropped
    connections are retried in the call, briefly. Not rate limits: RateLimitErrorRetryHandler sleeps
    Retry-After inside the call (20 s or more), holding a listener thread, while a modal's trigger_id
    dies after 3 s anyway; a press's private reply lost to a 429 is logged, and everything that must
    arrive goes through the outbox, which reschedules after Retry-After without sleeping."""
    return [ConnectionErrorRetryHandler(max_retry_count=2), ServerErrorRetryHandler(max_retry_count=2)]


def without_retries(client: WebClient) -> WebClient:
    """A copy of `client` that never retries inside a call (see the module docstring)."""
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=dict(client.headers or {}),
        logger=client.logger,
        retry_handlers=[],
    )



def retry_after(headers: Any) -> int:
    """Seconds from a 429's Retry-After header (at least 1; 1 when missing or unreadable)."""
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    value = value[0] if isinstance(value, list) and value else value
    try:
        return max(int(str(value)), 1)
    except ValueError:
        return 1
