"""Requested exceptions: "yes, intended" from the actor, waiting for a responder's one-click approval.

A request is not an exception: nothing is suppressed and the alert stays open until a responder
approves it. Approving creates the exception (bot.alerts.exceptions) for the requested span, counted
from the approval, owned by the person who asked for it; approving twice creates nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.alerts.exceptions import ExceptionList, ExceptionRow
from bot.core.clock import iso, parse_iso, utcnow
from bot.store.database import Store


@dataclass(frozen=True)
class ExceptionRequest:
    id: int
    alert_id: int
    account: str
    bucket: str | None
    reason: str
    duration: timedelta
    requested_by: str  # a Slack user id: the actor who said "yes, intended"
    requested_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    exception_id: int | None


class ExceptionRequests:
    """The `exception_requests` table; `approve` turns one into an exception."""

    def __init__(self, store: Store, exceptions: ExceptionList, *, clock: Callable[[], datetime] = utcnow):
        self.store, self.exceptions, self.clock = store, exceptions, clock

    def request(self, alert_id: int, account: str, bucket: str | None, reason: str, duration: timedelta,
                requested_by: str) -> ExceptionRequest:
        table = self.store.db.table("exception_requests")
        table.insert({"alert_id": alert_id, "account": account, "bucket": bucket, "reason": reason.strip(),
                      "seconds": int(duration.total_seconds()), "requested_by": requested_by,
                      "requested_at": iso(self.clock())})
        found = self.get(int(table.last_pk or 0))
        assert found is not None
        return found

    def get(self, request_id: int) -> ExceptionRequest | None:
        rows = list(self.store.db.table("exception_requests").rows_where("id = ?", [request_id]))
        return _row(rows[0]) if rows else None

    def for_alert(self, alert_id: int) -> ExceptionRequest | None:
        """The alert's latest request."""
        rows = self.store.db.table("exception_requests").rows_where("alert_id = ?", [alert_id],
                                                                     order_by="id desc", limit=1)
        found = [_row(r) for r in rows]
        return found[0] if found else None

    def approve(self, request_id: int, approver: str) -> ExceptionRow | None:
        """The exception, created now; None when the request was approved already (by anyone)."""
        with self.store.atomic() as db:
            now = self.clock()
            cursor = db.execute("UPDATE exception_requests SET approved_by = ?, approved_at = ?"
                                " WHERE id = ? AND approved_at IS NULL", [approver, iso(now), request_id])
            if cursor.rowcount != 1:
                return None
            request = self.get(request_id)
            assert request is not None
            # The exception covers exactly what the alert is about: an access point's alert has no bucket,
            # and without its access point the exception would cover the whole account.
            found = db.execute("SELECT access_point FROM alerts WHERE id = ?", [request.alert_id]).fetchone()
            row = self.exceptions.add(request.bucket, request.reason, request.requested_by,
                                      now + request.duration, account=request.account,
                                      access_point=found[0] if found else None)
            db.execute("UPDATE exception_requests SET exception_id = ? WHERE id = ?", [row.id, request_id])
            return row


def _row(r: dict[str, Any]) -> ExceptionRequest:
    requested = parse_iso(r["requested_at"])
    assert requested is not None
    return ExceptionRequest(
        id=r["id"], alert_id=r["alert_id"], account=r["account"] or "", bucket=r["bucket"] or None,
        reason=r["reason"] or "", duration=timedelta(seconds=r["seconds"] or 0),
        requested_by=r["requested_by"] or "", requested_at=requested, approved_by=r["approved_by"],
        approved_at=parse_iso(r["approved_at"]), exception_id=r["exception_id"],
    )
