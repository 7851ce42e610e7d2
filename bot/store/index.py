"""The who-changed index: every successful S3 configuration write, kept beyond CloudTrail's 90 days."""

from __future__ import annotations

import json
import weakref
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from bot.core.clock import iso, utcnow
from bot.core.record import Record
from bot.store.database import Store
from bot.store.packing import FACET, event_id_of, event_key, moment, summary_of, unpack_raw, when
from bot.store.rows import IndexRow, index_row, is_config_write, is_index_name, raw_context, summarise

__all__ = ["Change", "IndexRow", "index_row", "indexed_writes", "ingest", "insert_rows", "is_config_write",
           "is_index_name", "raw_record", "summarise", "who_changed"]  # fmt: skip

# One B-tree (migration 0017): `events` is keyed by (bucket, event_time, event_id), so the same event
# read through several paths (EventBridge, LookupEvents, a trail file) is one row, the repeats ignored.
_INSERT = "INSERT OR IGNORE INTO events (bucket, event_time, event_id, facet, source_ip, raw) VALUES (?, ?, ?, ?, ?, ?)"
_FACET_INSERT = f"INSERT OR IGNORE INTO index_facets ({', '.join(FACET)}) VALUES ({', '.join('?' * len(FACET))})"  # noqa: S608
_FACET_ID = f"SELECT id FROM index_facets WHERE {' AND '.join(f'{c} = ?' for c in FACET)}"  # noqa: S608
# A row with what its raw record is packed against (bot.store.rows.raw_context), events first: a range
# of its (bucket, event_time, …) key drives every query and each row's facet is one primary-key look-up.
_RAW_FROM = ("SELECT e.raw, e.event_id, e.event_time, e.bucket, e.source_ip, f.account, f.region, f.event_name,"
             " f.actor_arn, f.user_agent FROM events e CROSS JOIN index_facets f ON f.id = e.facet")
TRANSACTION_ROWS = 50_000
BULK_ROWS = 10_000
BULK_CACHE_KIB = 128 << 10
# During a bulk insert the write-ahead log is checkpointed every BULK_WAL_PAGES pages (≈ 400 MB), not every
# 1,000: each checkpoint writes the pages back and syncs, and random-place inserts rewrite the same pages
# again soon. At 1M events: 31.8k rows per wall second instead of 24.8k (docs/benchmarks.md, section 11).
BULK_WAL_PAGES = 100_000


def ingest(store: Store, records: Iterable[Record], *, source: str = "scan") -> int:
    """Store the configuration writes among `records`; repeats (same bucket, time and event id) are ignored."""
    return insert_rows(store, [index_row(r, source) for r in records if r.event_id and is_config_write(r)])


def insert_rows(store: Store, rows: list[IndexRow]) -> int:
    """Insert index rows (repeats ignored) in transactions of TRANSACTION_ROWS; how many were new.

    A row without a time is not kept: no query can reach it (every one reads a range of time), and the
    trail keeps it. One `executemany` per transaction. A bulk insert (BULK_ROWS or more) borrows a
    larger page cache for its duration, given back after: rows go into the (bucket, time) key at
    random places, and with SQLite's default 2 MB most of those pages are read again from the file
    (128 MB: at 1M events about 1.15× the rows per CPU second of 64 MB; sorting the rows did not help).
    """
    added = 0
    conn = store.db.conn
    bulk = len(rows) >= BULK_ROWS
    cache = int(conn.execute("PRAGMA cache_size").fetchone()[0])
    checkpoint = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    if bulk:
        conn.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {BULK_WAL_PAGES}")
    try:
        for start in range(0, len(rows), TRANSACTION_ROWS):
            chunk = rows[start : start + TRANSACTION_ROWS]
            with store.atomic() as db:
                ids = _facet_ids(db, {row.facet for row in chunk})
                before = db.conn.total_changes
                db.conn.executemany(_INSERT, [(r.bucket, r.time, r.key, ids[r.facet], r.source_ip, r.raw)
                                              for r in chunk if r.time is not None])  # fmt: skip
                added += db.conn.total_changes - before
    finally:
        if bulk:
            conn.execute(f"PRAGMA cache_size = {cache}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint}")
            # Give the log's disk space back; with a reader still in the log this does what it can, at once.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return added


def _facet_ids(db: sqlite_utils.Database, facets: set[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    """Ids of these facets, added where new (few: many rows share one)."""
    conn = db.conn
    conn.executemany(_FACET_INSERT, facets)
    return {facet: conn.execute(_FACET_ID, facet).fetchone()[0] for facet in facets}


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
    """The bucket's configuration changes in the last `days`, newest first (one range of the events key).

    `bucket=''` is account-level writes, of every account unless `account` narrows it to one.
    """
    since = when((now or utcnow()) - timedelta(days=days))
    where, params = "bucket = ? AND event_time >= ?", [bucket, since]
    if account:
        where += " AND facet IN (SELECT id FROM index_facets WHERE account = ?)"
        params.append(account)
    sql = (f"SELECT event_id, event_time, source_ip, facet FROM events WHERE {where}"  # noqa: S608
           " ORDER BY event_time DESC LIMIT ?")
    rows = store.db.execute(sql, [*params, limit]).fetchall()
    facets = _facets(store, {r[3] for r in rows})
    changes = []
    for key, time, ip, facet in rows:
        acct, region, name, actor, arn, _kind, agent, agent_kind, summary, _source = facets[facet]
        changes.append(Change(event_id_of(key), moment(time), name, acct, region, actor, arn, ip, agent, agent_kind,
                              summary_of(summary, bucket)))  # fmt: skip
    return changes


# Facets never change once written (nothing updates or deletes them), so a store's are kept in memory
# as they are read: a who-changed answer then costs one index range and its rows, not a look-up per
# row in a second table (p99 at 10M events: docs/benchmarks.md section 3). Bounded: cleared when full.
_FACET_CACHE: weakref.WeakKeyDictionary[Store, dict[int, tuple[str, ...]]] = weakref.WeakKeyDictionary()
FACET_CACHE_SIZE = 50_000
_FACET_ROWS = f"SELECT id, {', '.join(FACET)} FROM index_facets WHERE id IN (SELECT value FROM json_each(?))"  # noqa: S608


def _facets(store: Store, ids: set[int]) -> dict[int, tuple[str, ...]]:
    cache = _FACET_CACHE.setdefault(store, {})  # shared by the store's threads: read with get (never a KeyError)
    found = {i: facet for i in ids if (facet := cache.get(i)) is not None}
    missing = [i for i in ids if i not in found]
    if missing:
        if len(cache) + len(missing) > FACET_CACHE_SIZE:
            cache.clear()
        for row in store.db.execute(_FACET_ROWS, [json.dumps(missing)]):
            found[row[0]] = cache[row[0]] = tuple(row[1:])
    return found


def raw_record(store: Store, event_id: str, bucket: str | None = None) -> dict[str, Any] | None:
    """The stored record of one event. With its `bucket` ('': account level) a range of the key is read;
    without, the whole table is (events are keyed by bucket and time, not by id alone: tests, forensics)."""
    where, params = "e.event_id = ?", [event_key(event_id)]
    if bucket is not None:
        where, params = "e.bucket = ? AND " + where, [bucket, *params]
    row = store.db.execute(f"{_RAW_FROM} WHERE {where} LIMIT 1", params).fetchone()
    return _unpack(row) if row else None


def indexed_writes(db: sqlite_utils.Database, account: str, bucket: str, names: Collection[str], *,
                   before: datetime | None = None, after: datetime | None = None, skip_id: str = "",
                   limit: int = -1) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Raw records of the writes named in `names` on one bucket (`''`: account level) of one account:
    newest first before `before`, or oldest first after `after`. A damaged row is skipped."""
    ordered = sorted(names)
    where = f"e.bucket = ? AND f.account = ? AND f.event_name IN ({', '.join('?' * len(ordered))})"
    params: list[Any] = [bucket, account, *ordered]
    if skip_id:
        where += " AND e.event_id != ?"
        params.append(event_key(skip_id))
    if before is not None:
        where += " AND e.event_time < ? ORDER BY e.event_time DESC"
        params.append(when(before))
    else:
        where += " AND e.event_time > ? ORDER BY e.event_time"
        params.append(when(after))
    for row in db.execute(f"{_RAW_FROM} WHERE {where} LIMIT ?", [*params, limit]):
        try:
            yield _unpack(row)
        except Exception:  # noqa: S112 - a damaged index row is skipped, not fatal
            continue


def _unpack(row: Sequence[Any]) -> dict[str, Any]:
    raw: dict[str, Any] = unpack_raw(row[0], raw_context(*row[1:]))
    return raw
