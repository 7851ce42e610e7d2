"""The outbox: every Slack message is stored first and posted after, retried until Slack accepts it.

A card becomes one `chat.postMessage` to the alert channel (or the channel ROUTES gave it); its channel
and ts are then stored on the alert so updates edit that message (`chat.update`) and follow-ups go to
its thread, in that channel. Items of one
alert go out in order, and an item whose card is not posted yet waits for it. Tokens are never
logged: only method names and error codes.

Exactly one card per alert, across crashes and slow answers: a card is posted with Slack message
metadata (`event_type` bucketwatch_alert, the alert id in `event_payload`), and the row records when
an attempt started (`attempt_started_at`). When that attempt's outcome is unknown — the process died
after claiming it, or the call timed out or got a 5xx — the next attempt first looks for the card with
`conversations.history` (`include_all_metadata`) and adopts it instead of posting a second one.

Rate limits are handled here, not in the WebClient: a 429 reschedules that one item after its
Retry-After and the flush goes on with the others. slack-sdk's RateLimitErrorRetryHandler would sleep
inside the call (Retry-After: 20, three times, held `flush()` and its lock for 40 s), and any in-call
retry of chat.postMessage after a dropped connection can post a card twice. So the outbox calls Slack
through a copy of the client without retry handlers; every failure comes back here and is rescheduled.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from slack_sdk import WebClient

from bot.core.clock import iso, utcnow
from bot.slack.outbox_calls import METADATA_TYPE, SLOW_RETRY, Retry, SlackCalls, backoff, blocks_of, log_fields
from bot.slack.webclient import without_retries
from bot.store.database import Store

log = logging.getLogger(__name__)

Render = Callable[[int], tuple[str, list[Any]]]


class ItemKind(StrEnum):
    """What an outbox item posts (its `kind` column)."""

    CARD = "card"  # the alert's one top-level message, with metadata naming it
    UPDATE = "update"  # chat.update of the card
    THREAD = "thread"  # a reply in the card's thread
    MESSAGE = "message"  # a message not about one alert (digest, expiry reminders) to ALERT_CHANNEL
    DM = "dm"  # a direct message (asking the actor), with metadata to find it again
# A claimed item is due again only after this: another process (`poll --once` beside the bot) skips it,
# and an item whose sender died mid-call is retried once the lease runs out. One attempt is at most a
# look-up and a post, each bounded by the client's 15 s timeout and never retried in the call.
LEASE = timedelta(minutes=1)
# After this many failed attempts (hours of backoff) an item is set aside as failed: `status` counts it.
MAX_ATTEMPTS = 20
WAITING = "waiting for the card"
CARD_FAILED = "the card was never posted"
# Due items, minus those queued behind an item of the same alert that is not due (order within an alert).
_DUE = """SELECT * FROM outbox AS o
WHERE o.sent_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= :now AND NOT EXISTS (
  SELECT 1 FROM outbox AS p WHERE p.alert_id IS o.alert_id AND p.id != o.id AND p.sent_at IS NULL
  AND p.failed_at IS NULL AND p.next_attempt_at > :now AND (p.kind = 'card' OR (o.kind != 'card' AND p.id < o.id)))
ORDER BY o.id LIMIT :limit"""


class Outbox:
    """Stored-then-posted Slack messages for alerts: cards, card updates and thread replies."""

    def __init__(
        self,
        store: Store,
        slack: WebClient,
        channel: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        render: Render | None = None,
    ):
        self.store = store
        self.slack = without_retries(slack)
        self.calls = SlackCalls(self.slack, lambda: self.clock())  # tests move the clock after building this
        self.channel = channel
        self.clock = clock
        self.render = render
        self._flushing = threading.Lock()

    # ---- enqueue -------------------------------------------------------------------------------
    def _insert(self, alert_id: int | None, kind: ItemKind, payload: dict[str, Any] | None = None) -> int:
        now = iso(self.clock())
        row = {
            "alert_id": alert_id,
            "kind": kind,
            "payload": json.dumps(payload or {}),
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
        }
        return int(self.store.db.table("outbox").insert(row).last_pk or 0)

    def _pending(self, alert_id: int, kind: ItemKind) -> int | None:
        found = self.store.db.execute(
            "SELECT id FROM outbox WHERE alert_id = ? AND kind = ? AND sent_at IS NULL AND failed_at IS NULL"
            " ORDER BY id LIMIT 1",
            [alert_id, kind],
        ).fetchone()
        return int(found[0]) if found else None

    def enqueue_card(self, alert_id: int, channel: str | None = None) -> int:
        """The alert's card; at most one per alert, ever (a second call returns the first item).

        `channel`: where ROUTES sends it (default the alert channel); kept on the item, so a retry looks
        for the card, and posts it, in the channel the first attempt used."""
        with self.store.atomic() as db:
            found = db.execute(
                "SELECT id FROM outbox WHERE alert_id = ? AND kind = 'card' LIMIT 1", [alert_id]
            ).fetchone()
            if found:
                return int(found[0])
            # The card renders from the store when sent: pending updates of it are moot.
            db.execute("DELETE FROM outbox WHERE alert_id = ? AND kind = 'update' AND sent_at IS NULL", [alert_id])
            return self._insert(alert_id, ItemKind.CARD, {"channel": channel} if channel else None)

    def has_card(self, alert_id: int) -> bool:
        """Whether the alert's card was ever queued (posted, pending or given up)."""
        sql = "SELECT 1 FROM outbox WHERE alert_id = ? AND kind = 'card' LIMIT 1"
        return self.store.db.execute(sql, [alert_id]).fetchone() is not None

    def enqueue_update(self, alert_id: int) -> int | None:
        """Re-render the card in place; pending updates coalesce, and an unsent card needs none."""
        with self.store.atomic():
            if self._pending(alert_id, ItemKind.CARD) is not None:
                return None  # The card renders from the store when it is sent.
            return self._pending(alert_id, ItemKind.UPDATE) or self._insert(alert_id, ItemKind.UPDATE)

    def enqueue_thread(self, alert_id: int, text: str, blocks: list[Any] | None = None, *,
                       broadcast: bool = False) -> int:
        """A reply in the card's thread (waits until the card is posted); `broadcast`: also in the channel."""
        payload: dict[str, Any] = {"text": text, "blocks": blocks_of(blocks)}
        if broadcast:
            payload["reply_broadcast"] = True
        with self.store.atomic():
            return self._insert(alert_id, ItemKind.THREAD, payload)

    def enqueue_message(self, text: str, blocks: list[Any] | None = None) -> int:
        """A top-level message in the alert channel that belongs to no alert (reminders, digest)."""
        with self.store.atomic():
            return self._insert(None, ItemKind.MESSAGE, {"text": text, "blocks": blocks_of(blocks)})

    def enqueue_dm(self, channel: str, text: str, blocks: list[Any] | None, metadata: dict[str, Any]) -> int:
        """A direct message (channel D…), posted once: like a card, an attempt of unknown outcome is first
        looked up in that conversation by its `metadata` (event_type, event_payload) before posting again."""
        payload = {"channel": channel, "text": text, "blocks": blocks_of(blocks), "metadata": metadata}
        with self.store.atomic():
            return self._insert(None, ItemKind.DM, payload)

    def withdraw(self, item_id: int) -> bool:
        """Take back an item not sent (a DM whose question is settled another way): it is never sent, and
        `retry_failed` cannot put it back. False if it was sent meanwhile."""
        with self.store.atomic() as db:
            return db.execute("DELETE FROM outbox WHERE id = ? AND sent_at IS NULL", [item_id]).rowcount == 1

    # ---- status --------------------------------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        """Unsent items still being tried, with attempts and last error, oldest first (status, doctor)."""
        where = "sent_at IS NULL AND failed_at IS NULL"
        return list(self.store.db.table("outbox").rows_where(where, order_by="id"))

    def failed(self) -> int:
        """How many items were given up on (dead letter) after MAX_ATTEMPTS; `status` shows the count."""
        return self.store.db.table("outbox").count_where("sent_at IS NULL AND failed_at IS NOT NULL")

    def failed_items(self) -> list[dict[str, Any]]:
        """The given-up items with their last error, oldest first."""
        where = "sent_at IS NULL AND failed_at IS NOT NULL"
        return list(self.store.db.table("outbox").rows_where(where, order_by="id"))

    def retry_failed(self) -> int:
        """Put every given-up item back in the queue (after an admin fixed the channel or token)."""
        with self.store.atomic() as db:
            cursor = db.execute(
                "UPDATE outbox SET failed_at = NULL, attempts = 0, next_attempt_at = ?"
                " WHERE sent_at IS NULL AND failed_at IS NOT NULL",
                [iso(self.clock())],
            )
            return cursor.rowcount

    # ---- send ----------------------------------------------------------------------------------
    def flush(self, *, limit: int = 200) -> int:
        """Send every due item in order; returns how many Slack accepted. Never raises."""
        if not self._flushing.acquire(blocking=False):
            return 0  # Another thread is flushing; it will send these too.
        try:
            return self._flush(limit)
        finally:
            self._flushing.release()

    def flush_for(self, alert_id: int, *, wait: float = 3.0, sleep: Callable[[float], None] = time.sleep) -> None:
        """Send what a press queued for one alert now (card update, thread lines), not at the next job.

        When another thread holds the flush lock its pass may have missed these rows: go again shortly,
        for at most `wait` seconds (then the scheduler's next flush sends them)."""
        deadline = time.monotonic() + wait
        while True:
            self.flush()
            if not self._due_for(alert_id) or time.monotonic() > deadline:
                return
            sleep(0.05)

    def _due_for(self, alert_id: int) -> bool:
        """Items of this alert not tried yet that could be sent now (its card is posted, or it is the card)."""
        row = self.store.db.execute(
            "SELECT count(*) FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE o.alert_id = ?"
            " AND o.sent_at IS NULL AND o.attempts = 0 AND (a.ts IS NOT NULL OR o.kind = 'card')",
            [alert_id],
        ).fetchone()
        return bool(row and row[0])

    def _claim(self, row: dict[str, Any]) -> bool:
        """Take the item for this process (a lease), so another process flushing now skips it.

        A card's claim also records that an attempt started; it stays set until the outcome is known,
        so a claim that finds it set (the sender died, or timed out) looks for the card first."""
        now = self.clock()
        with self.store.atomic() as db:
            cursor = db.execute(
                "UPDATE outbox SET next_attempt_at = ?, last_error = NULLIF(last_error, ?),"
                " attempt_started_at = CASE WHEN kind IN ('card', 'dm') THEN coalesce(attempt_started_at, ?) END"
                " WHERE id = ? AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?",
                [iso(now + LEASE), WAITING, iso(now), row["id"], iso(now)],
            )
            return cursor.rowcount == 1

    def _flush(self, limit: int) -> int:
        rows = [dict(r) for r in self.store.db.query(_DUE, {"now": iso(self.clock()), "limit": limit})]
        # Cards first: everything else about an alert waits for its card anyway.
        rows.sort(key=lambda r: (r["kind"] != ItemKind.CARD, r["id"]))
        blocked: set[int] = set()
        sent = 0
        for row in rows:
            alert_id = row["alert_id"]
            key = alert_id if alert_id is not None else -1
            if key in blocked or not self._claim(row):
                blocked.add(key)  # Later items of the same alert keep their order.
                continue
            try:
                ts = self._send(row)
            except Retry as retry:
                blocked.add(key)
                self._reschedule(row, retry.error, retry.after, unknown=retry.unknown)
                continue
            except Exception as error:  # A render bug must not stop the scheduler: record and back off.
                blocked.add(key)
                log.exception("outbox item %s (%s) failed", row["id"], row["kind"], extra=log_fields(row))
                self._reschedule(row, f"{type(error).__name__}", backoff(row), unknown=True)
                continue
            if ts is None:
                blocked.add(key)
                self._wait_for_card(row)
                continue
            self.store.db.table("outbox").update(
                row["id"],
                {"sent_at": iso(self.clock()), "ts": ts, "attempts": (row["attempts"] or 0) + 1,
                 "attempt_started_at": None},
            )
            if row["kind"] == ItemKind.CARD:
                self._release_waiting(alert_id)
            sent += 1
        return sent

    def _wait_for_card(self, row: dict[str, Any]) -> None:
        """No card to reply under or update yet: not an attempt; given up with the card if it failed."""
        with self.store.atomic() as db:
            sql = ("SELECT count(*), count(failed_at) FROM outbox"
                   " WHERE alert_id = ? AND kind = 'card' AND sent_at IS NULL")
            cards = db.execute(sql, [row["alert_id"]]).fetchone()
            if cards[0] and cards[0] == cards[1]:
                db.execute("UPDATE outbox SET failed_at = ?, last_error = ? WHERE id = ?",
                           [iso(self.clock()), CARD_FAILED, row["id"]])
                return
            # The card is pending (or not enqueued yet: an alert accepted by an exception); posting it
            # makes this item due again at once (_release_waiting).
            db.execute("UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
                       [iso(self.clock() + SLOW_RETRY), WAITING, row["id"]])

    def _release_waiting(self, alert_id: int) -> None:
        with self.store.atomic() as db:
            db.execute(
                "UPDATE outbox SET next_attempt_at = ?, last_error = NULL"
                " WHERE alert_id = ? AND sent_at IS NULL AND failed_at IS NULL AND last_error = ?",
                [iso(self.clock()), alert_id, WAITING],
            )

    def _reschedule(self, row: dict[str, Any], error: str, after: timedelta, *, unknown: bool = False) -> None:
        attempts = (row["attempts"] or 0) + 1
        now = self.clock()
        values: dict[str, Any] = {"attempts": attempts, "last_error": error, "next_attempt_at": iso(now + after)}
        if not unknown:
            values["attempt_started_at"] = None  # Slack said no: nothing to look for next time
        if attempts >= MAX_ATTEMPTS:
            values["failed_at"] = iso(now)
            log.error("outbox item %s (%s, alert %s) given up after %s attempts: %s",
                      row["id"], row["kind"], row["alert_id"], attempts, error, extra=log_fields(row))
        else:
            log.warning("outbox item %s (%s, alert %s) not sent: %s; retry in %ss", row["id"], row["kind"],
                        row["alert_id"], error, int(after.total_seconds()), extra=log_fields(row))
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self.store.atomic() as db:
            db.execute(f"UPDATE outbox SET {assignments} WHERE id = ?", [*values.values(), row["id"]])  # noqa: S608
            if "failed_at" in values and row["kind"] == ItemKind.CARD and row["alert_id"] is not None:
                # Nothing about this alert can be posted without its card: set its items aside too.
                db.execute(
                    "UPDATE outbox SET failed_at = ?, last_error = ? WHERE alert_id = ? AND sent_at IS NULL"
                    " AND failed_at IS NULL",
                    [values["failed_at"], CARD_FAILED, row["alert_id"]],
                )

    def _alert_message(self, alert_id: int) -> tuple[str | None, str | None]:
        found = self.store.db.execute("SELECT channel, ts FROM alerts WHERE id = ?", [alert_id]).fetchone()
        return (found[0], found[1]) if found else (None, None)

    def _send(self, row: dict[str, Any]) -> str | None:
        """One item to Slack; the message ts, None if it must wait for its card, Retry on failure."""
        kind, alert_id = row["kind"], row["alert_id"]
        payload = json.loads(row["payload"] or "{}")
        if kind == ItemKind.MESSAGE:
            return self.calls.post(
                "chat_postMessage",
                row,
                channel=self.channel,
                text=payload.get("text", ""),
                blocks=payload.get("blocks") or None,
            )
        if kind == ItemKind.DM:
            found = self.calls.find_dm(row, payload) if row.get("attempt_started_at") else None
            return found or self.calls.post(
                "chat_postMessage", row, channel=payload["channel"], text=payload.get("text", ""),
                blocks=payload.get("blocks") or None, metadata=payload.get("metadata"),
                unfurl_links=False, unfurl_media=False,
            )
        if kind == ItemKind.CARD:
            if self.render is None:
                raise Retry("no renderer wired for cards", backoff(row))
            text, blocks = self.render(alert_id)
            target = payload.get("channel") or self.channel  # ROUTES chose it when the card was queued
            found = self.calls.find_card(row, target) if row.get("attempt_started_at") else None
            card_channel: str | None
            if found is not None:
                log.info("outbox item %s: the card of alert %s was posted before (ts %s); adopted",
                         row["id"], alert_id, found)
                card_channel, card_ts = target, found
            else:
                response = self.calls.call(
                    "chat_postMessage",
                    row,
                    channel=target,
                    text=text,
                    blocks=blocks_of(blocks),
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata={"event_type": METADATA_TYPE, "event_payload": {"alert_id": alert_id}},
                    full=True,
                )
                card_channel, card_ts = response["channel"] or target, response["ts"]
            if not card_ts:
                raise Retry("Slack returned no ts for the card", backoff(row))
            with self.store.atomic():
                self.store.db.table("alerts").update(alert_id, {"channel": card_channel, "ts": card_ts})
                if found is not None:
                    # The adopted card shows the alert as it was at the lost attempt, and updates made since
                    # were dropped (an unsent card needs none): re-render it now.
                    self._pending(alert_id, ItemKind.UPDATE) or self._insert(alert_id, ItemKind.UPDATE)
            return str(card_ts)
        channel, ts = self._alert_message(alert_id)
        if not ts:
            return None
        if kind == ItemKind.UPDATE:
            if self.render is None:
                raise Retry("no renderer wired for cards", backoff(row))
            text, blocks = self.render(alert_id)
            return self.calls.post("chat_update", row, channel=channel, ts=ts, text=text, blocks=blocks_of(blocks))
        return self.calls.post(
            "chat_postMessage",
            row,
            channel=channel,
            thread_ts=ts,
            text=payload.get("text", ""),
            blocks=payload.get("blocks") or None,
            reply_broadcast=True if payload.get("reply_broadcast") else None,
            unfurl_links=False,
            unfurl_media=False,
        )

