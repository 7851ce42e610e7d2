"""The `remediations` table: one row per fix (or dry run) of an alert, its snapshot and its undo.

bot.remediation decides; this module only reads and writes rows. The partial unique index
`remediations_one_live_fix` (migration 0005_remediation_guard) lets one row per alert be live, so an
insert that violates it is how a second process learns a fix is already claimed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.core.bpa import Config
from bot.core.clock import iso, parse_iso
from bot.store.database import Store

LIVE = "status IN ('applying', 'applied', 'undoing')"  # the statuses the unique index covers


class AlertLike(Protocol):
    """What remediation needs from an alert (bot.alerts' alert has more)."""

    @property
    def id(self) -> int: ...
    @property
    def account(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def bucket(self) -> str | None: ...
    @property
    def detection(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def is_open(self) -> bool: ...


@dataclass(frozen=True)
class Remediation:
    """One row of `remediations`."""

    id: int
    alert_id: int
    account: str
    region: str
    bucket: str | None
    status: str  # applying | applied | dry_run | no_change | failed | undoing | undone
    snapshot: Config | None  # None: there was no configuration
    applied: Config | None
    by: str
    at: datetime | None
    undone_by: str = ""
    undone_at: datetime | None = None
    request_id: str = ""
    error: str = ""


class RemediationRows:
    """Reads and writes `remediations` rows; every write is one statement (no read inside a transaction)."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, remediation_id: int) -> Remediation | None:
        return self.latest("id = ?", [remediation_id])

    def live(self, alert_id: int) -> Remediation | None:
        """The applied (or in-flight) fix of this alert, if any."""
        return self.latest(f"alert_id = ? AND {LIVE}", [alert_id])

    def latest(self, where: str, params: list[Any]) -> Remediation | None:
        rows = list(
            self.store.db.table("remediations").rows_where(where, params, order_by="id desc", limit=1)
        )
        return _remediation(rows[0]) if rows else None

    def insert(
        self,
        alert: AlertLike,
        user: str,
        status: str,
        at: datetime,
        *,
        snapshot: Config | None = None,
        applied: Config | None = None,
    ) -> int:
        """A new row; raises sqlite3.IntegrityError when a live fix of the alert exists."""
        # One INSERT outside an explicit transaction: a read inside BEGIN would make SQLite refuse the
        # write with "database is locked" (no busy wait) when another process committed meanwhile.
        table = self.store.db.table("remediations")
        table.insert(
            {
                "alert_id": alert.id,
                "target": f"{alert.account}/{alert.bucket or '*'}",
                "account": alert.account,
                "region": alert.region,
                "bucket": alert.bucket,
                "snapshot": json.dumps(snapshot),
                "applied": json.dumps(applied),
                "by": user,
                "at": iso(at),
                "status": status,
            }
        )
        return int(table.last_pk or 0)

    def update(self, rid: int, status: str, **values: Any) -> None:
        for key in ("snapshot", "applied"):
            if key in values:
                values[key] = json.dumps(values[key])
        self.store.db.table("remediations").update(rid, {"status": status, **values})

    def claim_undo(self, rid: int) -> bool:
        """Move an applied fix to 'undoing'; False when another process got there first."""
        claim = "UPDATE remediations SET status = 'undoing' WHERE id = ? AND status = 'applied'"
        return bool(self.store.db.execute(claim, [rid]).rowcount == 1)


def _remediation(r: dict[str, Any]) -> Remediation:
    return Remediation(
        id=r["id"],
        alert_id=r["alert_id"],
        account=r["account"] or "",
        region=r.get("region") or "us-east-1",
        bucket=r["bucket"] or None,
        status=r["status"] or "",
        snapshot=json.loads(r["snapshot"]) if r["snapshot"] else None,
        applied=json.loads(r["applied"]) if r["applied"] else None,
        by=r["by"] or "",
        at=parse_iso(r["at"]),
        undone_by=r["undone_by"] or "",
        undone_at=parse_iso(r["undone_at"]),
        request_id=r.get("request_id") or "",
        error=r.get("error") or "",
    )
