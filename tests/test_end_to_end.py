"""From CloudTrail to the channel, end to end: the bot's own wiring (`create_app`) polling a LookupEvents
stand-in, reading the live state from moto's server, posting to a Slack Web API stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.core.config import Settings, parse_accounts
from standins.cloudtrail import FakeCloudTrailServer, public_bpa_off, s3_record
from standins.slack import SlackStandin
from tests.clocks import RetryClock, VirtualClock

ACCT_A, ACCT_B = "111122223333", "444455556666"
CHANNEL = "C0ALERTS"
ALL_ON = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)


@dataclass
class World:
    cloudtrail: Any
    slack: SlackStandin
    services: Any

    def poll(self) -> Any:
        report = self.services.poller.poll_once()
        self.services.outbox.flush()
        return report

    def cards(self) -> list[Any]:
        return self.slack.top_level(CHANNEL)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str) -> Iterator[World]:
    monkeypatch.chdir(tmp_path)
    for service in ("S3", "S3_CONTROL", "IAM"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_url)
    with FakeCloudTrailServer() as cloudtrail, SlackStandin() as slack:
        cloudtrail.fake.default_account = ACCT_A
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", cloudtrail.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", cloudtrail.url)  # AssumeRole for account B
        settings = Settings(
            slack_bot_token="xoxb-test",
            slack_api_url=slack.url,
            alert_channel=CHANNEL,
            accounts=parse_accounts(f"{ACCT_A},{ACCT_B}:arn:aws:iam::{ACCT_B}:role/bucketwatch-readonly"),
            regions=("us-east-1",),
            lookback_minutes=20,
            db_path=tmp_path / "bot.db",
        )
        _app, services = create_app(settings)
        # LookupEvents pacing (1.8 calls/s) on a virtual clock: counted, not slept; the pacing itself is
        # checked in test_lookup_poller against the stand-in's arrival times.
        pacing = VirtualClock()
        services.poller.pace_clock, services.poller.pace_sleep = pacing.now, pacing.sleep
        yield World(cloudtrail, slack, services)


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_a_public_event_is_one_card_and_a_second_change_goes_to_its_thread(world: World) -> None:
    world.cloudtrail.fake.add(public_bpa_off(bucket="brett-public-test-bucket", when=ago(3)))
    world.poll()
    [card] = world.cards()
    assert "brett-public-test-bucket" in card.text and "brett" in card.text
    policy = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
    world.cloudtrail.fake.add(
        s3_record("PutBucketPolicy", bucket="brett-public-test-bucket", when=ago(1), params={"bucketPolicy": policy})
    )
    world.poll()
    assert len(world.cards()) == 1  # no second top-level card
    replies = world.slack.replies(card.ts)
    assert any("policy made public" in r.text for r in replies)
    assert world.slack.accepted("chat.update")  # the card itself was brought up to date


def test_a_late_event_inside_the_window_is_caught_and_nothing_is_posted_twice(world: World) -> None:
    world.cloudtrail.fake.add(public_bpa_off(bucket="first", when=ago(1)))
    world.poll()
    # CloudTrail delivers an older event after the poll that already moved past its time.
    world.cloudtrail.fake.add(public_bpa_off(bucket="delivered-late", when=ago(12)))
    world.poll()
    world.poll()
    buckets = [json.dumps(c.blocks) for c in world.cards()]
    assert len(buckets) == 2
    assert any("delivered-late" in b for b in buckets) and any('"first' in b or "`first`" in b for b in buckets)
    assert len(world.slack.accepted("chat.postMessage")) == 2


def test_re_enabling_block_public_access_resolves_the_alert_and_says_by_whom(world: World) -> None:
    world.cloudtrail.fake.add(public_bpa_off(bucket="self-healing", when=ago(4)))
    world.poll()
    [card] = world.cards()
    restore = {"PublicAccessBlockConfiguration": ALL_ON}
    world.cloudtrail.fake.add(
        s3_record("PutBucketPublicAccessBlock", bucket="self-healing", when=ago(2), params=restore, user="sam")
    )
    world.poll()
    [alert] = world.services.alerts.alerts_for("self-healing", open_only=False)
    assert alert.status == "resolved"
    updated = json.dumps(world.slack.message(card.ts).blocks)
    assert "Resolved" in updated and "sam" in updated
    assert '"action_id": "fix"' not in updated  # nobody is asked to fix what is fixed


def test_access_denied_in_one_account_is_reported_while_the_other_alerts(world: World) -> None:
    world.cloudtrail.fake.deny_accounts.add(ACCT_B)
    world.cloudtrail.fake.add(public_bpa_off(bucket="in-a", when=ago(2), account=ACCT_A))
    world.cloudtrail.fake.add(public_bpa_off(bucket="in-b", when=ago(2), account=ACCT_B), account=ACCT_B)
    world.poll()
    assert [c for c in world.cards() if "in-a" in c.text]
    health = {h.source: h for h in world.services.poller.health()}
    assert "AccessDenied" in (health[f"lookup:{ACCT_B}:us-east-1"].last_error or "")
    assert health[f"lookup:{ACCT_A}:us-east-1"].last_error in (None, "")
    # Once access is granted, B's event is not lost: the watermark never moved past it.
    world.cloudtrail.fake.deny_accounts.clear()
    world.poll()
    assert [c for c in world.cards() if "in-b" in c.text]


def test_throttling_slows_the_poll_without_losing_events(world: World, retry_clock: RetryClock) -> None:
    world.cloudtrail.fake.add(public_bpa_off(bucket="throttled", when=ago(2)))
    world.cloudtrail.fake.throttle_next(3, account=ACCT_A)
    world.poll()
    log = world.cloudtrail.fake.requests(ACCT_A)
    assert sum(1 for r in log if "Throttling" in r.error) == 3
    assert retry_clock.waited > 0  # slowed: botocore backed off (on the test's clock, not slept)
    assert [c for c in world.cards() if "throttled" in c.text]


def test_without_lookup_polling_the_trail_feeds_alerts_and_accounts_still_give_roles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str
) -> None:
    """LOOKUP_POLLING=false: no LookupEvents calls; a trail event still gets its card and live verdict."""
    import gzip

    import boto3

    for service in ("S3", "S3_CONTROL", "IAM"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_url)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="org-trail-e2e")
    s3.create_bucket(Bucket="from-the-trail")
    record = public_bpa_off(bucket="from-the-trail", when=ago(1))
    now = datetime.now(UTC)
    key = (
        f"AWSLogs/{ACCT_A}/CloudTrail/us-east-1/{now:%Y/%m/%d}/"
        f"{ACCT_A}_CloudTrail_us-east-1_{now:%Y%m%dT%H%MZ}_e2e.json.gz"
    )
    s3.put_object(Bucket="org-trail-e2e", Key=key, Body=gzip.compress(json.dumps({"Records": [record]}).encode()))
    with FakeCloudTrailServer() as cloudtrail, SlackStandin() as slack:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", cloudtrail.url)
        settings = Settings(
            slack_bot_token="xoxb-test", slack_api_url=slack.url, alert_channel=CHANNEL,
            accounts=parse_accounts(ACCT_A), regions=("us-east-1",), lookup_polling=False,
            trail_buckets=("s3://org-trail-e2e",), db_path=tmp_path / "bot.db",
        )
        _app, services = create_app(settings)
        services.poller.poll_once()
        services.outbox.flush()
        assert cloudtrail.fake.requests() == []
        [card] = slack.top_level(CHANNEL)
        assert "from-the-trail" in card.text
        assert "Live check" in json.dumps(card.blocks) and "Could not tell" not in json.dumps(card.blocks)
