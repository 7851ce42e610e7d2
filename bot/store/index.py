"""The who-changed index: every successful S3 configuration write, kept beyond CloudTrail's 90 days."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from isal import isal_zlib

from bot.core.clock import iso, parse_iso, utcnow
from bot.core.record import Record, text
from bot.store.database import Store
from detections import WATCHED_EVENT_NAMES, Finding, evaluate
from detections.base import acl_verdict, bpa_config, bpa_flags

_CONFIG_WRITE = re.compile(r"^(Put|Delete|Create|Restore)(Bucket|Account|AccessPoint|MultiRegionAccessPoint)")
# Object-level writes are data, not configuration, unless they set an ACL (detections decide those).
_OBJECT_WRITES = frozenset({"PutObject", "CopyObject"})


def is_index_name(name: str) -> bool:
    """An S3 event name the index may keep (whether the record is kept depends on more: see below)."""
    return name == "PutObjectAcl" or name in WATCHED_EVENT_NAMES or bool(_CONFIG_WRITE.match(name))


def is_config_write(record: Record) -> bool:
    """S3 configuration writes that succeeded (reads and plain object uploads are not kept)."""
    if not record.is_s3 or not record.succeeded or record.read_only:
        return False
    name = record.event_name
    if name in _OBJECT_WRITES:
        return bool(evaluate(record))
    return name == "PutObjectAcl" or name in WATCHED_EVENT_NAMES or bool(_CONFIG_WRITE.match(name))


def summarise(record: Record, findings: list[Finding] | None = None) -> str:
    """A short, plain description of what the write did, for the timeline (`findings`: already known)."""
    name = record.event_name
    findings = evaluate(record) if findings is None else findings
    if findings:
        return "; ".join(f.title for f in findings)
    if name.endswith("PublicAccessBlock") and name.startswith("Put"):
        config = bpa_config(record)
        if config is None:
            return "Block Public Access set (configuration not in the record)"
        flags = bpa_flags(config)
        if all(flags.values()):
            return "Block Public Access: all four flags on"
        return "Block Public Access: " + ", ".join(f"{k}={'on' if v else 'off'}" for k, v in flags.items())
    if name in ("PutBucketAcl", "PutObjectAcl"):
        canned = text(record.param("x-amz-acl"))
        if canned:
            return f"ACL set to {canned}"
        return "ACL set, no public grant" if not acl_verdict(record).public else "ACL set"
    if name == "DeleteBucketPolicy":
        return "Bucket policy deleted"
    if name == "PutBucketPolicy":
        return "Bucket policy set (not public)"
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return words[0].upper() + words[1:] if words else "?"


COLUMNS = (
    "event_id", "event_time", "account", "region", "bucket", "event_name", "actor", "actor_arn", "actor_type",
    "source_ip", "user_agent", "agent_kind", "summary", "source", "raw",
)  # fmt: skip
_INSERT = f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
TRANSACTION_ROWS = 50_000


def index_row(record: Record, source: str, findings: list[Finding] | None = None) -> dict[str, Any]:
    """One index row; built where the record was read (a scan worker), from the findings already made."""
    return {
        "event_id": record.event_id,
        "event_time": iso(record.event_time),
        "account": record.account,
        "region": record.region,
        "bucket": record.bucket or "",
        "event_name": record.event_name,
        "actor": record.actor.display,
        "actor_arn": record.actor.arn,
        "actor_type": record.actor.kind,
        "source_ip": record.source_ip,
        "user_agent": record.user_agent,
        "agent_kind": record.agent_kind,
        "summary": summarise(record, findings),
        "source": source,
        # Raw records are kept for forensics; level-1 deflate keeps a 10M-event index on an ordinary disk.
        "raw": isal_zlib.compress(orjson.dumps(record.raw), 1),
    }


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
    return orjson.loads(isal_zlib.decompress(row[0])) if row else None
