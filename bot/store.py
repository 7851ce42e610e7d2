"""SQLite through sqlite-utils: numbered migrations, WAL, one connection per thread.

Bolt listeners, the scheduler and the poller run in different threads; SQLite connections must
not be shared across threads, so `Store.db` hands each thread its own connection to the same file.
WAL lets one thread read while another writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("bucketwatch")


@MIGRATIONS(name="0001_events_index")
def _m0001(db: sqlite_utils.Database) -> None:
    # The who-changed index: every successful S3 configuration write, raw record kept (compressed).
    db["events"].create(
        {
            "event_id": str,
            "event_time": str,
            "account": str,
            "region": str,
            "bucket": str,
            "event_name": str,
            "actor": str,
            "actor_arn": str,
            "actor_type": str,
            "source_ip": str,
            "user_agent": str,
            "agent_kind": str,
            "summary": str,
            "source": str,
            "raw": bytes,
        },
        pk="event_id",
    )
    db["events"].create_index(["bucket", "event_time"])
    db["events"].create_index(["account", "event_time"])


@MIGRATIONS(name="0002_alerts")
def _m0002(db: sqlite_utils.Database) -> None:
    db["alerts"].create(
        {
            "id": int,
            "resource_key": str,  # account/bucket, or account/* for account-level alerts
            "account": str,
            "region": str,
            "bucket": str,
            "detection": str,
            "severity": str,
            "title": str,
            "status": str,  # open → acknowledged → fixed / accepted / resolved
            "opened_at": str,
            "updated_at": str,
            "first_event_id": str,
            "actor": str,
            "verdict": str,
            "channel": str,
            "ts": str,
            "acknowledged_by": str,
            "acknowledged_at": str,
            "closed_by": str,
            "closed_at": str,
            "close_reason": str,
        },
        pk="id",
    )
    db["alerts"].create_index(["resource_key", "status"])
    db["alert_findings"].create(
        {"alert_id": int, "event_id": str, "detection": str, "added_at": str, "finding": str},
        pk=("alert_id", "event_id", "detection"),
    )
    db["alert_history"].create(
        {"id": int, "alert_id": int, "at": str, "who": str, "status_from": str, "status_to": str, "note": str},
        pk="id",
    )
    db["alert_history"].create_index(["alert_id"])
    db["outbox"].create(
        {
            "id": int,
            "alert_id": int,
            "kind": str,  # card | thread | update
            "payload": str,
            "created_at": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "sent_at": str,
            "ts": str,
        },
        pk="id",
    )
    db["outbox"].create_index(["sent_at", "next_attempt_at"])


@MIGRATIONS(name="0003_sources")
def _m0003(db: sqlite_utils.Database) -> None:
    db["poller_state"].create(
        {
            "source": str,  # lookup:<account>:<region> or trail:<bucket>/<prefix>
            "watermark": str,
            "last_success": str,
            "last_attempt": str,
            "last_error": str,
            "lag_seconds": float,
            "events_seen": int,
        },
        pk="source",
    )
    db["seen_events"].create({"event_id": str, "seen_at": str}, pk="event_id")
    db["trail_progress"].create({"prefix": str, "last_key": str, "updated_at": str}, pk="prefix")
    db["quarantine"].create(
        {"id": int, "at": str, "source": str, "reason": str, "raw": str}, pk="id"
    )


@MIGRATIONS(name="0004_responders")
def _m0004(db: sqlite_utils.Database) -> None:
    db["exceptions"].create(
        {
            "id": int,
            "account": str,
            "bucket": str,
            "reason": str,
            "owner": str,
            "created_at": str,
            "expires_at": str,
            "revoked_at": str,
            "expiry_notified_at": str,
        },
        pk="id",
    )
    db["exceptions"].create_index(["bucket"])
    db["audit"].create(
        {
            "id": int,
            "at": str,
            "user": str,
            "action": str,
            "alert_id": int,
            "outcome": str,
            "detail": str,
            "aws_request_id": str,
        },
        pk="id",
    )
    db["remediations"].create(
        {
            "id": int,
            "alert_id": int,
            "target": str,
            "account": str,
            "bucket": str,
            "snapshot": str,  # JSON of the BPA before the fix; null config = deleted
            "applied": str,
            "by": str,
            "at": str,
            "status": str,  # applied | dry_run | undone | failed
            "undone_by": str,
            "undone_at": str,
        },
        pk="id",
    )
    db["remediations"].create_index(["alert_id"])
    db["digest_runs"].create({"day": str, "sent_at": str}, pk="day")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """Store times as sortable UTC ISO text with a Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def connect(path: Path | str) -> sqlite_utils.Database:
    """One connection, WAL on, waiting (not failing) when another thread holds the write lock."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    db = sqlite_utils.Database(conn)
    if str(path) != ":memory:":
        db.enable_wal()
    conn.execute("PRAGMA synchronous = NORMAL")
    return db


class Store:
    """The database file plus a connection per thread; migrations applied once at open."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._local = threading.local()
        MIGRATIONS.apply(self.db)

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path)
        return db

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A transaction that rolls back everything on error (sqlite-utils' own atomic())."""
        with self.db.atomic():
            yield self.db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
