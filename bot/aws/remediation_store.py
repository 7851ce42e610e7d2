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

from bot.aws.fix_action import State
from bot.core.clock import iso, parse_iso
from bot.store.database import Store

LIVE = "status IN ('applying', 'applied', 'undoing')"  # the statuses the unique index covers
IN_FLIGHT = ("applying", "undoing")  # an AWS call may have been made and its outcome not recorded
SETTLED_BY_THE_ALERT = ("applied", "undone", "no_change")  # outcomes that change the alert's status


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
    @property
    def access_point(self) -> str | None: ...


@dataclass(frozen=True)
class Remediation:
    """One row of `remediations`."""

    id: int
    alert_id: int
    account: str
    region: str
    bucket: str | None
    status: str  # applying | applied | dry_run | no_change | failed | undoing | undone
    snapshot: State  # the configuration before (BPA: None when there was none)
    applied: State
    by: str
    at: datetime | None
    undone_by: str = ""
    undone_at: datetime | None = None
    request_id: str = ""
    error: str = ""
    intended: State = None  # what the AWS call in flight sets; None until recorded
    started_at: datetime | None = None  # when the fix or undo in flight started
    access_point: str | None = None  # set for a fix of an access point's policy

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT


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
        snapshot: State = None,
        applied: State = None,
    ) -> int:
        """A new row; raises sqlite3.IntegrityError when a live fix of the alert exists."""
        # One INSERT outside an explicit transaction: a read inside BEGIN would make SQLite refuse the
        # write with "database is locked" (no busy wait) when another process committed meanwhile.
        table = self.store.db.table("remediations")
        table.insert(
            {
                "alert_id": alert.id,
                "target": f"{alert.account}/{alert.bucket or '*'}" + (
                    f"/accesspoint/{alert.access_point}" if alert.access_point else ""),
                "account": alert.account,
                "region": alert.region,
                "bucket": alert.bucket,
                "access_point": alert.access_point or None,
                "snapshot": json.dumps(snapshot),
                "applied": json.dumps(applied),
                "by": user,
                "at": iso(at),
                "started_at": iso(at),
                "status": status,
            }
        )
        return int(table.last_pk or 0)

    def update(self, rid: int, status: str, **values: Any) -> None:
        self.store.db.table("remediations").update(rid, {"status": status, **_encoded(values)})

    def finish(self, rid: int, was: str, status: str, **values: Any) -> bool:
        """Move the row from `was` to `status` (one conditional UPDATE); False if someone else moved it."""
        values = {"status": status, **_encoded(values)}
        assignments = ", ".join(f"{key} = ?" for key in values)
        with self.store.atomic() as db:
            cursor = db.execute(
                f"UPDATE remediations SET {assignments} WHERE id = ? AND status = ?",  # noqa: S608 (our keys)
                [*values.values(), rid, was],
            )
            return bool(cursor.rowcount == 1)

    def claim_undo(self, rid: int, user: str, at: datetime) -> bool:
        """Move an applied fix to 'undoing' (who and when recorded first); False when another got there first."""
        claim = ("UPDATE remediations SET status = 'undoing', undone_by = ?, started_at = ?, error = NULL"
                 " WHERE id = ? AND status = 'applied'")
        with self.store.atomic() as db:
            return bool(db.execute(claim, [user, iso(at), rid]).rowcount == 1)

    def unsettled(self, started_before: datetime) -> list[Remediation]:
        """Rows with an outcome the alert has not been brought in line with (their process died between)."""
        rows = self.store.db.table("remediations").rows_where(
            "status IN ('applied', 'undone', 'no_change') AND settled_at IS NULL AND coalesce(started_at, at) < ?",
            [iso(started_before)], order_by="id",
        )
        return [_remediation(r) for r in rows]

    def mark_settled(self, rid: int, at: datetime) -> None:
        with self.store.atomic() as db:
            db.execute("UPDATE remediations SET settled_at = ? WHERE id = ? AND settled_at IS NULL", [iso(at), rid])

    def in_flight(self, started_before: datetime) -> list[Remediation]:
        """Fixes and undos in flight that started before `started_before` (their process may be gone)."""
        rows = self.store.db.table("remediations").rows_where(
            "status IN ('applying', 'undoing') AND coalesce(started_at, at) < ?", [iso(started_before)], order_by="id"
        )
        return [_remediation(r) for r in rows]


def _encoded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if k in ("snapshot", "applied", "intended") else v for k, v in values.items()}


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
        intended=json.loads(r["intended"]) if r.get("intended") else None,
        started_at=parse_iso(r.get("started_at") or r["at"]),
        access_point=r.get("access_point") or None,
    )
