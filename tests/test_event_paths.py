"""One event, three paths (EventBridge, LookupEvents, the trail file): one alert and one card, through the bot's
own wiring against moto's server (S3, SQS), the LookupEvents stand-in and the Slack stand-in."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.app import create_app
from bot.core.config import Settings, parse_accounts
from bot.sources.listener import start_listeners
from bot.sources.poller import Poller
from standins.cloudtrail import FakeCloudTrailServer, public_bpa_off
from standins.eventbridge import api_call_event
from standins.slack import SlackStandin
from tests.clocks import QueueClock

ACCT = "111122223333"
CHANNEL = "C0ALERTS"
TRAIL = "org-trail"


@dataclass
class World:
    cloudtrail: Any
    slack: SlackStandin
    services: Any
    sqs: Any
    s3: Any
    queue_url: str

    def send(self, body: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def cards(self) -> list[Any]:
        return self.slack.top_level(CHANNEL)


def world_settings(slack: SlackStandin, queue_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        slack_bot_token="xoxb-test", slack_api_url=slack.url, alert_channel=CHANNEL,
        accounts=parse_accounts(ACCT), regions=("us-east-1",), event_queue_urls=(queue_url,),
        db_path=tmp_path / "bot.db", **extra,
    )  # fmt: skip


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str) -> Iterator[World]:
    for service in ("S3", "S3_CONTROL", "IAM", "SQS"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_url)
    with FakeCloudTrailServer() as cloudtrail, SlackStandin() as slack:
        cloudtrail.fake.default_account = ACCT
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", cloudtrail.url)
        sqs = boto3.client("sqs", region_name="us-east-1")
        name = f"events-{tmp_path.name}"[:80]
        queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        s3 = boto3.client("s3", region_name="us-east-1")
        if TRAIL not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:  # one moto server for the session
            s3.create_bucket(Bucket=TRAIL)
        _app, services = create_app(world_settings(slack, queue_url, tmp_path, safety_net_factor=3))
        yield World(cloudtrail, slack, services, sqs, s3, queue_url)


def trail_file(world: World, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The log file CloudTrail writes minutes later, and the S3 notification announcing it."""
    now = datetime.now(UTC)
    key = (f"AWSLogs/{ACCT}/CloudTrail/us-east-1/{now:%Y/%m/%d}/{ACCT}_CloudTrail_us-east-1_{now:%Y%m%dT%H%MZ}_"
           f"{records[0]['eventID'][:8]}.json.gz")
    world.s3.put_object(Bucket=TRAIL, Key=key, Body=gzip.compress(json.dumps({"Records": records}).encode()))
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": TRAIL}, "object": {"key": key}}}]}


def test_one_event_through_eventbridge_lookup_events_and_the_trail_file_is_one_alert_and_one_card(
    world: World,
) -> None:
    record = public_bpa_off(bucket="three-paths", when=datetime.now(UTC) - timedelta(minutes=2))
    world.send(api_call_event(record))  # seconds after the call
    world.services.poller.poll_once()
    world.services.outbox.flush()
    [card] = world.cards()
    assert "three-paths" in card.text
    world.cloudtrail.fake.add(record)  # 5–15 minutes later, LookupEvents serves the same event
    world.send(trail_file(world, [record]))  # and the trail's log file is announced
    report = world.services.poller.poll_once()
    world.services.outbox.flush()
    queue = f"sqs:{world.queue_url.rsplit('/', 1)[1]}"
    assert {s.source: s.new for s in report.sources} == {f"lookup:{ACCT}:us-east-1": 0, queue: 0}
    assert sum(s.seen for s in report.sources) == 2  # both paths did return it
    assert len(world.services.alerts.alerts_for("three-paths", open_only=False)) == 1
    assert len(world.slack.accepted("chat.postMessage")) == 1 and world.slack.replies(card.ts) == []


def test_the_running_bot_posts_a_card_seconds_after_the_message_arrives(world: World) -> None:
    poller = world.services.poller
    listeners = start_listeners(poller, wait_seconds=2)
    try:
        assert poller.listening
        world.send(api_call_event(public_bpa_off(bucket="within-seconds")))
        [call] = world.slack.wait_for("chat.postMessage", timeout=5)
        assert "within-seconds" in call.params["text"]
        # The scheduled poll leaves the queue to the listener.
        report = poller.poll_scheduled()
        assert all(not s.source.startswith("sqs:") for s in report.sources)
    finally:
        for listener in listeners:
            listener.stop(timeout=5)


def test_with_a_queue_lookup_events_polls_every_safety_net_factor_cycles(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited = QueueClock(monkeypatch).long_polls_on_the_clock(monkeypatch)  # the queue stays empty
    poller = world.services.poller
    assert poller.lookup_every == 3
    polled = [any(s.source.startswith("lookup:") for s in poller.poll_scheduled().sources) for _ in range(6)]
    assert polled == [True, False, False, True, False, False]
    assert len(waited) == 6  # every cycle long-polled the queue
    every_cycle = world_settings(world.slack, world.queue_url, tmp_path, safety_net_factor=1)
    assert Poller(every_cycle, poller.store, poller.aws).lookup_every == 1
    no_queue = Settings(accounts=parse_accounts(ACCT), safety_net_factor=3)
    assert Poller(no_queue, poller.store, poller.aws).lookup_every == 1  # without a queue, LookupEvents is all
