"""Exceptions ("this bucket is meant to be public until …"): the allow list and the expiry reminders.

Named for the product's word, not Python's: nothing here is raised except `ExceptionListError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import iso, parse_iso, utcnow
from bot.store.database import Store

log = logging.getLogger(__name__)

# "Ending soon" in the digest and on App Home.
EXPIRING_WITHIN = timedelta(days=7)


class ExceptionListError(ValueError):
    """An exception that cannot be added or changed as asked."""


@dataclass(frozen=True)
class ExceptionRow:
    id: int
    account: str | None  # None: any account
    bucket: str | None  # None: the account itself (account-level alerts), or an access point
    reason: str
    owner: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    access_point: str | None = None  # covers this access point only (never its account)

    @property
    def label(self) -> str:
        """What it covers, in words: `bucket b`, `access point p (account a)`, `account a`."""
        if self.access_point:
            return f"access point {self.access_point} (account {self.account})"
        if self.bucket:
            return f"bucket {self.bucket}" + (f" (account {self.account})" if self.account else "")
        return f"account {self.account}"

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


class ExceptionList:
    """Buckets (or accounts) accepted as public for a while, with a reason and an owner."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.clock = clock

    def add(
        self, bucket: str | None, reason: str, owner: str, expires_at: datetime, account: str | None = None,
        access_point: str | None = None,
    ) -> ExceptionRow:
        """Accept `bucket` (in `account`, or any account) — or `access_point` in `account` — as public until
        `expires_at`."""
        if not bucket and not account:
            raise ExceptionListError("an exception names a bucket, an account, or both")
        if access_point and not account:
            raise ExceptionListError("an access point's exception names its account")
        if not reason.strip():
            raise ExceptionListError("an exception needs a reason")
        if expires_at.tzinfo is None:
            raise ExceptionListError("expires_at must carry a time zone")
        now = self.clock()
        if expires_at <= now:
            raise ExceptionListError("an exception must expire in the future")
        table = self.store.db.table("exceptions")
        table.insert(
            {
                "account": account or None,
                "bucket": bucket or None,
                "access_point": access_point or None,
                "reason": reason.strip(),
                "owner": owner,
                "created_at": iso(now),
                "expires_at": iso(expires_at),
                "revoked_at": None,
                "expiry_notified_at": None,
            }
        )
        return self.get(int(table.last_pk or 0))

    def get(self, exception_id: int) -> ExceptionRow:
        rows = list(self.store.db.table("exceptions").rows_where("id = ?", [exception_id]))
        if not rows:
            raise ExceptionListError(f"no exception #{exception_id}")
        return _row(rows[0])

    def revoke(self, exception_id: int, who: str) -> ExceptionRow:
        """End an exception now; revoking twice keeps the first time and person."""
        self.get(exception_id)
        self.store.db.execute(
            "UPDATE exceptions SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
            [iso(self.clock()), who, exception_id],
        )
        return self.get(exception_id)

    def active_for(self, bucket: str | None, account: str | None,
                   access_point: str | None = None) -> ExceptionRow | None:
        """The live exception covering exactly this target — an access point, a bucket, or the account when
        both are None — latest expiry first. An access point's exception covers nothing else (defect 3)."""
        where = ["revoked_at IS NULL", "expires_at > ?"]
        params: list[Any] = [iso(self.clock())]
        if access_point:  # named per account: the account check below scopes it
            where.append("access_point = ?")
            params.append(access_point)
        elif bucket is None:
            where.append("bucket IS NULL AND access_point IS NULL")
        else:
            where.append("bucket = ? AND access_point IS NULL")
            params.append(bucket)
        # An exception without an account matches the bucket in any account.
        where.append("(account IS NULL OR account = ?)")
        params.append(account or "")
        rows = self.store.db.table("exceptions").rows_where(
            " AND ".join(where), params, order_by="expires_at desc", limit=1
        )
        found = [_row(r) for r in rows]
        return found[0] if found else None

    def list_active(self) -> list[ExceptionRow]:
        """Live exceptions, soonest expiry first."""
        rows = self.store.db.table("exceptions").rows_where(
            "revoked_at IS NULL AND expires_at > ?", [iso(self.clock())], order_by="expires_at"
        )
        return [_row(r) for r in rows]

    def expiring(self, within: timedelta) -> list[ExceptionRow]:
        """Live exceptions that end within `within` (for the digest and App Home)."""
        now = self.clock()
        rows = self.store.db.table("exceptions").rows_where(
            "revoked_at IS NULL AND expires_at > ? AND expires_at <= ?",
            [iso(now), iso(now + within)],
            order_by="expires_at",
        )
        return [_row(r) for r in rows]

    def due_for_expiry_notice(self) -> list[ExceptionRow]:
        """Exceptions that have expired (not revoked) and whose reminder has not gone out yet."""
        rows = self.store.db.table("exceptions").rows_where(
            "revoked_at IS NULL AND expires_at <= ? AND expiry_notified_at IS NULL",
            [iso(self.clock())],
            order_by="expires_at",
        )
        return [_row(r) for r in rows]

    def mark_notified(self, exception_id: int) -> bool:
        """Record that the expiry reminder went out; False when another worker already did."""
        cursor = self.store.db.execute(
            "UPDATE exceptions SET expiry_notified_at = ? WHERE id = ? AND expiry_notified_at IS NULL",
            [iso(self.clock()), exception_id],
        )
        return cursor.rowcount == 1

    def release_notice(self, exception_id: int) -> None:
        """Forget that the expiry reminder went out (its post failed), so the next run sends it."""
        self.store.db.execute("UPDATE exceptions SET expiry_notified_at = NULL WHERE id = ?", [exception_id])





def _row(r: dict[str, Any]) -> ExceptionRow:
    created = parse_iso(r["created_at"])
    expires = parse_iso(r["expires_at"])
    assert created is not None and expires is not None
    return ExceptionRow(
        id=r["id"],
        account=r["account"] or None,
        bucket=r["bucket"] or None,
        reason=r["reason"] or "",
        owner=r["owner"] or "",
        created_at=created,
        expires_at=expires,
        revoked_at=parse_iso(r["revoked_at"]),
        access_point=r.get("access_point") or None,
    )
