"""Every message shape on any queue, over moto S3 + SQS: EventBridge API calls alerted from the record itself,
trail files announced by S3 or EventBridge read, and a message that keeps failing set aside."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import boto3
import moto.sqs.models
import pytest
from moto import mock_aws

from bot.aws.clients import AwsClients
from bot.core.config import Settings
from bot.core.record import Record
from bot.sources import sqs as sqs_source
from bot.sources.listener import QueueListener
from bot.sources.poller import Poller
from bot.sources.queue_messages import parse_message
from bot.sources.state import set_aside_counts
from bot.store.database import Store
from standins.cloudtrail import public_bpa_off, s3_record
from standins.eventbridge import api_call_event, object_event
from tests.clocks import QueueClock
from tests.test_sqs_source import BUCKET, Aws, log_key, messages_left, put_log, send, sns_wrapped

VISIBILITY = 1  # seconds: a message not deleted comes back after this (on moto's clock, moved on by the test)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setattr(sqs_source, "VISIBILITY_SECONDS", VISIBILITY)
    clock = QueueClock(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": str(VISIBILITY)})["QueueUrl"]
        yield Aws(s3, sqs, url, clock)


def make_poller(aws: Aws, store: Store, on_records: Any) -> Poller:
    settings = Settings(event_queue_urls=(aws.url,), regions=("us-east-1",))
    return Poller(settings, store, AwsClients(settings), on_records=on_records)


def gets(poller: Poller) -> list[str]:
    got: list[str] = []
    client = poller.aws.ambient_client("s3", "us-east-1")
    client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: got.append(params["Key"]))
    return got


@pytest.mark.parametrize("wrap", ["raw", "sns"])
def test_an_eventbridge_api_call_is_handed_over_from_the_record_itself(aws: Aws, store: Store, wrap: str) -> None:
    record = public_bpa_off(bucket="seconds-not-minutes")
    read = s3_record("GetBucketAcl", bucket="seconds-not-minutes")
    for event in (api_call_event(record), api_call_event(read)):
        send(aws, sns_wrapped(event) if wrap == "sns" else event)
    calls: list[list[Record]] = []
    poller = make_poller(aws, store, calls.append)
    files = gets(poller)
    report = poller.poll_once()
    assert [[r.event_id for r in batch] for batch in calls] == [[record["eventID"]]]  # the read is not an alert
    [source] = report.sources
    assert (source.source, source.seen, source.new, source.error) == ("sqs:events", 2, 1, None)
    assert [f.detection for f in report.findings] == ["bucket_bpa_deleted"] or report.findings
    assert files == [] and messages_left(aws) == 0
    [health] = poller.health()
    assert health.healthy and health.lag_seconds is not None and health.lag_seconds < 60


def test_an_eventbridge_object_created_for_a_log_file_reads_the_file(aws: Aws, store: Store) -> None:
    now = datetime.now(UTC)
    record = public_bpa_off(bucket="from-a-file", when=now)
    key = put_log(aws, [record], log_key(now, "eb1"))  # "trail logs/…": a space, given as is by EventBridge
    encoded = put_log(aws, [public_bpa_off(bucket="encoded-key", when=now)], log_key(now, "eb2"))
    digest = put_log(aws, [], log_key(now, "eb3", kind="CloudTrail-Digest"))
    send(aws, object_event(BUCKET, key))
    send(aws, object_event(BUCKET, quote_plus(encoded, safe="/")))  # should a key come URL-encoded after all
    send(aws, object_event(BUCKET, digest))
    send(aws, object_event(BUCKET, key, detail_type="Object Deleted"))
    send(aws, object_event(BUCKET, "some/other/object.csv"))
    calls: list[list[Record]] = []
    poller = make_poller(aws, store, calls.append)
    files = gets(poller)
    report = poller.poll_once()
    assert sorted(r.bucket or "" for batch in calls for r in batch) == ["encoded-key", "from-a-file"]
    assert report.sources[0].error is None and messages_left(aws) == 0
    assert key in files and digest not in files and "some/other/object.csv" not in files
    assert store.db["quarantine"].count == 0


@pytest.mark.parametrize("wrap", ["raw", "sns"])
def test_cloudtrails_own_sns_notification_of_a_log_file_reads_the_file(aws: Aws, store: Store, wrap: str) -> None:
    """The trail's own SNS topic ({"s3Bucket", "s3ObjectKey": [...]}) is a common way to feed a trail queue;
    before, it was quarantined as "neither an S3 event notification nor an EventBridge event"."""
    now = datetime.now(UTC)
    first = put_log(aws, [public_bpa_off(bucket="by-sns-1", when=now)], log_key(now, "sns1"))
    second = put_log(aws, [public_bpa_off(bucket="by-sns-2", when=now)], log_key(now, "sns2"))
    digest = put_log(aws, [], log_key(now, "sns3", kind="CloudTrail-Digest"))
    delivered = {"s3Bucket": BUCKET, "s3ObjectKey": [first, second, digest]}
    send(aws, sns_wrapped(delivered) if wrap == "sns" else delivered)
    send(aws, {"s3Bucket": BUCKET, "s3ObjectKey": []})  # says nothing: set aside
    calls: list[list[Record]] = []
    poller = make_poller(aws, store, calls.append)
    files = gets(poller)
    report = poller.poll_once()
    assert sorted(r.bucket or "" for batch in calls for r in batch) == ["by-sns-1", "by-sns-2"]
    assert report.sources[0].error is None and messages_left(aws) == 0 and digest not in files
    [row] = store.db["quarantine"].rows
    assert row["reason"].endswith("CloudTrail notification without s3Bucket or s3ObjectKey")


def test_malformed_eventbridge_events_are_quarantined_and_deleted(aws: Aws, store: Store) -> None:
    no_detail = {"version": "0", "id": "e-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3"}
    not_a_record = api_call_event({"hello": "<!channel>"})
    no_key = object_event(BUCKET, "x")
    no_key["detail"]["object"] = {}
    for body in (no_detail, not_a_record, no_key):
        send(aws, body)
    poller = make_poller(aws, store, lambda records: None)
    report = poller.poll_once()
    assert report.sources[0].error is None and messages_left(aws) == 0
    reasons = {r["reason"].split(": ", 1)[1] for r in store.db["quarantine"].rows}
    assert reasons == {
        "EventBridge event 'e-1' has no detail object",
        f"EventBridge event {no_key['id']!r} has no bucket.name or object.key",
        f"EventBridge event {not_a_record['id']!r}: detail is not a CloudTrail record",
    }


def test_every_shape_is_read_on_either_setting() -> None:
    record = public_bpa_off(bucket="b")
    notification = {"Records": [{"eventName": "ObjectCreated:Put", "awsRegion": "eu-west-1",
                                 "s3": {"bucket": {"name": "t"}, "object": {"key": "AWSLogs/111122223333/CloudTrail/"
                                                                            "eu-west-1/2026/01/02/f.json.gz"}}}]}
    assert parse_message(json.dumps(api_call_event(record))).records == [record]
    assert parse_message(json.dumps(sns_wrapped(api_call_event(record)))).records == [record]
    [obj] = parse_message(json.dumps(sns_wrapped(notification))).files
    assert (obj.bucket, obj.region) == ("t", "eu-west-1")
    settings = Settings(event_queue_urls=("https://sqs.us-east-1.amazonaws.com/1/a",),
                        trail_queue_urls=("https://sqs.us-east-1.amazonaws.com/1/a", "https://x/1/b"))
    assert [q.source for q in Poller(settings, Store(":memory:"), AwsClients(settings)).queues] == ["sqs:a", "sqs:b"]


def test_a_message_that_keeps_failing_is_set_aside_and_does_not_hold_up_the_others(
    aws: Aws, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqs_source, "MAX_RECEIVES", 2)
    send(aws, api_call_event(public_bpa_off(bucket="fine")))
    send(aws, api_call_event(public_bpa_off(bucket="poison")))
    handed: list[str] = []

    def on_records(records: list[Record]) -> None:
        if any(r.bucket == "poison" for r in records):
            raise RuntimeError("alert engine trips on this one")
        handed.extend(r.bucket or "" for r in records)

    poller = make_poller(aws, store, on_records)
    listener = QueueListener(poller, poller.queues[0], wait_seconds=1, visibility_seconds=VISIBILITY)
    [first] = listener.run_once()  # both arrive together: the hand-over fails, both come back
    assert "alert engine trips" in (first.error or "") and handed == [] and messages_left(aws) == 2
    aws.clock.advance(VISIBILITY + 0.2)
    second = listener.run_once()  # redelivered: each on its own, so "fine" gets through
    assert handed == ["fine"] and sorted(bool(r.error) for r in second if r.seen) == [False, True]
    assert messages_left(aws) == 1
    aws.clock.advance(VISIBILITY + 0.2)
    listener.run_once()  # third receive of "poison": set aside unread, deleted
    assert handed == ["fine"] and messages_left(aws) == 0
    assert set_aside_counts(store) == {"sqs:events": 1}
    [row] = [r for r in store.db["quarantine"].rows]
    assert row["reason"].startswith("set aside after 3 receives") and "alert engine trips" in row["reason"]
    assert json.loads(row["raw"])["detail"]["requestParameters"]["bucketName"] == "poison"
    [health] = poller.health()
    assert health.healthy and health.last_error == "1 message set aside in the last 24 h (see status)"


def test_the_listener_thread_hands_over_within_its_long_poll(
    aws: Aws, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[tuple[str, float]] = []
    poller = make_poller(aws, store, lambda records: handed.extend((r.bucket or "", time.monotonic()) for r in records))
    waiting = threading.Event()
    real_wait = moto.sqs.models.Queue.wait_for_messages

    def wait_for_messages(queue: Any, timeout: int) -> None:
        waiting.set()
        real_wait(queue, timeout)

    monkeypatch.setattr(moto.sqs.models.Queue, "wait_for_messages", wait_for_messages)
    listener = QueueListener(poller, poller.queues[0], wait_seconds=5)
    listener.start()
    try:
        assert waiting.wait(5)  # the listener is now waiting inside ReceiveMessage
        sent = time.monotonic()
        send(aws, api_call_event(public_bpa_off(bucket="right-away")))
        deadline = sent + 4
        while not handed and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        aws.clock.long_polls_on_the_clock(monkeypatch)  # its next 5 s long poll is not waited out by stop()
        listener.stop(timeout=10)
    assert [b for b, _ in handed] == ["right-away"]
    assert handed[0][1] - sent < 2  # answered on arrival, not at the end of the 5 s wait
    assert messages_left(aws) == 0
