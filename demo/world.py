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
import logging
import os
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from bot.core.bpa import FLAGS

ACCOUNT = "111122223333"
REGION = "us-east-1"
CHANNEL = "C0SECURITY"
ALICE, MALLORY = "U0ALICE", "U0MALLORY"
NAMES = {ALICE: "alice", MALLORY: "mallory", "U0BOT": "bucketwatch"}
SECRET = "demo-signing-secret"
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




def main(*, quiet: bool = False) -> int:
    """The whole story, against moto, the CloudTrail stand-in and the Slack stand-in on 127.0.0.1."""
    os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT  # read by moto at import: buckets live in the sample's account
    from moto.server import ThreadedMotoServer

    from standins.cloudtrail import FakeCloudTrailServer
    from standins.slack import SlackStandin

    story = Story(quiet)
    with tempfile.TemporaryDirectory(prefix="bucketwatch-demo-") as tmp, ExitStack() as stack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        cloudtrail = FakeCloudTrailServer()
        stack.enter_context(cloudtrail)
        slack = stack.enter_context(SlackStandin())
        slack.users.update({uid: {"id": uid, "name": name, "real_name": name} for uid, name in NAMES.items()})
        _isolate_environment(f"http://{host}:{port}", cloudtrail.url, Path(tmp))
        return Demo(story, Path(tmp), cloudtrail, slack, stack).run()


class Demo:
    def __init__(self, story: Story, tmp: Path, cloudtrail: Any, slack: Any, stack: ExitStack):
        import boto3

        self.story, self.tmp, self.cloudtrail, self.slack, self.stack = story, tmp, cloudtrail, slack, stack
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        from bot.aws.clients import _default_client

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
        s3.put_bucket_acl(Bucket="release-artifacts", ACL="public-read-write")
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

    def notify(self, bucket: str, key: str) -> None:
        """The S3 event notification the trail bucket sends to the queue for a new log file."""
        event = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventName": "ObjectCreated:Put",
                 "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"Records": [event]}))

    def flags(self, bucket: str) -> str:
        from botocore.exceptions import ClientError

        try:
            config = self.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except ClientError:
            return "no Block Public Access configuration"
        return ", ".join(f"{flag}={'on' if config[flag] else 'off'}" for flag in FLAGS)

    # ---- the bot ---------------------------------------------------------------------------------

    def start_bot(self) -> None:
        from bot.app import create_app
        from bot.core.config import Account, Settings
        from bot.slack.transport import start_http_thread

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
            event_queue_urls=(self.event_queue_url,),
            db_path=self.tmp / "bucketwatch.db",
        )
        self.app, self.services = create_app(self.settings)
        server, stop = start_http_thread(self.app, self.settings)
        self.stack.callback(stop)
        self.url = f"http://127.0.0.1:{server.effective_port}/slack/events"

    def poll(self) -> Any:
        report = self.services.poller.poll_once()
        self.services.outbox.flush()
        return report

    def press(self, action_id: str, value: str, user: str, message_ts: str) -> None:
        from standins.requests import block_action, encode_payload, post

        payload = block_action(action_id, value, user=user, channel=CHANNEL, message_ts=message_ts,
                               response_url=self.slack.response_url("press"))
        reply = post(self.url, encode_payload(payload), secret=SECRET)
        if reply.status != 200:
            raise RuntimeError(f"the bot answered {reply.status} to a signed press")

    def slash(self, text: str, user: str = ALICE) -> dict[str, Any]:
        from standins.requests import encode_form, post, slash_body

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

    def wait(self, method: str, count: int) -> list[Any]:
        calls: list[Any] = self.slack.wait_for(method, count=count, timeout=15)
        return calls

    def show(self, who: str, text: str, blocks: Any) -> None:
        from demo.render import render_blocks

        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        self.story.message(who, render_blocks(blocks or [], fallback=text, users=NAMES))

    # ---- the story -------------------------------------------------------------------------------

    def run(self) -> int:
        from demo.story import tell

        return tell(self)
