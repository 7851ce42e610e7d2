"""The audit trail: every button press or command — allowed or refused — is one row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.clock import iso, parse_iso, utcnow
from bot.core.metrics import count_press
from bot.store.database import Store


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    user: str
    action: str  # ack | fix | undo | allow | who_changed | …
    alert_id: int | None
    outcome: str  # applied | refused | already_fixed | failed | dry_run | …
    detail: str
    aws_request_id: str


class AuditLog:
    """Append-only log of who pressed what, when, on which alert, and what came of it."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.clock = clock

    def record(
        self,
        user: str,
        action: str,
        alert_id: int | None,
        outcome: str,
        detail: str = "",
        aws_request_id: str = "",
    ) -> int:
        """Append one row and return its id (fix and undo outcomes are also counted for /metrics)."""
        table = self.store.db.table("audit")
        table.insert(
            {
                "at": iso(self.clock()),
                "user": user,
                "action": action,
                "alert_id": alert_id,
                "outcome": outcome,
                "detail": detail,
                "aws_request_id": aws_request_id or "",
            }
        )
        count_press(action, outcome)
        return int(table.last_pk or 0)

    def for_alert(self, alert_id: int) -> list[AuditRow]:
        """Rows about one alert, oldest first (the order a thread reads)."""
        rows = self.store.db.table("audit").rows_where("alert_id = ?", [alert_id], order_by="id")
        return [_row(r) for r in rows]

    def recent(self, limit: int = 50) -> list[AuditRow]:
        """The newest rows first."""
        rows = self.store.db.table("audit").rows_where(order_by="id desc", limit=max(0, limit))
        return [_row(r) for r in rows]


def _row(r: dict[str, Any]) -> AuditRow:
    at = parse_iso(r["at"])
    assert at is not None
    return AuditRow(
        id=r["id"],
        at=at,
        user=r["user"] or "",
        action=r["action"] or "",
        alert_id=r["alert_id"],
        outcome=r["outcome"] or "",
        detail=r["detail"] or "",
        aws_request_id=r["aws_request_id"] or "",
    )
