"""The trail bucket source over moto S3: the AWSLogs layout, each log file read once, data events."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bot.aws.clients import AwsClients
from bot.core.config import ConfigError, Settings
from bot.core.record import Record
from bot.sources.poller import Poller
from bot.sources.state import load_state
from bot.sources.trail_bucket import TrailLocation, fair_shares, prune_read_files, start_after
from bot.store.database import Store
from standins.cloudtrail import public_bpa_off, s3_record

BUCKET = "org-trail-logs"
ACCT = "111122223333"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put_log(s3: Any, records: list[Any], *, when: datetime, suffix: str, org: bool = True, account: str = ACCT) -> str:
    base = f"trails/AWSLogs/o-abc123def4/{account}" if org else f"trails/AWSLogs/{account}"
    key = (
        f"{base}/CloudTrail/us-east-1/{when:%Y/%m/%d}/"
        f"{account}_CloudTrail_us-east-1_{when:%Y%m%dT%H%MZ}_{suffix}.json.gz"
    )
    body = gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode())
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def public_object_acl(when: datetime) -> dict[str, Any]:
    record = s3_record("PutObjectAcl", bucket="media", when=when, params={"key": "cat.jpg", "x-amz-acl": "public-read"})
    record["eventCategory"] = "Data"
    record["managementEvent"] = False
    return record


def make_poller(store: Store, calls: list[list[Record]]) -> Poller:
    settings = Settings(trail_buckets=(f"s3://{BUCKET}/trails",), regions=("us-east-1",), lookback_minutes=20)
    return Poller(settings, store, AwsClients(settings), on_records=calls.append)


def count_gets(poller: Poller) -> list[str]:
    got: list[str] = []
    client = poller.aws.ambient_client("s3", "us-east-1")
    client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: got.append(params["Key"]))
    return got


def test_data_event_from_trail_bucket_reaches_on_records(s3: Any, store: Store) -> None:
    now = datetime.now(UTC)
    acl = public_object_acl(now - timedelta(minutes=6))
    read = s3_record("GetObject", bucket="media", when=now - timedelta(minutes=6))
    put_log(s3, [read, acl], when=now - timedelta(minutes=5), suffix="a1b2")
    calls: list[list[Record]] = []
    report = make_poller(store, calls).poll_once()
    assert [[r.event_id for r in batch] for batch in calls] == [[acl["eventID"]]]
    source = report.sources[0]
    assert (source.source, source.seen, source.new, source.error) == (f"trail:{BUCKET}/trails", 2, 1, None)
    assert [f.detection for f in report.findings] == ["object_acl_public"]


def test_each_file_is_read_once_including_late_same_minute_files(s3: Any, store: Store) -> None:
    now = datetime.now(UTC)
    minute = now - timedelta(minutes=4)
    first = put_log(s3, [public_bpa_off(when=minute)], when=minute, suffix="m5n6")
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    gets = count_gets(poller)
    poller.poll_once()
    assert gets == [first]
    poller.poll_once()
    assert gets == [first]  # nothing new: nothing read again
    # Delivered later in the same minute, its random suffix sorts *before* the last key read.
    late = put_log(s3, [public_bpa_off(when=minute, bucket="late")], when=minute, suffix="a0a0")
    newer = put_log(s3, [s3_record("GetBucketAcl", when=now)], when=now, suffix="zz99")
    poller.poll_once()
    assert sorted(gets[1:]) == sorted([late, newer])
    poller.poll_once()
    assert len(gets) == 3
    assert [r.bucket for batch in calls for r in batch] == ["demo-bucket", "late"]
    progress = store.db.execute("select last_key from trail_progress").fetchall()
    assert progress == [(newer,)]


def test_old_files_before_the_first_window_are_not_read(s3: Any, store: Store) -> None:
    now = datetime.now(UTC)
    put_log(s3, [public_bpa_off(when=now - timedelta(days=3))], when=now - timedelta(days=3), suffix="old1", org=False)
    fresh = put_log(s3, [public_bpa_off(when=now)], when=now - timedelta(minutes=1), suffix="new1", org=False)
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    gets = count_gets(poller)
    poller.poll_once()
    assert gets == [fresh]


def test_read_files_outside_the_overlap_are_pruned(s3: Any, store: Store) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(minutes=19)
    put_log(s3, [public_bpa_off(when=old)], when=old, suffix="b1")
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    poller.poll_once()
    put_log(s3, [public_bpa_off(when=now)], when=now, suffix="b2")
    poller.poll_once()
    # The first file sorts more than the overlap before the newest: forgotten, and never listed again.
    assert prune_read_files(store) == 0  # the poll already pruned it
    keys = [r[0] for r in store.db.execute("select key from trail_files")]
    assert len(keys) == 1 and keys[0].endswith("_b2.json.gz")
    gets = count_gets(poller)
    poller.poll_once()
    assert gets == []
    assert len(calls) == 2


def test_corrupt_log_file_is_skipped_once_and_the_trail_goes_on(s3: Any, store: Store) -> None:
    now = datetime.now(UTC)
    bad = put_log(s3, [], when=now - timedelta(minutes=3), suffix="bad0")
    s3.put_object(Bucket=BUCKET, Key=bad, Body=b"\x1f\x8bnot really gzip")
    good = put_log(s3, [public_bpa_off(when=now)], when=now - timedelta(minutes=2), suffix="good")
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    gets = count_gets(poller)
    report = poller.poll_once()
    assert report.sources[0].error is None
    assert gets == [bad, good] and len(calls) == 1
    poller.poll_once()
    assert gets == [bad, good]
    # Kept once for a person to look at: the bytes stay in the bucket, the row says where.
    [row] = store.db["quarantine"].rows
    uri = f"s3://{BUCKET}/{bad}"
    assert row["source"] == f"trail:{BUCKET}/trails" and row["raw"] == uri
    assert row["reason"].startswith(f"{uri}: unreadable log file")


def test_one_accounts_unreadable_file_holds_back_that_account_region_only(s3: Any, store: Store) -> None:
    """Before, one file AWS would not hand over (another account's KMS key) failed the whole poll at every
    cycle: no account's changes came through, and `status` named neither the file nor the account."""
    now = datetime.now(UTC)
    denied_account, other = "111111111111", "222222222222"
    def change(minutes: int, account: str) -> dict[str, Any]:
        return {**public_bpa_off(when=now - timedelta(minutes=minutes)), "recipientAccountId": account}

    denied = put_log(s3, [change(8, denied_account)], when=now - timedelta(minutes=8), suffix="kms0",
                     account=denied_account)
    later = put_log(s3, [change(6, denied_account)], when=now - timedelta(minutes=6), suffix="kms1",
                    account=denied_account)
    put_log(s3, [change(4, other)], when=now - timedelta(minutes=4), suffix="fine", account=other)
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    allowed = [False]

    def kms(params: dict[str, Any], **_: Any) -> None:
        if denied_account in params["Key"] and not allowed[0]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    gets = count_gets(poller)
    poller.aws.ambient_client("s3", "us-east-1").meta.events.register("before-parameter-build.s3.GetObject", kms)
    report = poller.poll_once()
    [source] = report.sources
    assert [r.account for batch in calls for r in batch] == [other]  # the other account came through
    assert source.error == (f"could not read s3://{BUCKET}/{denied}: AccessDenied: Access Denied; the other"
                            " account-regions were read")
    assert later not in gets  # the denied account-region waits behind its file, in order
    [health] = poller.health()
    assert not health.healthy and denied_account in (health.last_error or "")
    allowed[0] = True  # the key policy is fixed: the next poll reads both files, in order, once
    report = poller.poll_once()
    assert report.sources[0].error is None
    assert [r.account for batch in calls for r in batch] == [other, denied_account, denied_account]
    assert poller.health()[0].healthy


def test_a_write_without_an_event_id_is_counted_and_set_aside_not_dropped(s3: Any, store: Store) -> None:
    now = datetime.now(UTC)
    nameless = public_bpa_off(when=now - timedelta(minutes=4))
    del nameless["eventID"]
    put_log(s3, [nameless, public_bpa_off(when=now - timedelta(minutes=3))], when=now - timedelta(minutes=4),
            suffix="noid")
    calls: list[list[Record]] = []
    make_poller(store, calls).poll_once()
    assert len([r for batch in calls for r in batch]) == 1  # the good one flows
    [row] = store.db["quarantine"].rows
    assert row["reason"] == "PutBucketPublicAccessBlock without an eventID: set aside"
    assert row["source"] == f"trail:{BUCKET}/trails" and '"eventName":"PutBucketPublicAccessBlock"' in row["raw"]


def test_malformed_records_are_quarantined_and_the_good_ones_flow(s3: Any, store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    acl = public_object_acl(now - timedelta(minutes=3))
    mixed = put_log(s3, [acl, 42, "<!channel>"], when=now - timedelta(minutes=2), suffix="mix1")
    lines = put_log(s3, [], when=now - timedelta(minutes=1), suffix="jsl1")
    good_line = json.dumps(public_bpa_off(when=now - timedelta(minutes=2), bucket="lines"))
    s3.put_object(Bucket=BUCKET, Key=lines, Body=gzip.compress(f"{good_line}\nnot json at all\n".encode()))
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    report = poller.poll_once()
    assert report.sources[0].error is None
    assert sorted(r.bucket or "" for batch in calls for r in batch) == ["lines", "media"]
    rows = [(r["reason"], r["raw"]) for r in store.db["quarantine"].rows_where(order_by="id")]
    assert rows[:2] == [
        (f"s3://{BUCKET}/{mixed}: record 2 is not a JSON object", "42"),
        (f"s3://{BUCKET}/{mixed}: record 3 is not a JSON object", '"<!channel>"'),
    ]
    assert rows[2][0].startswith(f"s3://{BUCKET}/{lines}: line 2: invalid JSON (") and rows[2][1] == "not json at all"
    assert len(rows) == 3
    # Lag: the newest event read from the trail (see bot.sources.event_lag).
    state = load_state(store, f"trail:{BUCKET}/trails")
    assert state.newest_event == now - timedelta(minutes=2)
    poller.poll_once()  # files are read once: nothing quarantined twice
    assert store.db["quarantine"].count == 3


class Trail:
    """A trail bucket several accounts deliver to, and a poller reading it on a clock the test moves."""

    def __init__(self, s3: Any, store: Store, *, max_files: int) -> None:
        self.s3 = s3
        self.now = datetime.now(UTC).replace(second=0, microsecond=0)
        self.calls: list[list[Record]] = []
        self.keys: list[str] = []
        settings = Settings(trail_buckets=(f"s3://{BUCKET}/trails",), regions=("us-east-1",), lookback_minutes=20)
        self.poller = Poller(
            settings, store, AwsClients(settings), on_records=self.calls.append, clock=lambda: self.now,
            max_files=max_files,
        )
        self.gets = count_gets(self.poller)
        self.store = store

    def deliver(self, account: str, when: datetime, suffix: str, records: list[dict[str, Any]]) -> None:
        key = (
            f"trails/AWSLogs/{account}/CloudTrail/us-east-1/{when:%Y/%m/%d}/"
            f"{account}_CloudTrail_us-east-1_{when:%Y%m%dT%H%MZ}_{suffix}.json.gz"
        )
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps({"Records": records}).encode()))
        self.keys.append(key)

    def busy(self, account: str, count: int) -> None:
        for n in range(count):
            read = s3_record("GetObject", bucket="busy", when=self.now)
            self.deliver(account, self.now, f"{self.now:%H%M}x{n}", [read])

    def poll(self) -> None:
        report = self.poller.poll_once()
        assert report.sources[0].error is None  # a capped poll is a success: what it read is handled
        self.now += timedelta(minutes=1)

    def state(self) -> Any:
        return load_state(self.store, f"trail:{BUCKET}/trails")

    def drain(self) -> int:
        """Polls, nothing new delivered, until no backlog is left; how many it took."""
        for n in range(1, 60):
            self.poll()
            if self.state().last_error is None:
                return n
        raise AssertionError(f"still {self.state().last_error} after 60 polls")

    def alerted(self) -> list[str]:
        return sorted(r.bucket or "" for batch in self.calls for r in batch)


def test_a_busy_account_region_does_not_starve_a_quiet_one_and_the_backlog_shows_in_health(
    s3: Any, store: Store
) -> None:
    trail = Trail(s3, store, max_files=3)
    # The busy account sorts first and delivers as many files per poll as one poll may read.
    trail.deliver("999900000000", trail.now - timedelta(minutes=1), "q1", [public_bpa_off(bucket="quiet-1")])
    for minute in range(25):  # longer than LOOKBACK_MINUTES: a sliding first window would lose both
        trail.busy("111100000000", 3)
        if minute == 12:
            trail.deliver("999900000000", trail.now, "q2", [public_bpa_off(bucket="quiet-2")])
        polled_at = trail.now
        trail.poll()
        state = trail.state()
        assert state.last_success == polled_at
        if minute == 0:
            assert state.last_error == "backlog: 1 file left to read"
            assert trail.poller.health()[0].healthy  # a warning shown, not a failure hiding progress
            assert trail.alerted() == ["quiet-1"]
    assert trail.alerted() == ["quiet-1", "quiet-2"]
    trail.drain()
    assert trail.state().last_error is None and trail.poller.health()[0].healthy
    assert sorted(trail.gets) == sorted(trail.keys)  # every file of both prefixes, each read once


def test_more_prefixes_waiting_than_files_per_poll_are_served_oldest_first(s3: Any, store: Store) -> None:
    trail = Trail(s3, store, max_files=1)
    for account in ("111100000000", "555500000000", "999900000000"):
        record = public_bpa_off(bucket=f"b-{account[:4]}")
        trail.deliver(account, trail.now - timedelta(minutes=2), account[:4], [record])
    for _ in range(25):
        trail.busy("111100000000", 1)  # the first prefix always has something new
        trail.poll()
    assert trail.alerted() == ["b-1111", "b-5555", "b-9999"]
    assert trail.state().last_error and trail.state().last_error.startswith("backlog: ")
    trail.drain()
    assert sorted(trail.gets) == sorted(trail.keys)


def test_fair_shares_split_the_budget_and_pass_on_what_a_prefix_cannot_use() -> None:
    assert fair_shares([5, 0, 1, 9], 4) == [2, 0, 1, 1]
    assert fair_shares([2, 5], 100) == [2, 5]
    assert fair_shares([3, 3, 3], 2) == [1, 1, 0]
    assert fair_shares([], 5) == []


def test_trail_locations_parse() -> None:
    assert TrailLocation.parse("s3://b/p/q/").logs_root == "p/q/AWSLogs/"
    assert TrailLocation.parse("s3://b").logs_root == "AWSLogs/"
    with pytest.raises(ConfigError):
        TrailLocation.parse("b/p")
    moment = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert start_after("AWSLogs/1/CloudTrail/eu-west-1/", moment) == (
        "AWSLogs/1/CloudTrail/eu-west-1/2026/01/02/1_CloudTrail_eu-west-1_20260102T0304Z"
    )
