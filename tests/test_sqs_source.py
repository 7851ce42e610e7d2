"""The SQS source over moto S3 + SQS: trail log files announced by S3 notifications, deleted once handled."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from bot.aws.clients import AwsClients
from bot.core.config import ConfigError, Settings, load_settings
from bot.core.record import Record
from bot.sources import sqs as sqs_source
from bot.sources.poller import Poller
from bot.sources.queue_messages import parse_message
from bot.sources.sqs import SqsQueue, poll_queue
from bot.store.database import Store
from standins.cloudtrail import public_bpa_off, s3_record
from tests.clocks import QueueClock

BUCKET = "org-trail-logs"
ACCT = "111122223333"
QUEUE_VISIBILITY = 30  # seconds: the queue's own default, as SQS creates it


@dataclass
class Aws:
    s3: Any
    sqs: Any
    url: str
    clock: QueueClock


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    clock = QueueClock(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs", region_name="us-east-1")
        attributes = {"VisibilityTimeout": str(QUEUE_VISIBILITY)}
        url = sqs.create_queue(QueueName="trail-events", Attributes=attributes)["QueueUrl"]
        yield Aws(s3, sqs, url, clock)


def log_key(when: datetime, suffix: str, *, prefix: str = "trail logs", kind: str = "CloudTrail") -> str:
    # The prefix holds a space: notifications encode it as "+", the reader must decode it.
    return (
        f"{prefix}/AWSLogs/o-abc123def4/{ACCT}/{kind}/us-east-1/{when:%Y/%m/%d}/"
        f"{ACCT}_{kind}_us-east-1_{when:%Y%m%dT%H%MZ}_{suffix}.json.gz"
    )


def put_log(aws: Aws, records: list[Any], key: str) -> str:
    body = gzip.compress(json.dumps({"Records": records}).encode())
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def s3_notification(key: str, *, event: str = "ObjectCreated:Put", bucket: str = BUCKET) -> dict[str, Any]:
    # As S3 sends it: the key URL-encoded, a space as "+".
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": datetime.now(UTC).isoformat(),
        "eventName": event,
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "size": 123}},
    }
    return {"Records": [record]}


def sns_wrapped(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "5b2f5c1e-0000-0000-0000-000000000000",
        "TopicArn": f"arn:aws:sns:us-east-1:{ACCT}:trail-events",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
    }


def send(aws: Aws, body: dict[str, Any] | str) -> None:
    aws.sqs.send_message(QueueUrl=aws.url, MessageBody=body if isinstance(body, str) else json.dumps(body))


def messages_left(aws: Aws) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def public_object_acl(when: datetime) -> dict[str, Any]:
    record = s3_record("PutObjectAcl", bucket="media", when=when, params={"key": "cat.jpg", "x-amz-acl": "public-read"})
    record["eventCategory"] = "Data"
    record["managementEvent"] = False
    return record


def make_poller(aws: Aws, store: Store, on_records: Any) -> Poller:
    settings = Settings(trail_queue_urls=(aws.url,), regions=("us-east-1",))
    return Poller(settings, store, AwsClients(settings), on_records=on_records)


def count_gets(poller: Poller) -> list[str]:
    got: list[str] = []
    client = poller.aws.ambient_client("s3", "us-east-1")
    client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: got.append(params["Key"]))
    return got


@pytest.mark.parametrize("wrap", ["raw", "sns"])
def test_announced_log_file_reaches_on_records_and_the_message_is_deleted(aws: Aws, store: Store, wrap: str) -> None:
    now = datetime.now(UTC)
    acl = public_object_acl(now - timedelta(minutes=6))
    read = s3_record("GetObject", bucket="media", when=now - timedelta(minutes=6))
    key = put_log(aws, [read, acl], log_key(now - timedelta(minutes=5), "a1b2"))
    notification = s3_notification(key)
    send(aws, sns_wrapped(notification) if wrap == "sns" else notification)
    calls: list[list[Record]] = []
    poller = make_poller(aws, store, calls.append)
    report = poller.poll_once()
    assert [[r.event_id for r in batch] for batch in calls] == [[acl["eventID"]]]
    [source] = report.sources
    assert (source.source, source.seen, source.new, source.error) == ("sqs:trail-events", 2, 1, None)
    assert [f.detection for f in report.findings] == ["object_acl_public"]
    assert messages_left(aws) == 0
    [health] = poller.health()
    assert health.source == "sqs:trail-events" and health.healthy


def test_test_events_digests_and_other_events_are_deleted_unread(aws: Aws, store: Store) -> None:
    now = datetime.now(UTC)
    digest = put_log(aws, [], log_key(now, "d1", kind="CloudTrail-Digest"))
    log = put_log(aws, [public_bpa_off(when=now)], log_key(now, "c1"))
    send(aws, {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET, "Time": now.isoformat()})
    send(aws, sns_wrapped({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}))
    send(aws, s3_notification(digest))
    send(aws, s3_notification("trail logs/some/other/object.json"))
    send(aws, s3_notification(log, event="ObjectRemoved:Delete"))
    calls: list[list[Record]] = []
    poller = make_poller(aws, store, calls.append)
    gets = count_gets(poller)
    report = poller.poll_once()
    assert gets == [] and calls == []
    assert report.sources[0].error is None
    assert messages_left(aws) == 0
    assert store.db["quarantine"].count == 0


def test_malformed_messages_are_quarantined_and_deleted(aws: Aws, store: Store) -> None:
    now = datetime.now(UTC)
    good = put_log(aws, [public_bpa_off(when=now)], log_key(now, "g1"))
    send(aws, "not json at all")
    send(aws, {"hello": "<!channel>"})
    send(aws, {"Records": [{"eventName": "ObjectCreated:Put"}]})
    send(aws, s3_notification(good))
    calls: list[list[Record]] = []
    poller = make_poller(aws, store, calls.append)
    report = poller.poll_once()
    assert report.sources[0].error is None
    assert [r.event_name for batch in calls for r in batch] == ["PutBucketPublicAccessBlock"]
    assert messages_left(aws) == 0
    rows = {r["raw"]: r for r in store.db["quarantine"].rows}
    assert set(rows) == {
        "not json at all",
        '{"hello": "<!channel>"}',
        '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
    }
    assert all(r["source"] == "sqs:trail-events" for r in rows.values())
    assert "invalid JSON" in rows["not json at all"]["reason"]
    assert "neither an S3 event notification nor an EventBridge event" in rows['{"hello": "<!channel>"}']["reason"]


def test_message_stays_until_on_records_succeeds_then_is_handled_once(aws: Aws, store: Store) -> None:
    now = datetime.now(UTC)
    key = put_log(aws, [public_bpa_off(when=now, bucket="retry-me")], log_key(now, "r1"))
    send(aws, s3_notification(key))
    calls: list[list[Record]] = []
    failing = [True]

    def on_records(records: list[Record]) -> None:
        if failing[0]:
            raise RuntimeError("alert engine down")
        calls.append(records)

    poller = make_poller(aws, store, on_records)
    report = poller.poll_once()
    assert report.sources[0].error and "alert engine down" in report.sources[0].error
    assert messages_left(aws) == 1  # in flight: back after the visibility timeout
    assert not poller.health()[0].healthy
    failing[0] = False
    aws.clock.advance(sqs_source.VISIBILITY_SECONDS + 1)  # the visibility timeout ends
    report = poller.poll_once()
    assert [r.bucket for batch in calls for r in batch] == ["retry-me"]
    assert report.sources[0].error is None and messages_left(aws) == 0
    assert poller.health()[0].healthy
    # A duplicate delivery (SQS is at-least-once) is read, recognised by event id and deleted.
    send(aws, s3_notification(key))
    poller.poll_once()
    assert len(calls) == 1 and messages_left(aws) == 0


def test_missing_object_is_recorded_and_deleted(aws: Aws, store: Store) -> None:
    key = log_key(datetime.now(UTC), "gone")
    send(aws, s3_notification(key))
    poller = make_poller(aws, store, lambda records: None)
    report = poller.poll_once()
    assert report.sources[0].error is None
    assert messages_left(aws) == 0
    [row] = store.db["quarantine"].rows
    assert row["raw"] == f"s3://{BUCKET}/{key}" and "NoSuchKey" in row["reason"]


def test_access_denied_keeps_the_message_and_shows_in_health(aws: Aws, store: Store) -> None:
    now = datetime.now(UTC)
    key = put_log(aws, [public_bpa_off(when=now, bucket="kms-locked")], log_key(now, "k1"))
    send(aws, s3_notification(key))
    calls: list[list[Record]] = []
    poller = make_poller(aws, store, calls.append)
    client = poller.aws.ambient_client("s3", "us-east-1")

    def deny(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
        return AWSResponse("https://s3.amazonaws.com", 403, {}, None), error

    client.meta.events.register("before-call.s3.GetObject", deny)
    report = poller.poll_once()
    assert report.sources[0].error == f"s3://{BUCKET}/{key}: AccessDenied: Access Denied"
    [health] = poller.health()
    assert not health.healthy and health.last_error == report.sources[0].error
    assert calls == [] and messages_left(aws) == 1
    # The bot's role is given the permission: the retried message goes through.
    client.meta.events.unregister("before-call.s3.GetObject", deny)
    aws.clock.advance(sqs_source.VISIBILITY_SECONDS + 1)  # the visibility timeout ends
    report = poller.poll_once()
    assert report.sources[0].error is None
    assert [r.bucket for batch in calls for r in batch] == ["kms-locked"] and messages_left(aws) == 0
    assert poller.health()[0].healthy


def test_queue_urls_parse() -> None:
    queue = SqsQueue.parse("https://sqs.eu-west-1.amazonaws.com/111122223333/org-trail")
    assert (queue.name, queue.region, queue.source) == ("org-trail", "eu-west-1", "sqs:org-trail")
    assert SqsQueue.parse("https://us-gov-west-1.queue.amazonaws.com/1/q").region == "us-gov-west-1"
    assert SqsQueue.parse("http://localhost:4566/000000000000/q").region is None
    for bad in ("sqs://queue", "https://sqs.us-east-1.amazonaws.com/", "org-trail"):
        with pytest.raises(ConfigError):
            SqsQueue.parse(bad)
    settings = load_settings({"TRAIL_QUEUE_URLS": "https://sqs.us-east-1.amazonaws.com/1/a, https://x/1/b"})
    assert settings.trail_queue_urls == ("https://sqs.us-east-1.amazonaws.com/1/a", "https://x/1/b")
    assert load_settings({}).trail_queue_urls == ()


def test_notification_keys_are_url_decoded_and_filtered() -> None:
    key = "trail logs/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/f+x.json.gz"
    [obj] = parse_message(json.dumps(s3_notification(key))).files
    assert obj.key == key and obj.bucket == BUCKET and obj.region == "us-east-1"
    insight = "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/01/02/f.json.gz"
    assert parse_message(json.dumps(s3_notification(insight))).files == []


def received(sqs: Any) -> list[dict[str, Any]]:
    """The parameters of every ReceiveMessage `sqs` sends."""
    got: list[dict[str, Any]] = []
    sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", lambda params, **_: got.append(dict(params)))
    return got


def test_messages_are_received_invisible_for_the_whole_poll_not_the_queue_default(
    aws: Aws, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    key = put_log(aws, [public_bpa_off(when=now, bucket="slow")], log_key(now, "v1"))
    send(aws, s3_notification(key))
    poller = make_poller(aws, store, lambda records: aws.clock.advance(QUEUE_VISIBILITY + 1))  # slower than 30 s
    monkeypatch.setattr(sqs_source, "VISIBILITY_SECONDS", 300)
    params = received(poller.aws.ambient_client("sqs", "us-east-1"))
    report = poller.poll_once()
    assert [p["VisibilityTimeout"] for p in params] == [300]
    # Still invisible when the slow hand-over ended, so deleted rather than given out a second time.
    assert report.sources[0].error is None and messages_left(aws) == 0


def test_receiving_stops_when_the_time_budget_is_used(aws: Aws, store: Store) -> None:
    for n in range(30):
        send(aws, {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET, "RequestId": str(n)})
    settings = Settings(trail_queue_urls=(aws.url,), regions=("us-east-1",))
    clients = AwsClients(settings)
    params = received(clients.ambient_client("sqs", "us-east-1"))
    ticks = iter([0.0, 10.0, 61.0, 70.0])  # start, before batch 2, before batch 3 (past 60% of 100 s), end
    [result] = poll_queue(clients, SqsQueue.parse(aws.url), region="us-east-1", visibility_seconds=100,
                          clock=lambda: next(ticks))
    assert [p["VisibilityTimeout"] for p in params] == [100, 100]
    assert result.error is None and len(result.done) == 20
    result.acknowledge()
    assert messages_left(aws) == 10  # the third batch waits for the next poll, never received
