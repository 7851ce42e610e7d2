"""`python -m bot demo`: the whole bot, offline, end to end, printed as a channel would see it.

Nothing is faked inside the bot. Around it, on 127.0.0.1: moto's server for S3, S3 Control and
STS; a CloudTrail LookupEvents stand-in serving the bundled sample trail; a Slack Web API stand-in
that records every message; and the bot's own HTTP endpoint receiving button presses and slash
commands signed exactly as Slack signs them.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.exceptions import ClientError

from bot.app import build_health, create_app
from bot.aws.clients import AwsClients, _default_client
from bot.core.bpa import FLAGS
from bot.core.config import Account, Settings
from bot.slack.transport import start_http_thread
from demo.render import render_blocks
from standins.requests import block_action, encode_form, encode_payload, post, slash_body

ACCOUNT = "111122223333"
REGION = "us-east-1"
CHANNEL = "C0SECURITY"
ALICE, MALLORY = "U0ALICE", "U0MALLORY"
BRETT, DANA = "U0BRETT", "U0DANA"  # asked by DM (ACTOR_EMAIL_DOMAIN): brett@example.com, dana@example.com
NAMES = {ALICE: "alice", MALLORY: "mallory", BRETT: "brett", DANA: "dana", "U0BOT": "bucketwatch"}
SECRET = "demo-signing-secret"
REMEDIATION_ROLE = "bucketwatch-remediation"
TRAIL_BUCKET = "org-cloudtrail"  # listed by the bot (TRAIL_BUCKETS)
ORG_TRAIL_BUCKET = "org-trail-feed"  # announced to the bot through SQS (TRAIL_QUEUE_URLS)
EVENT_QUEUE = "s3-api-calls"  # fed by EventBridge (EVENT_QUEUE_URLS; deploy/eventbridge-*.cfn.yaml)
SAMPLE = "samples/trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/26"


class Story:
    """Numbered chapters on stdout; `quiet` keeps only the chapter titles and the final summary."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.chapter = 0

    def title(self, text: str) -> None:
        self.chapter += 1
        print(f"\n━━ {self.chapter}. {text}")

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(text)

    def message(self, who: str, lines: list[str]) -> None:
        if self.quiet:
            return
        print(f"  ┌ {who}")
        for line in lines:
            print(f"  │ {line}")
        print("  └")


def _sample_records() -> list[dict[str, Any]]:
    folder = resources.files("bot").joinpath(SAMPLE)
    records: list[dict[str, Any]] = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        records.extend(json.loads(gzip.decompress(item.read_bytes()))["Records"])
    return records


def _isolate_environment(moto_url: str, cloudtrail_url: str, home: Path) -> None:
    """Fake credentials and local endpoints only: the demo can never reach a real AWS account."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "SLACK_")):
            del os.environ[name]
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            # boto3 reads these itself: the bot passes no endpoint_url anywhere.
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ENDPOINT_URL_CLOUDTRAIL": cloudtrail_url,
        }
    )




class Demo:
    def __init__(self, story: Story, tmp: Path, cloudtrail: Any, slack: Any, stack: ExitStack):

        self.story, self.tmp, self.cloudtrail, self.slack, self.stack = story, tmp, cloudtrail, slack, stack
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)

        # The same client set-up the bot uses (S3 Control's account host prefix handled for stand-ins).
        self.s3control = _default_client(boto3.Session(), "s3control", REGION, None)
        self.records = {r["eventID"]: r for r in _sample_records()}
        self.now = datetime.now(UTC).replace(microsecond=0)

    # ---- the world: buckets in moto, events in CloudTrail ---------------------------------------

    def _serve(self, record: dict[str, Any], minutes_ago: float) -> dict[str, Any]:
        """Put a sample record into the LookupEvents stand-in, re-dated to `minutes_ago`."""
        record = copy.deepcopy(record)
        record["eventTime"] = (self.now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.cloudtrail.fake.add(record)
        return record

    def build_world(self) -> None:
        s3 = self.s3
        for bucket in ("brett-public-test-bucket", "analytics-exports", "release-artifacts", "partner-drop"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="analytics-exports", Key="exports/2026-11-customers.csv", Body=b"id,email\n")
        s3.create_bucket(Bucket=TRAIL_BUCKET)  # the organisation trail's bucket: data events land here
        s3.create_bucket(Bucket=ORG_TRAIL_BUCKET)
        self.queue_url = self.sqs.create_queue(QueueName="org-trail-files")["QueueUrl"]
        # Scan workers read this one (bucketwatch worker); the bot reads what they send (FINDINGS_QUEUE_URL).
        self.worker_queue_url = self.sqs.create_queue(QueueName="worker-trail-files")["QueueUrl"]
        self.findings_url = self.sqs.create_queue(QueueName="trail-findings")["QueueUrl"]
        self.event_queue_url = self.sqs.create_queue(QueueName=EVENT_QUEUE)["QueueUrl"]
        s3.create_bucket(Bucket="hr-reports")
        s3.put_object(Bucket="hr-reports", Key="2026/salaries.xlsx", Body=b"...")
        # What the sample trail did, done to the buckets so the live verdict has something real to read.
        s3.put_public_access_block(
            Bucket="brett-public-test-bucket",
            PublicAccessBlockConfiguration={flag: False for flag in FLAGS},
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::analytics-exports/*"}
            ],
        }
        s3.put_bucket_policy(Bucket="analytics-exports", Policy=json.dumps(policy))
        s3.put_bucket_ownership_controls(
            Bucket="release-artifacts", OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
        )
        # public-read-write, spelled out: moto stores the canned ACL's READ and WRITE as one grant and
        # GetBucketAcl then shows READ only, where S3 shows both.
        owner = s3.get_bucket_acl(Bucket="release-artifacts")["Owner"]
        everyone = {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}
        s3.put_bucket_acl(Bucket="release-artifacts", AccessControlPolicy={"Owner": owner, "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
            {"Grantee": everyone, "Permission": "READ"}, {"Grantee": everyone, "Permission": "WRITE"},
        ]})
        # The account-wide guard still ignores public ACLs: the card must say which layer holds.
        self.s3control.put_public_access_block(
            AccountId=ACCOUNT,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": False, "RestrictPublicBuckets": False,
            },
        )

    def deliver_log_file(self, records: list[dict[str, Any]], bucket: str = TRAIL_BUCKET, tag: str = "demo0001") -> str:
        """Write a CloudTrail log file into a trail bucket, as CloudTrail delivers it."""
        now = datetime.now(UTC)
        key = (
            f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{now:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_{REGION}_{now:%Y%m%dT%H%MZ}_{tag}.json.gz"
        )
        for record in records:
            record["eventTime"] = (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode())
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        return key

    def notify(self, bucket: str, key: str, queue_url: str = "") -> None:
        """The S3 event notification the trail bucket sends to the queue for a new log file."""
        event = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventName": "ObjectCreated:Put",
                 "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
        self.sqs.send_message(QueueUrl=queue_url or self.queue_url, MessageBody=json.dumps({"Records": [event]}))

    def announce_by_trail_topic(self, bucket: str, key: str) -> None:
        """CloudTrail's own SNS notification of a delivered log file, as the topic sends it to a queue."""
        delivered = {"s3Bucket": bucket, "s3ObjectKey": [key]}
        envelope = {"Type": "Notification", "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:org-trail-delivered",
                    "Message": json.dumps(delivered)}
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(envelope))

    def flags(self, bucket: str) -> str:

        try:
            config = self.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except ClientError:
            return "no Block Public Access configuration"
        return ", ".join(f"{flag}={'on' if config[flag] else 'off'}" for flag in FLAGS)

    # ---- the bot ---------------------------------------------------------------------------------

    def start_bot(self) -> None:

        self.settings = Settings(
            slack_bot_token="xoxb-demo",
            slack_signing_secret=SECRET,
            slack_api_url=self.slack.url,
            alert_channel=CHANNEL,
            responders=(ALICE,),
            accounts=(Account(ACCOUNT),),
            regions=(REGION,),
            lookback_minutes=60,
            trail_buckets=(f"s3://{TRAIL_BUCKET}",),
            trail_queue_urls=(self.queue_url,),
            findings_queue_url=self.findings_url,
            event_queue_urls=(self.event_queue_url,),
            db_path=self.tmp / "bucketwatch.db",
            # Fixes and undos assume this role through moto's STS, as the Slack user who pressed.
            remediation_role=REMEDIATION_ROLE,
            # The person behind a change is asked by DM; the CI role is a robot, never asked.
            actor_email_domain="example.com",
            unattended_roles=("ci-deployer",),
        )
        self.slack.emails.update({"brett@example.com": BRETT, "dana@example.com": DANA})
        self.assumed: list[dict[str, str]] = []  # what the bot asked STS for (moto does not echo SourceIdentity)
        aws = AwsClients(self.settings, session_factory=self._recording_session)
        self.app, self.services = create_app(self.settings, aws=aws)
        self.health = build_health(self.services)
        server, stop = start_http_thread(self.app, self.settings, health=self.health,
                                         store=self.services.store)
        self.stack.callback(stop)
        self.url = f"http://127.0.0.1:{server.effective_port}/slack/events"
        self.base = f"http://127.0.0.1:{server.effective_port}"

    def _recording_session(self) -> Any:

        session = botocore.session.get_session()

        def sent(params: dict[str, Any], **_: Any) -> None:
            body = params.get("body") or {}
            self.assumed.append({k: str(body.get(k, "")) for k in ("RoleArn", "RoleSessionName", "SourceIdentity")})

        def answered(parsed: dict[str, Any], **_: Any) -> None:
            if self.assumed:
                self.assumed[-1]["Arn"] = str(parsed.get("AssumedRoleUser", {}).get("Arn", ""))

        session.register("before-call.sts.AssumeRole", sent)
        session.register("after-call.sts.AssumeRole", answered)
        return session

    def poll(self) -> Any:
        report = self.services.poller.poll_once()
        self.services.outbox.flush()
        return report

    def press(self, action_id: str, value: str, user: str, message_ts: str) -> None:

        payload = block_action(action_id, value, user=user, channel=CHANNEL, message_ts=message_ts,
                               response_url=self.slack.response_url("press"))
        reply = post(self.url, encode_payload(payload), secret=SECRET)
        if reply.status != 200:
            raise RuntimeError(f"the bot answered {reply.status} to a signed press")

    def forged_press(self, action_id: str, value: str, user: str, message_ts: str) -> int:
        """The same press without Slack's signature (a float timestamp): the HTTP status it gets."""
        from standins.requests import block_action, encode_payload, post

        payload = block_action(action_id, value, user=user, channel=CHANNEL, message_ts=message_ts,
                               response_url=self.slack.response_url("forged"))
        headers = {"X-Slack-Request-Timestamp": "1700000000.5", "X-Slack-Signature": "v0=forged"}
        return post(self.url, encode_payload(payload), signed=False, headers=headers).status

    def slash(self, text: str, user: str = ALICE) -> dict[str, Any]:

        before = len(self.slack.calls_to("response_url:slash"))
        fields = slash_body(text, user=user, command=self.settings.slash_command, channel=CHANNEL)
        fields["response_url"] = self.slack.response_url("slash")
        reply = post(self.url, encode_form(fields), secret=SECRET)
        if reply.body:
            return dict(json.loads(reply.body))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            calls = self.slack.calls_to("response_url:slash")
            if len(calls) > before:
                return dict(calls[-1].params)
            time.sleep(0.05)
        raise RuntimeError(f"no answer to {self.settings.slash_command} {text}")

    def get(self, path: str) -> tuple[int, str]:
        """GET a health path on the bot's port, as a platform's probe or Prometheus would."""

        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait(self, method: str, count: int) -> list[Any]:
        calls: list[Any] = self.slack.wait_for(method, count=count, timeout=15)
        return calls

    def show(self, who: str, text: str, blocks: Any) -> None:

        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        self.story.message(who, render_blocks(blocks or [], fallback=text, users=NAMES))

    # ---- the story -------------------------------------------------------------------------------
