"""`doctor` on coverage: regions against where buckets live, the default region's blind spot, the queues'
safety net, and the organisation's accounts (moto's S3, EC2, Organizations)."""

from __future__ import annotations

import io
from pathlib import Path

import boto3
from moto import mock_aws
from slack_sdk import WebClient

from bot.aws.clients import AwsClients
from bot.cli.doctor import run_doctor
from bot.core.config import Organization
from bot.store.database import Store
from tests.slack_requests import ACCOUNT, make_settings
from tests.slack_standin import SlackStandin, slack_standin
from tests.test_manifest_doctor import _doctor, regions_answered

# pytest fixtures used by parameter name in this module
FIXTURES = (slack_standin,)
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/bucketwatch-s3-api-calls"


def test_doctor_warns_that_the_default_region_misses_buckets_elsewhere(
    slack_standin: SlackStandin, tmp_path: Path
) -> None:
    settings = make_settings(slack_standin, tmp_path)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="home-bucket")
        for name in ("dublin-1", "dublin-2"):
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        code, out = _doctor(settings, slack_standin)
    assert code == 0, out  # coverage warnings degrade; they do not stop the bot
    assert (
        "✗ AWS_REGIONS: us-east-1: LookupEvents reads only these; changes made in other regions are missed"
        " (AWS_REGIONS=all reads each account's enabled regions)"
    ) in out
    assert (
        f"✗ AWS {ACCOUNT} regions: buckets in eu-west-1 (2) are outside the watched regions; watching us-east-1 of"
    ) in out
    assert "buckets: eu-west-1 (2), us-east-1 (1) (not essential" in out


def test_doctor_names_the_queues_and_the_safety_net(slack_standin: SlackStandin, tmp_path: Path) -> None:
    settings = make_settings(slack_standin, tmp_path, event_queue_urls=(QUEUE,), safety_net_factor=5)
    with mock_aws():
        code, out = _doctor(settings, slack_standin)
        assert code == 1 and "✗ queue bucketwatch-s3-api-calls: cannot be read: " in out
        boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=QUEUE.rsplit("/", 1)[1])
        code, out = _doctor(settings, slack_standin)
    assert "✓ queue bucketwatch-s3-api-calls: reachable; 0 message(s) waiting" in out
    assert code == 0, out
    assert "✓ queues: 1 queue(s) long-polled by listener threads" in out
    assert (
        "✓ LookupEvents: safety net: LookupEvents polls every 300 s (POLL_SECONDS 60 × SAFETY_NET_FACTOR 5)"
        " because a queue brings the events"
    ) in out
    assert "changes made in other regions are seen only through the queue(s) or trail" in out
    late = make_settings(slack_standin, tmp_path, event_queue_urls=(QUEUE,), safety_net_factor=60)
    with mock_aws():
        _code, out = _doctor(late, slack_standin)
    assert "✓ LookupEvents: safety net: LookupEvents polls every 3600 s" in out
    assert "call a source late after 180 minutes without a successful poll" in out  # the same rule as /readyz


def test_doctor_lists_the_organisations_accounts(slack_standin: SlackStandin, tmp_path: Path) -> None:
    settings = make_settings(slack_standin, tmp_path, accounts=(), organization=Organization("bucketwatch-readonly"),
                             lookup_polling=False)
    with mock_aws():
        org = boto3.client("organizations", region_name="us-east-1")
        org.create_organization(FeatureSet="ALL")
        member = org.create_account(AccountName="team", Email="t@example.com")["CreateAccountStatus"]["AccountId"]
        gone = org.create_account(AccountName="old", Email="o@example.com")["CreateAccountStatus"]["AccountId"]
        org.close_account(AccountId=gone)
        aws = AwsClients(settings, client_factory=regions_answered)
        out = io.StringIO()
        run_doctor(settings, slack=WebClient(token="xoxb-test", base_url=slack_standin.url), aws=aws, out=out,
                   store=Store(tmp_path / "bot.db"))
    text = out.getvalue()
    assert (
        f"✓ AWS Organizations: 2 active account(s), each read through role bucketwatch-readonly; re-listed daily;"
        f" not watched: {gone} (suspended)"
    ) in text
    assert f"✓ AWS {member} identity: arn:aws:sts::{member}:assumed-role/bucketwatch-readonly/" in text
    assert "AWS_ACCOUNTS = org:bucketwatch-readonly" in text
