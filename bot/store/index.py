"""The who-changed index: every successful S3 configuration write, kept beyond CloudTrail's 90 days."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import iso, parse_iso, utcnow
from bot.core.record import Record
from bot.store.database import Store
from bot.store.rows import COLUMNS, index_row, is_config_write, is_index_name, summarise, unpack_raw

__all__ = ["Change", "index_row", "ingest", "insert_rows", "is_config_write", "is_index_name", "raw_record",
           "summarise", "who_changed"]  # fmt: skip

_INSERT = f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
TRANSACTION_ROWS = 50_000


def ingest(store: Store, records: Iterable[Record], *, source: str = "scan") -> int:
    """Store the configuration writes among `records`; repeats (same event id) are ignored."""
    return insert_rows(store, [index_row(r, source) for r in records if r.event_id and is_config_write(r)])


def insert_rows(store: Store, rows: list[dict[str, Any]]) -> int:
    """Insert index rows (repeats ignored) in transactions of TRANSACTION_ROWS; how many were new.

    One `executemany` per transaction: per-row work in Python is what limits an index build.
    """
    added = 0
    for start in range(0, len(rows), TRANSACTION_ROWS):
        chunk = rows[start : start + TRANSACTION_ROWS]
        with store.atomic() as db:
            before = db.conn.total_changes
            db.conn.executemany(_INSERT, [tuple(row[c] for c in COLUMNS) for row in chunk])
            added += db.conn.total_changes - before
    return added


@dataclass(frozen=True)
class Change:
    """One timeline row."""

    event_id: str
    event_time: datetime | None
    event_name: str
    account: str
    region: str
    actor: str
    actor_arn: str
    source_ip: str
    user_agent: str
    agent_kind: str
    summary: str

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["event_time"] = iso(self.event_time)
        return out


def who_changed(
    store: Store,
    bucket: str,
    *,
    days: int = 90,
    now: datetime | None = None,
    limit: int = 50,
    account: str | None = None,
) -> list[Change]:
    """The bucket's configuration changes in the last `days`, newest first (indexed by bucket, time).

    `bucket=''` is account-level writes, of every account unless `account` narrows it to one.
    """
    since = iso((now or utcnow()) - timedelta(days=days))
    where, params = "bucket = ? and event_time >= ?", [bucket, since]
    if account:
        where += " and account = ?"
        params.append(account)
    columns = "event_id, event_time, event_name, account, region, actor, actor_arn, source_ip, user_agent, agent_kind"
    sql = f"select {columns}, summary from events where {where} order by event_time desc limit ?"  # noqa: S608
    rows = store.db.execute(sql, [*params, limit]).fetchall()
    return [
        Change(r[0], parse_iso(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]) for r in rows
    ]


def raw_record(store: Store, event_id: str) -> dict[str, Any] | None:
    row = store.db.execute("select raw from events where event_id = ?", [event_id]).fetchone()
    return unpack_raw(row[0]) if row else None
