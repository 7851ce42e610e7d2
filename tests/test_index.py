"""The who-changed index: what is kept, what is not, and concurrent readers while the poller writes."""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from isal import isal_zlib

from bot.core.record import Record
from bot.store.database import Store
from bot.store.index import (
    BULK_ROWS,
    IndexRow,
    ingest,
    insert_rows,
    is_config_write,
    raw_record,
    summarise,
    who_changed,
)
from bot.store.packing import (
    RAW_DICT_V1,
    RAW_DICT_V2,
    RAW_V1,
    RAW_V2,
    event_id_of,
    event_key,
    moment,
    prune,
    summary_key,
    summary_of,
    when,
)
from standins.cloudtrail import s3_record

ACCT = "111122223333"
NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def _rec(
    event_id: str,
    name: str,
    *,
    bucket: str = "h1-ledger",
    at: datetime | None = None,
    params: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "eventVersion": "1.09",
        "eventID": event_id,
        "eventTime": (at or NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-2",
        "recipientAccountId": ACCT,
        "sourceIPAddress": "198.51.100.4",
        "userAgent": "aws-cli/2.15.30 Python/3.11.8",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/ivan", "userName": "ivan"},
        "requestParameters": {
            "bucketName": bucket,
            "Host": f"{bucket}.s3.us-east-2.amazonaws.com",
            **(params or {}),
        },
    }
    raw.update(extra)
    return raw


PUBLIC_POLICY = {
    "bucketPolicy": {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::h1-ledger/*",
            }
        ]
    }
}
BPA_ON = {
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
}


def _ids(changes: list[Any]) -> list[str]:
    return [c.event_id for c in changes]


def test_only_successful_s3_configuration_writes_are_kept() -> None:
    kept = [
        _rec("w1", "PutBucketPolicy", params=PUBLIC_POLICY),
        _rec("w2", "DeleteBucketPolicy"),
        _rec("w3", "PutBucketVersioning"),
        _rec("w4", "PutBucketPublicAccessBlock", params=BPA_ON),
        _rec("w5", "PutObjectAcl", params={"key": "a.txt", "x-amz-acl": "private"}),
        _rec("w6", "PutObject", params={"key": "b.txt", "x-amz-acl": "public-read"}),
        _rec("w7", "CreateBucket"),
        _rec("w8", "PutAccountPublicAccessBlock", params=BPA_ON),
    ]
    dropped = [
        _rec("r1", "GetBucketPolicy"),
        _rec("r2", "ListObjects"),
        _rec("r3", "HeadBucket"),
        _rec("e1", "PutBucketPolicy", params=PUBLIC_POLICY, errorCode="AccessDenied"),
        _rec(
            "e2",
            "DeleteBucketPublicAccessBlock",
            errorCode="NoSuchPublicAccessBlockConfiguration",
            errorMessage="not found",
        ),
        _rec("d1", "PutObject", params={"key": "c.txt"}),  # data, not configuration
        _rec("x1", "PutBucketPolicy", params=PUBLIC_POLICY, eventSource="s3-outposts.amazonaws.com"),
        _rec("x2", "RunInstances", eventSource="ec2.amazonaws.com"),
    ]
    assert [r["eventID"] for r in kept if is_config_write(Record(r))] == [r["eventID"] for r in kept]
    assert [r["eventID"] for r in dropped if is_config_write(Record(r))] == []


def test_ingest_is_idempotent_by_event_id(store: Store) -> None:
    records = [
        Record(_rec(f"ev{i}", "PutBucketPolicy", params=PUBLIC_POLICY, at=NOW - timedelta(hours=i)))
        for i in range(5)
    ]
    assert ingest(store, records) == 5
    assert ingest(store, records) == 0
    assert ingest(store, [*records[:2], Record(_rec("ev9", "DeleteBucketPolicy"))]) == 1
    assert store.db["events"].count == 6
    assert ingest(store, [Record(_rec("", "PutBucketPolicy"))]) == 0  # no id, nothing to key it by


def test_reads_and_errors_are_not_stored(store: Store) -> None:
    records = [
        Record(_rec("ok", "PutBucketAcl", params={"x-amz-acl": "public-read"})),
        Record(_rec("read", "GetBucketAcl")),
        Record(_rec("fail", "PutBucketAcl", params={"x-amz-acl": "public-read"}, errorCode="AccessDenied")),
    ]
    assert ingest(store, records) == 1
    assert _ids(who_changed(store, "h1-ledger", now=NOW)) == ["ok"]
    assert raw_record(store, "ok")["eventName"] == "PutBucketAcl"  # type: ignore[index]
    assert raw_record(store, "read") is None


def test_who_changed_newest_first_within_days(store: Store) -> None:
    ingest(
        store,
        [
            Record(_rec("old", "PutBucketVersioning", at=NOW - timedelta(days=40))),
            Record(_rec("mid", "PutBucketPublicAccessBlock", params=BPA_ON, at=NOW - timedelta(days=3))),
            Record(_rec("new", "PutBucketPolicy", params=PUBLIC_POLICY, at=NOW - timedelta(minutes=5))),
            Record(_rec("other", "PutBucketPolicy", params=PUBLIC_POLICY, bucket="h1-elsewhere")),
        ],
    )
    changes = who_changed(store, "h1-ledger", days=90, now=NOW)
    assert _ids(changes) == ["new", "mid", "old"]
    assert _ids(who_changed(store, "h1-ledger", days=7, now=NOW)) == ["new", "mid"]
    assert who_changed(store, "h1-ledger", days=90, now=NOW, limit=1)[0].event_id == "new"
    newest = changes[0]
    assert newest.actor == "ivan" and newest.agent_kind == "CLI" and newest.source_ip == "198.51.100.4"
    assert newest.event_time == NOW - timedelta(minutes=5)
    assert "public" in newest.summary
    assert changes[1].summary == "Block Public Access: all four flags on"
    assert changes[2].summary == "Put bucket versioning"
    assert newest.as_dict()["event_time"].endswith("Z")


def test_account_level_changes_can_be_narrowed_to_one_account(store: Store) -> None:
    def account_write(event_id: str, account: str) -> Record:
        raw = _rec(event_id, "PutAccountPublicAccessBlock", params=BPA_ON, recipientAccountId=account)
        raw["requestParameters"] = {"Host": f"{account}.s3-control.us-east-2.amazonaws.com", **BPA_ON}
        return Record(raw)

    ingest(store, [account_write("mine", ACCT), account_write("theirs", "444455556666")])
    # Every account's account-level writes are kept under bucket '': unfiltered, they mix.
    assert sorted(_ids(who_changed(store, "", now=NOW))) == ["mine", "theirs"]
    assert _ids(who_changed(store, "", now=NOW, account=ACCT)) == ["mine"]
    assert _ids(who_changed(store, "", now=NOW, account="444455556666")) == ["theirs"]


def test_summaries_say_what_changed() -> None:
    partial = {
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": True,
        }
    }
    assert "BlockPublicPolicy" in summarise(Record(_rec("a", "PutBucketPublicAccessBlock", params=partial)))
    assert summarise(Record(_rec("b", "PutBucketPublicAccessBlock"))).endswith(
        "(configuration not in the record)"
    )
    assert (
        summarise(Record(_rec("c", "PutBucketAcl", params={"x-amz-acl": "private"}))) == "ACL set to private"
    )
    assert summarise(Record(_rec("d", "DeleteBucketPolicy"))) == "Bucket policy deleted"
    same_account = {
        "bucketPolicy": {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCT}:role/R"},
                }
            ]
        }
    }
    assert (
        summarise(Record(_rec("e", "PutBucketPolicy", params=same_account)))
        == "Bucket policy set (not public)"
    )


def test_reader_thread_while_another_ingests(store: Store) -> None:
    """The poller writes while a Slack listener reads: one connection per thread, no 'database is locked'."""
    errors: list[BaseException] = []
    done = threading.Event()
    seen: dict[int, list[int]] = {1: [], 2: []}

    def write() -> None:
        try:
            for batch in range(20):
                ingest(
                    store,
                    [
                        Record(
                            _rec(
                                f"t{batch}-{i}",
                                "PutBucketPolicy",
                                params=PUBLIC_POLICY,
                                at=NOW - timedelta(seconds=batch * 100 + i),
                            )
                        )
                        for i in range(25)
                    ],
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read(reader: int) -> None:
        try:
            while not done.is_set():
                seen[reader].append(len(who_changed(store, "h1-ledger", now=NOW, limit=1000)))
            seen[reader].append(len(who_changed(store, "h1-ledger", now=NOW, limit=1000)))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=write),
        threading.Thread(target=read, args=(1,)),
        threading.Thread(target=read, args=(2,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    for counts in seen.values():
        assert counts[-1] == 500
        assert counts == sorted(counts), "a reader never sees a half-written batch disappear"
        assert all(c % 25 == 0 for c in counts), "each batch is one transaction"
    assert store.db["events"].count == 500


def test_raw_records_are_kept_small_and_older_rows_still_read(store: Store) -> None:
    record = s3_record("PutBucketPublicAccessBlock", bucket="b1", params={"PublicAccessBlockConfiguration": True})
    record["eventID"] = "new"
    ingest(store, [Record(record)])
    packed = store.db.execute("select raw from events where event_id = 'new'").fetchone()[0]
    assert packed[:1] == RAW_V2 and len(packed) < len(isal_zlib.compress(json.dumps(record).encode(), 1)) * 0.7
    assert raw_record(store, "new") == prune(record) != record  # without what only the trail keeps
    old = {**record, "eventID": "old"}  # a row written before the dictionary: plain zlib
    ingest(store, [Record(old)])
    store.db.execute("update events set raw = ? where event_id = 'old'", [isal_zlib.compress(json.dumps(old).encode())])
    assert raw_record(store, "old") == old
    v1 = {**record, "eventID": "v1"}  # and one packed against the first dictionary
    ingest(store, [Record(v1)])
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, RAW_DICT_V1)
    store.db.execute("update events set raw = ? where event_id = 'v1'",
                     [RAW_V1 + deflate.compress(json.dumps(v1).encode()) + deflate.flush()])
    assert raw_record(store, "v1") == v1


def test_the_v2_dictionary_never_changes() -> None:
    # Rows are packed against it byte for byte: a better dictionary is a new version, not an edit.
    assert hashlib.sha256(RAW_DICT_V2).hexdigest()[:16] == "e56fef408a1807a8"


@pytest.mark.parametrize("event_id", ["0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D",
                                      "1111", "", "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"])
def test_event_ids_read_back_as_written(event_id: str) -> None:
    key = event_key(event_id)
    assert event_id_of(key) == event_id
    assert isinstance(key, bytes) == (event_id == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")


@pytest.mark.parametrize("moment_", [datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 30, 12, 0, 0, 1, tzinfo=UTC),
                                     datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                                     datetime(1999, 1, 1, 0, 0, 0, 500000, tzinfo=UTC), None])
def test_times_read_back_to_the_microsecond(moment_: datetime | None) -> None:
    stored = when(moment_)
    assert moment(stored) == moment_
    assert moment_ is None or isinstance(stored, int) == (moment_.microsecond == 0)


@pytest.mark.parametrize(("summary", "bucket"), [
    ("Bucket b1 policy made public", "b1"), ("b1 b1", "b1"), ("Put bucket tagging", "b1"), ("\0odd b1", "b1"),
    ("\1odd", "b1"), ("\0", ""), ("ACL set", ""),
])  # fmt: skip
def test_summaries_share_facets_across_buckets_and_read_back_exactly(summary: str, bucket: str) -> None:
    assert summary_of(summary_key(summary, bucket), bucket) == summary
    assert summary_key("Bucket b1 policy made public", "b1") == summary_key("Bucket b2 policy made public", "b2")


def test_a_bulk_insert_gives_back_the_page_cache_it_borrowed(store: Store) -> None:
    facet = (ACCT, "us-east-2", "PutBucketPolicy", "ivan", "arn", "IAMUser", "aws-cli", "CLI", "Policy set", "scan")
    rows = [IndexRow(f"ev{i}", 1_700_000_000 + i, "b1", "198.51.100.4", facet, b"") for i in range(BULK_ROWS)]
    before = store.db.execute("PRAGMA cache_size").fetchone()[0]
    assert insert_rows(store, rows) == BULK_ROWS
    assert insert_rows(store, rows) == 0
    assert store.db.execute("PRAGMA cache_size").fetchone()[0] == before
    assert store.db["index_facets"].count == 1
