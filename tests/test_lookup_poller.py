"""The LookupEvents poller against a fake CloudTrail endpoint on 127.0.0.1 (real HTTP, real botocore)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from bot.aws.clients import AwsClients
from bot.core.clock import iso
from bot.core.config import Settings, parse_accounts
from bot.core.record import Record
from bot.services.digest import DigestService
from bot.slack.messages import health_line
from bot.sources.health import STALE_AFTER
from bot.sources.lookup import LOOKUP_EVENT_NAMES, TokenBucket
from bot.sources.poller import Poller
from bot.sources.state import (
    QUARANTINE_KEEP,
    QUARANTINE_RAW_CHARS,
    Quarantined,
    load_state,
    quarantine,
    quarantine_counts,
)
from bot.store.database import MIGRATIONS, Store
from standins.cloudtrail import FakeCloudTrailServer, public_bpa_off, s3_record
from tests.clocks import RetryClock, VirtualClock

ACCT_A = "111122223333"  # bare id: ambient credentials
ACCT_B = "444455556666"  # read through a role, assumed at the fake's STS
ACCOUNTS = f"{ACCT_A},{ACCT_B}:arn:aws:iam::{ACCT_B}:role/BucketwatchRead:ext-123"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudTrailServer]:
    with FakeCloudTrailServer() as srv:
        srv.fake.default_account = ACCT_A
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", srv.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", srv.url)
        yield srv


def make_poller(store: Store, calls: list[list[Record]], *, regions: tuple[str, ...] = ("us-east-1",),
                rate: float = 200.0, max_attempts: int = 8, on_records=None) -> Poller:
    settings = Settings(accounts=parse_accounts(ACCOUNTS), regions=regions, lookback_minutes=20)
    return Poller(settings, store, AwsClients(settings, max_attempts=max_attempts),
                  on_records=on_records or calls.append, rate=rate)


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_public_event_becomes_exactly_one_on_records_call(server: FakeCloudTrailServer, store: Store) -> None:
    event = server.fake.add(public_bpa_off(bucket="brett-public-test-bucket", when=ago(2)))
    server.fake.add(s3_record("GetBucketAcl", bucket="brett-public-test-bucket", when=ago(1)))
    calls: list[list[Record]] = []
    report = make_poller(store, calls).poll_once()
    assert [[r.event_id for r in batch] for batch in calls] == [[event["eventID"]]]
    assert calls[0][0].bucket == "brett-public-test-bucket"
    assert [f.bucket for f in report.findings] == ["brett-public-test-bucket"]
    mine = next(s for s in report.sources if s.source == f"lookup:{ACCT_A}:us-east-1")
    assert (mine.seen, mine.new, mine.findings, mine.error) == (2, 1, 1, None)
    # The configuration write reached the who-changed index too.
    assert store.db["events"].count == 1


def test_duplicate_across_overlapping_windows_is_not_passed_twice(server: FakeCloudTrailServer, store: Store) -> None:
    event = server.fake.add(public_bpa_off(when=ago(5)))
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    poller.poll_once()
    poller.poll_once()
    served = [r for r in server.fake.requests(ACCT_A) if event["eventID"] in r.event_ids]
    assert len(served) == 2  # the second window overlapped and served it again …
    assert sum(len(batch) for batch in calls) == 1  # … and it was handed on once


def test_event_arriving_late_inside_window_is_caught_next_poll(server: FakeCloudTrailServer, store: Store) -> None:
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    poller.poll_once()
    assert calls == []
    # CloudTrail delivers an event 10 minutes after it happened, i.e. before the last poll's end.
    late = server.fake.add(public_bpa_off(when=ago(10)))
    poller.poll_once()
    assert [r.event_id for batch in calls for r in batch] == [late["eventID"]]


def test_access_denied_on_one_account_is_recorded_while_the_other_flows(
    server: FakeCloudTrailServer, store: Store
) -> None:
    server.fake.deny_accounts.add(ACCT_B)
    event = server.fake.add(public_bpa_off(when=ago(1), account=ACCT_A))
    server.fake.add(public_bpa_off(when=ago(1), account=ACCT_B))
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    report = poller.poll_once()
    assert [r.event_id for batch in calls for r in batch] == [event["eventID"]]
    health = {h.source: h for h in poller.health()}
    denied = health[f"lookup:{ACCT_B}:us-east-1"]
    assert denied.last_error is not None and denied.last_error.startswith("AccessDenied")
    assert denied.last_success is None and denied.failing and not denied.healthy
    assert health[f"lookup:{ACCT_A}:us-east-1"].healthy
    assert load_state(store, f"lookup:{ACCT_B}:us-east-1").last_attempt is not None
    assert [s.source for s in report.errors] == [f"lookup:{ACCT_B}:us-east-1"]
    # The role account was really read through its assumed role (the fake's keys name the account).
    assert any(r.access_key.startswith(f"ASIAFAKE{ACCT_B}") for r in server.fake.requests(ACCT_B))
    assert server.fake.assumed_roles == [(f"arn:aws:iam::{ACCT_B}:role/BucketwatchRead", "ext-123", "bucketwatch-read")]


def test_throttling_is_retried_without_losing_events(
    server: FakeCloudTrailServer, store: Store, retry_clock: RetryClock
) -> None:
    event = server.fake.add(public_bpa_off(when=ago(1)))
    server.fake.throttle_next(2, account=ACCT_A)
    calls: list[list[Record]] = []
    make_poller(store, calls).poll_once()
    statuses = [(r.status, r.error) for r in server.fake.requests(ACCT_A)]
    assert statuses == [(400, "ThrottlingException"), (400, "ThrottlingException"), (200, "")]
    assert [r.event_id for batch in calls for r in batch] == [event["eventID"]]
    assert retry_clock.waited > 0  # botocore backed off between the attempts


def test_throttled_out_keeps_the_watermark_and_the_next_poll_delivers(
    server: FakeCloudTrailServer, store: Store, retry_clock: RetryClock
) -> None:
    event = server.fake.add(public_bpa_off(when=ago(1)))
    server.fake.throttle_next(2, account=ACCT_A)
    calls: list[list[Record]] = []
    poller = make_poller(store, calls, max_attempts=1)  # botocore: one retry after the first attempt
    poller.poll_once()
    state = load_state(store, f"lookup:{ACCT_A}:us-east-1")
    assert state.watermark is None and state.last_error and "Throttling" in state.last_error
    assert calls == []
    poller.poll_once()
    assert [r.event_id for batch in calls for r in batch] == [event["eventID"]]
    assert load_state(store, f"lookup:{ACCT_A}:us-east-1").last_error is None


def test_idle_poll_costs_at_most_two_calls_per_account_region(server: FakeCloudTrailServer, store: Store) -> None:
    for account in (ACCT_A, ACCT_B):
        for i in range(30):  # a quiet account: some S3 reads, no writes
            server.fake.add(s3_record("GetBucketLocation", account=account, region="eu-west-1", when=ago(i / 2)))
    calls: list[list[Record]] = []
    make_poller(store, calls, regions=("us-east-1", "eu-west-1")).poll_once()
    for account in (ACCT_A, ACCT_B):
        for region in ("us-east-1", "eu-west-1"):
            assert 1 <= len(server.fake.requests(account, region)) <= 2
    assert calls == []


def test_read_dominated_window_switches_to_per_event_name_lookups(
    server: FakeCloudTrailServer, store: Store
) -> None:
    # A scanner reads 500 times in the last two minutes; the public policy was set 15 minutes ago.
    for i in range(500):
        server.fake.add(s3_record("GetBucketPolicyStatus", bucket=f"b{i % 40}", when=ago(i / 250)))
    policy = {"bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                             "Resource": "arn:aws:s3:::open-bucket/*"}]}}
    old_write = server.fake.add(s3_record("PutBucketPolicy", bucket="open-bucket", when=ago(15), params=policy))
    calls: list[list[Record]] = []
    make_poller(store, calls).poll_once()
    assert [r.event_id for batch in calls for r in batch] == [old_write["eventID"]]
    log = server.fake.requests(ACCT_A)
    assert [r.attribute for r in log[:1]] == [("EventSource", "s3.amazonaws.com")]
    by_name = [r.attribute[1] for r in log[1:] if r.attribute and r.attribute[0] == "EventName"]
    assert sorted(by_name) == sorted(LOOKUP_EVENT_NAMES)
    # Paging through the reads would have cost 11 calls per poll, growing with reads; this stays flat.
    assert len(log) == 1 + len(LOOKUP_EVENT_NAMES)


def test_write_heavy_window_pages_on_event_source(server: FakeCloudTrailServer, store: Store) -> None:
    for i in range(120):
        server.fake.add(s3_record("PutBucketTagging", bucket=f"t{i}", when=ago(i / 20)))
    # The poller's pacing and the stand-in's arrival times read one virtual clock, which only the
    # pacing's waits move on: the rate the stand-in sees is the pacing's own, whatever the machine's load.
    clock = VirtualClock()
    server.fake.clock = clock.now
    calls: list[list[Record]] = []
    poller = make_poller(store, calls, rate=1.8)
    poller.pace_clock, poller.pace_sleep = clock.now, clock.sleep
    poller.poll_once()
    log = server.fake.requests(ACCT_A)
    assert [r.attribute for r in log] == [("EventSource", "s3.amazonaws.com")] * 3
    assert sum(len(batch) for batch in calls) == 120
    # Paced under CloudTrail's 2 requests per second per account-region: sent 1/1.8 s apart (unpaced,
    # all three pages would arrive at the same instant).
    assert [round(r.at, 3) for r in log] == [0.0, 0.556, 1.111]
    assert server.fake.max_rate(1.0) <= 2


def test_watermark_not_advanced_when_on_records_raises(server: FakeCloudTrailServer, store: Store) -> None:
    event = server.fake.add(public_bpa_off(when=ago(3)))
    received: list[str] = []
    fail = [True]

    def on_records(records: list[Record]) -> None:
        if fail[0]:
            raise RuntimeError("alert engine down")
        received.extend(r.event_id for r in records)

    poller = make_poller(store, [], on_records=on_records)
    report = poller.poll_once()
    state = load_state(store, f"lookup:{ACCT_A}:us-east-1")
    assert state.watermark is None
    assert state.last_error and "alert engine down" in state.last_error
    assert store.db["seen_events"].count == 0
    assert any(s.error for s in report.sources if s.source.startswith(f"lookup:{ACCT_A}"))
    fail[0] = False
    poller.poll_once()
    assert received == [event["eventID"]]
    assert load_state(store, f"lookup:{ACCT_A}:us-east-1").watermark is not None


def test_token_bucket_spaces_calls() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        bucket.acquire()
    assert slept == [0.5, 0.5, 0.5]


def spoil(server: FakeCloudTrailServer, event: dict[str, object], text: str) -> None:
    """Serve `event`'s LookupEvents entry with `text` as its CloudTrailEvent."""
    for stored in server.fake.events[(ACCT_A, "us-east-1")]:
        if stored.entry["EventId"] == event["eventID"]:
            stored.entry["CloudTrailEvent"] = text


def test_malformed_entries_are_quarantined_once_and_the_poll_goes_on(
    server: FakeCloudTrailServer, store: Store
) -> None:
    good = server.fake.add(public_bpa_off(bucket="still-alerted", when=ago(2)))
    not_json = server.fake.add(public_bpa_off(bucket="x", when=ago(3)))
    a_list = server.fake.add(public_bpa_off(bucket="y", when=ago(4)))
    spoil(server, not_json, '{"eventVersion": "1.09", "eventName": ')
    spoil(server, a_list, "[1, 2]")
    calls: list[list[Record]] = []
    poller = make_poller(store, calls)
    report = poller.poll_once()
    mine = next(s for s in report.sources if s.source == f"lookup:{ACCT_A}:us-east-1")
    assert mine.error is None and (mine.seen, mine.new) == (3, 1)
    assert [r.event_id for batch in calls for r in batch] == [good["eventID"]]
    rows = sorted(store.db["quarantine"].rows, key=lambda r: r["reason"])
    assert [(r["source"], r["reason"]) for r in rows] == [
        (f"lookup:{ACCT_A}:us-east-1", "LookupEvents entry: CloudTrailEvent is a list, not an object"),
        (f"lookup:{ACCT_A}:us-east-1", "LookupEvents entry: CloudTrailEvent is not JSON (unexpected end of data)"),
    ]
    # The whole entry is kept: its EventId and the text that did not parse.
    assert a_list["eventID"] in rows[0]["raw"] and "[1, 2]" in rows[0]["raw"]
    assert not_json["eventID"] in rows[1]["raw"] and '\\"eventName\\": ' in rows[1]["raw"]
    # The overlap serves both again on the next poll: still two rows, the watermark moves on.
    poller.poll_once()
    assert store.db["quarantine"].count == 2
    assert load_state(store, f"lookup:{ACCT_A}:us-east-1").last_error is None


def test_lag_is_the_age_of_the_newest_event_seen_not_of_the_watermark(
    server: FakeCloudTrailServer, store: Store
) -> None:
    now = [datetime.now(UTC).replace(microsecond=0)]
    newest = now[0] - timedelta(minutes=7)
    server.fake.add(s3_record("GetBucketAcl", when=newest))  # a read counts: it is an event seen
    server.fake.add(public_bpa_off(when=now[0] - timedelta(minutes=9)))
    poller = make_poller(store, [])
    poller.clock = lambda: now[0]
    source = f"lookup:{ACCT_A}:us-east-1"

    def lag() -> float | None:
        return {h.source: h for h in poller.health()}[source].lag_seconds

    poller.poll_once()
    state = load_state(store, source)
    assert state.watermark == now[0]  # the watermark still marks what was read: up to the poll's now
    assert state.newest_event == newest and state.lag_seconds == lag() == 7 * 60
    now[0] += timedelta(minutes=5)  # a quiet poll: nothing newer, so the newest event ages
    poller.poll_once()
    assert load_state(store, source).watermark == now[0] and lag() == 12 * 60
    server.fake.deny_accounts.add(ACCT_A)  # failing: the watermark stays, the lag keeps growing
    now[0] += timedelta(minutes=5)
    poller.poll_once()
    state = load_state(store, source)
    assert state.watermark == now[0] - timedelta(minutes=5) and state.last_error
    assert state.lag_seconds == lag() == 17 * 60
    # A source that has never returned an event has no lag to show, rather than a made-up one.
    assert {h.source: h for h in poller.health()}[f"lookup:{ACCT_B}:us-east-1"].lag_seconds is None


def test_status_app_home_and_digest_judge_health_by_one_rule(server: FakeCloudTrailServer, store: Store) -> None:
    now = [datetime.now(UTC).replace(microsecond=0)]
    server.fake.deny_accounts.add(ACCT_B)
    poller = make_poller(store, [])
    poller.clock = lambda: now[0]
    poller.poll_once()
    ok, denied = f"lookup:{ACCT_A}:us-east-1", f"lookup:{ACCT_B}:us-east-1"

    def judged() -> dict[str, bool]:
        return {h.source: h.healthy for h in poller.health()}

    def digest() -> dict[str, bool]:
        return {p.source: p.healthy for p in DigestService(store, tz="UTC").figures(now[0]).pollers}

    assert judged() == digest() == {ok: True, denied: False}
    now[0] += STALE_AFTER + timedelta(minutes=1)  # no poll since: late, though its last poll went fine
    late = {h.source: h for h in poller.health()}[ok]
    assert late.stale and not late.failing
    assert judged() == digest() == {ok: False, denied: False}
    assert health_line(late).startswith(":warning:")  # what `status` and App Home show


def test_quarantine_keeps_each_entry_once_for_a_limited_time_and_count(store: Store) -> None:
    now = datetime.now(UTC)
    big = "x" * (QUARANTINE_RAW_CHARS + 10)
    entries = [Quarantined("bad", big), Quarantined("bad", big[:-5]), Quarantined("other", "{")]
    with store.atomic() as db:
        assert quarantine(db, "trail:a", entries, now) == 2  # both big ones are the same kept text
        assert quarantine(db, "trail:a", entries, now) == 0
        assert quarantine(db, "trail:b", entries[2:], now) == 1  # per source
    # A source that keeps serving new bad input keeps only its newest QUARANTINE_KEEP entries.
    flood = [Quarantined("bad", f"entry {n}") for n in range(QUARANTINE_KEEP + 5)]
    with store.atomic() as db:
        quarantine(db, "trail:a", flood, now + timedelta(minutes=1))
    kept = [r["raw"] for r in store.db["quarantine"].rows_where("source = ?", ["trail:a"], order_by="id")]
    assert len(kept) == QUARANTINE_KEEP and kept[-1] == f"entry {QUARANTINE_KEEP + 4}" and "{" not in kept
    # After QUARANTINE_DAYS nothing of a source is kept.
    with store.atomic() as db:
        quarantine(db, "trail:a", [], now + timedelta(days=31))
        quarantine(db, "trail:b", [], now + timedelta(days=31))
    assert quarantine_counts(store) == {}


def test_quarantine_migration_hashes_and_dedupes_existing_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    MIGRATIONS.apply(old, stop_before="0010_sources_quarantine_hash")
    at = iso(datetime.now(UTC))
    for raw in ("same", "same", "different"):
        old.table("quarantine").insert({"at": at, "source": "trail:a", "reason": "bad", "raw": raw})
    old.close()
    store = Store(path)
    assert sorted(r["raw"] for r in store.db["quarantine"].rows) == ["different", "same"]
    with store.atomic() as db:
        entries = [Quarantined("bad", "same"), Quarantined("bad", "new")]
        assert quarantine(db, "trail:a", entries, datetime.now(UTC)) == 1
    assert quarantine_counts(store) == {"trail:a": 3}
