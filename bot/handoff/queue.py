"""The hand-off queue: rows of the `handoffs` table, claimed with a lease, marked sent or rescheduled.

A row is written in the transaction that changed its alert and is never deleted; its unique `key` makes
a second enqueue of the same event a no-op. Rows of one alert and target go out in order (a resolve
never overtakes its trigger). A claimed row is due again only when its lease runs out, so a process
that dies mid-send leaves a row the next flush sends again (same body, same delivery id).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import iso, utcnow
from bot.store.database import Store

LEASE = timedelta(minutes=1)  # longer than one attempt (connect + read timeouts)
# Due rows that are the oldest unsent row of their alert and target.
_DUE = """SELECT * FROM handoffs AS h
WHERE h.sent_at IS NULL AND h.failed_at IS NULL AND h.next_attempt_at <= :now AND NOT EXISTS (
  SELECT 1 FROM handoffs AS p WHERE p.target = h.target AND p.alert_id = h.alert_id AND p.id < h.id
  AND p.sent_at IS NULL AND p.failed_at IS NULL)
ORDER BY h.id LIMIT :limit"""


class HandoffQueue:
    """Stored-then-sent hand-offs; the sender (bot.handoff.sender) drains it."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow):
        self.store, self.clock = store, clock

    def enqueue(self, key: str, target: str, alert_id: int, action: str, body: dict[str, Any]) -> None:
        """One hand-off; a key already queued (sent or not) is left as it is."""
        now = iso(self.clock())
        with self.store.atomic() as db:
            db.execute(
                "INSERT OR IGNORE INTO handoffs (key, target, alert_id, action, payload, created_at, attempts,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                [key, target, alert_id, action, json.dumps(body), now, now],
            )

    def triggered(self, target: str, alert_id: int) -> bool:
        """Whether a trigger for this alert was ever queued for this target."""
        sql = "SELECT 1 FROM handoffs WHERE target = ? AND alert_id = ? AND action = 'trigger' LIMIT 1"
        return self.store.db.execute(sql, [target, alert_id]).fetchone() is not None

    def due(self, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.db.query(_DUE, {"now": iso(self.clock()), "limit": limit})]

    def claim(self, row: dict[str, Any]) -> bool:
        """Take the row for this process for LEASE; False when another flush took it first."""
        now = self.clock()
        with self.store.atomic() as db:
            cursor = db.execute(
                "UPDATE handoffs SET next_attempt_at = ? WHERE id = ? AND sent_at IS NULL AND failed_at IS NULL"
                " AND next_attempt_at <= ?",
                [iso(now + LEASE), row["id"], iso(now)],
            )
            return cursor.rowcount == 1

    def sent(self, row: dict[str, Any]) -> None:
        with self.store.atomic() as db:
            db.execute("UPDATE handoffs SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
                       [iso(self.clock()), row["id"]])

    def retry(self, row: dict[str, Any], error: str, after: timedelta, *, give_up: bool = False) -> None:
        """Record the failure; due again `after` from now, or set aside for good (`give_up`)."""
        now = self.clock()
        with self.store.atomic() as db:
            db.execute(
                "UPDATE handoffs SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, failed_at = ?"
                " WHERE id = ?",
                [error, iso(now + after), iso(now) if give_up else None, row["id"]],
            )

    def counts(self) -> dict[str, int]:
        """Pending and given-up rows (status, doctor, metrics)."""
        pending = self.store.db.table("handoffs").count_where("sent_at IS NULL AND failed_at IS NULL")
        failed = self.store.db.table("handoffs").count_where("sent_at IS NULL AND failed_at IS NOT NULL")
        return {"pending": pending, "failed": failed}

    def rows(self, alert_id: int | None = None) -> list[dict[str, Any]]:
        """Every row (of one alert), oldest first."""
        if alert_id is None:
            return list(self.store.db.table("handoffs").rows_where(order_by="id"))
        return list(self.store.db.table("handoffs").rows_where("alert_id = ?", [alert_id], order_by="id"))
