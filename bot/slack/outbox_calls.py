"""The outbox's side of Slack: one call with every failure turned into a `Retry`, and the look-ups that
find a card (or a DM) an earlier attempt may have posted, by the metadata it carries.

bot.slack.outbox decides what to send and when; this module only talks to the Web API. A 429 or a 5xx is
never retried here (the outbox reschedules that one item); see the outbox's docstring for why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.core.clock import parse_iso
from bot.slack.mrkdwn import inert
from bot.slack.webclient import BAD_PAYLOAD, GONE, PERMANENT, retry_after

log = logging.getLogger("bot.slack.outbox")  # the outbox's own logger: one place to read its story

METADATA_TYPE = "bucketwatch_alert"
HISTORY_PAGES = 10  # conversations.history pages (200 messages each) searched for a card of unknown outcome
SLOW_RETRY = timedelta(minutes=15)
MAX_BACKOFF = timedelta(minutes=10)


def log_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The log record's fields (LOG_FORMAT=json shows them): the alert an item belongs to, if any."""
    return {"alert_id": row["alert_id"]} if row.get("alert_id") is not None else {}


def blocks_of(blocks: list[Any] | None) -> list[dict[str, Any]]:
    return inert(blocks)  # every mrkdwn object verbatim: no auto-linked @channel, URL or domain


class Retry(Exception):
    """Reschedule this item: `after` from now, with `error` recorded; `unknown`: Slack may have taken it."""

    def __init__(self, error: str, after: timedelta, *, unknown: bool = False):
        super().__init__(error)
        self.error, self.after, self.unknown = error, after, unknown


def backoff(row: dict[str, Any]) -> timedelta:
    """5 s doubling with each attempt, at most MAX_BACKOFF."""
    return min(timedelta(seconds=5 * 2 ** min(row["attempts"] or 0, 10)), MAX_BACKOFF)


class SlackCalls:
    """Calls the Web API for outbox items (a client without retry handlers)."""

    def __init__(self, slack: WebClient, clock: Callable[[], datetime]):
        self.slack, self.clock = slack, clock

    def find_card(self, row: dict[str, Any], channel: str) -> str | None:
        """The ts of this alert's card if an earlier attempt posted it (metadata names the alert), else None.

        Searches the card's channel from a little before the item was created. A failed look-up raises
        _Retry (post nothing rather than risk a second card), except when the token may not read the
        channel's history (missing_scope, not_in_channel …): then posting again is the lesser harm."""
        alert_id = row["alert_id"]
        since = parse_iso(row.get("created_at")) or self.clock()
        oldest = f"{(since - timedelta(minutes=5)).timestamp():.6f}"
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            try:
                page = self.call("conversations_history", row, raw=True, channel=channel, oldest=oldest,
                                  limit=200, include_all_metadata=True, cursor=cursor)
            except Retry as retry:
                if retry.error in PERMANENT:
                    log.warning("outbox item %s: cannot search the channel for the card (%s); posting it",
                                row["id"], retry.error)
                    return None
                raise Retry(f"history: {retry.error}", retry.after, unknown=True) from None
            for message in page.get("messages") or ():
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == METADATA_TYPE and str(payload.get("alert_id")) == str(alert_id):
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not cursor:
                return None
        return None

    def find_dm(self, row: dict[str, Any], payload: dict[str, Any]) -> str | None:
        """The ts of this DM if an earlier attempt posted it (same metadata), else None (as `find_card`;
        a conversation with the bot is short, so one page of its recent history is enough)."""
        since = parse_iso(row.get("created_at")) or self.clock()
        try:
            page = self.call("conversations_history", row, raw=True, channel=payload["channel"], limit=200,
                              oldest=f"{(since - timedelta(minutes=5)).timestamp():.6f}", include_all_metadata=True)
        except Retry as retry:
            if retry.error in PERMANENT:
                return None
            raise Retry(f"history: {retry.error}", retry.after, unknown=True) from None
        wanted = payload.get("metadata") or {}
        keys = ("event_type", "event_payload")
        found = [m for m in page.get("messages") or ()
                 if wanted and all((m.get("metadata") or {}).get(k) == wanted.get(k) for k in keys)]
        return str(found[0]["ts"]) if found else None

    def post(self, method: str, row: dict[str, Any], **kwargs: Any) -> str:
        """`call` for a message: its ts ("dropped:<code>" when the channel is gone)."""
        return str(self.call(method, row, **kwargs))

    def call(self, method: str, row: dict[str, Any], *, full: bool = False, raw: bool = False, **kwargs: Any) -> Any:
        """Call Slack; turn every failure into _Retry (or a text-only resend for a rejected layout)."""
        try:
            response = getattr(self.slack, method)(**kwargs)
        except SlackApiError as error:
            status = error.response.status_code
            code = (
                str((error.response.data or {}).get("error", ""))
                if isinstance(error.response.data, dict)
                else ""
            )
            if status == 429:
                raise Retry("ratelimited", timedelta(seconds=retry_after(error.response.headers))) from None
            if status >= 500 or not code:
                # Slack may have posted before failing: the next attempt at a card looks for it first.
                raise Retry(f"http {status}", backoff(row), unknown=True) from None
            if code in BAD_PAYLOAD and kwargs.get("blocks"):
                log.warning(
                    "Slack rejected the layout of outbox item %s (%s); sending text only", row["id"], code,
                    extra=log_fields(row),
                )
                kwargs["blocks"] = None
                return self.call(method, row, full=full, **kwargs)
            if code in GONE:
                log.warning("outbox item %s dropped: %s", row["id"], code, extra=log_fields(row))
                return f"dropped:{code}" if not full else {"channel": None, "ts": None}
            after = SLOW_RETRY if code in PERMANENT else backoff(row)
            raise Retry(code, after) from None
        except (SlackClientError, OSError) as error:
            # A timeout or a dropped connection: the request may have reached Slack.
            raise Retry(type(error).__name__, backoff(row), unknown=True) from None
        if raw:
            return response
        if full:
            return {"channel": response.get("channel"), "ts": response.get("ts")}
        return str(response.get("ts") or response.get("message_ts") or "ok")
