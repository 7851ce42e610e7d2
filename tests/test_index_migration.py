"""Migration 0016 (the compact index): rows written in the old layout answer who-changed and the card's
"before" values exactly as new ones do."""

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
from bot.store.index import indexed_writes, ingest, raw_record, summarise, who_changed
from bot.store.migrations import MIGRATIONS
from bot.store.packing import prune

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
    # And both keep taking rows: a repeat is still ignored by its event id.
    assert ingest(migrated, [Record(RECORDS[0]), Record(_rec("DeleteBucketPolicy", 1))]) == 1
