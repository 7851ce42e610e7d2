"""Migrations 0016 (the compact index) and 0017 (one B-tree): rows written in an older layout answer
who-changed and the card's "before" values exactly as new ones do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils
from isal import isal_zlib

from bot.core.clock import iso
from bot.core.record import Record
from bot.store.database import Store
from bot.store.index import index_row, indexed_writes, ingest, raw_record, summarise, who_changed
from bot.store.migrations import MIGRATIONS
from bot.store.packing import FACET, prune

ACCT = "111122223333"
NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def _rec(name: str, minutes: int, bucket: str = "h1-ledger", **params: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventID": str(uuid.uuid4()),
        "eventTime": (NOW - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-2",
        "recipientAccountId": ACCT,
        "sourceIPAddress": "198.51.100.4",
        "userAgent": "aws-cli/2.15.30 Python/3.11.8",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/ivan", "userName": "ivan"},
        "requestParameters": {"bucketName": bucket, **params},
    }


def _old_row(raw: dict[str, Any]) -> dict[str, Any]:
    """A row as migrations 0001–0015 stored it (text ids and ISO times, raw as plain zlib)."""
    record = Record(raw)
    return {
        "event_id": record.event_id, "event_time": iso(record.event_time), "account": record.account,
        "region": record.region, "bucket": record.bucket or "", "event_name": record.event_name,
        "actor": record.actor.display, "actor_arn": record.actor.arn, "actor_type": record.actor.kind,
        "source_ip": record.source_ip, "user_agent": record.user_agent, "agent_kind": record.agent_kind,
        "summary": summarise(record), "source": "scan", "raw": isal_zlib.compress(orjson.dumps(raw)),
    }  # fmt: skip


BPA_OFF = {"PublicAccessBlockConfiguration": {"BlockPublicAcls": False, "IgnorePublicAcls": True,
                                              "BlockPublicPolicy": True, "RestrictPublicBuckets": True}}  # fmt: skip
RECORDS = [
    _rec("PutBucketPublicAccessBlock", 300, **BPA_OFF),
    _rec("PutBucketVersioning", 200),
    _rec("PutBucketAcl", 100, **{"x-amz-acl": "private"}),
    _rec("PutBucketPolicy", 50, bucket="h1-elsewhere"),
]


def test_old_rows_answer_as_new_rows_do(tmp_path: Path) -> None:
    fresh = Store(tmp_path / "fresh.db")
    ingest(fresh, [Record(r) for r in RECORDS])
    db = sqlite_utils.Database(tmp_path / "old.db")
    MIGRATIONS.apply(db, stop_before="0016_events_compact")
    db["events"].insert_all([_old_row(r) for r in RECORDS])
    db.close()
    migrated = Store(tmp_path / "old.db")
    assert migrated.db["events"].count == len(RECORDS)
    for bucket in ("h1-ledger", "h1-elsewhere"):
        old = [c.as_dict() for c in who_changed(migrated, bucket, now=NOW)]
        assert old == [c.as_dict() for c in who_changed(fresh, bucket, now=NOW)]
        assert len(old) == (3 if bucket == "h1-ledger" else 1)
    for raw in RECORDS:
        # Old rows keep their record whole; new ones without what only the trail keeps (packing.prune).
        assert raw_record(migrated, raw["eventID"]) == raw
        assert raw_record(fresh, raw["eventID"]) == prune(raw)
    # The card's "before" values read the same rows (bot.alerts.prior): newest first, named writes only.
    names = {"PutBucketPublicAccessBlock", "PutBucketAcl"}
    for store in (fresh, migrated):
        before = list(indexed_writes(store.db, ACCT, "h1-ledger", names, before=NOW))
        assert [r["eventName"] for r in before] == ["PutBucketAcl", "PutBucketPublicAccessBlock"]
        assert list(indexed_writes(store.db, "444455556666", "h1-ledger", names, before=NOW)) == []
        later = list(indexed_writes(store.db, ACCT, "h1-ledger", names, after=NOW - timedelta(minutes=150)))
        assert [r["eventName"] for r in later] == ["PutBucketAcl"]
    # And both keep taking rows: a repeat (same bucket, time and event id) is still ignored.
    assert ingest(migrated, [Record(RECORDS[0]), Record(_rec("DeleteBucketPolicy", 1))]) == 1


_INSERT_0016 = "INSERT INTO events (event_id, event_time, bucket, facet, source_ip, raw) VALUES (?, ?, ?, ?, ?, ?)"


def test_0017_makes_the_compact_index_one_btree_with_the_same_answers(tmp_path: Path) -> None:
    fresh = Store(tmp_path / "fresh.db")
    ingest(fresh, [Record(r) for r in RECORDS])
    db = sqlite_utils.Database(tmp_path / "v2.db")
    MIGRATIONS.apply(db, stop_before="0017_events_one_btree")
    rows = [index_row(Record(r), "scan") for r in RECORDS]
    timeless = index_row(Record({**_rec("PutBucketCors", 10), "eventTime": None}), "scan")
    for row in [*rows, timeless]:
        db["index_facets"].insert(dict(zip(FACET, row.facet, strict=True)), ignore=True)
        where = " AND ".join(f"{c} = ?" for c in FACET)
        facet = db.execute(f"SELECT id FROM index_facets WHERE {where}", row.facet).fetchone()[0]
        db.execute(_INSERT_0016, [row.key, row.time, row.bucket, facet, row.source_ip, row.raw])
    db.conn.commit()
    db.close()
    migrated = Store(tmp_path / "v2.db")
    sql = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL"
    assert [(n, "WITHOUT ROWID" in s) for n, s in migrated.db.execute(sql)] == [("events", True)], "no other index"
    assert migrated.db["events"].count == len(RECORDS), "the row without a time is gone: no query reaches it"
    for bucket in ("h1-ledger", "h1-elsewhere"):
        assert [c.as_dict() for c in who_changed(migrated, bucket, now=NOW)] == \
            [c.as_dict() for c in who_changed(fresh, bucket, now=NOW)]  # fmt: skip
    names = {"PutBucketPublicAccessBlock", "PutBucketAcl", "PutBucketVersioning"}
    for before in (NOW, NOW - timedelta(minutes=150)):
        assert list(indexed_writes(migrated.db, ACCT, "h1-ledger", names, before=before)) == \
            list(indexed_writes(fresh.db, ACCT, "h1-ledger", names, before=before))  # fmt: skip
    for raw in RECORDS:
        assert raw_record(migrated, raw["eventID"]) == raw_record(fresh, raw["eventID"], raw["requestParameters"]
                                                                   ["bucketName"]) == prune(raw)  # fmt: skip


def test_one_event_through_several_paths_is_one_row(tmp_path: Path) -> None:
    # EventBridge, LookupEvents and the trail file carry the same record: same bucket, time and id.
    store = Store(tmp_path / "one.db")
    record = RECORDS[2]
    assert ingest(store, [Record(record)], source="queue") == 1
    assert ingest(store, [Record(dict(record))], source="lookup") == 0
    assert ingest(store, [Record(dict(record))], source="trail") == 0
    assert [c.event_id for c in who_changed(store, "h1-ledger", now=NOW)].count(record["eventID"]) == 1
