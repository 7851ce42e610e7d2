"""Scan workers on moto's SQS and S3: any number of them, killed mid-file, and the bot as the single writer."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from slack_sdk import WebClient

from bot.aws.clients import AwsClients
from bot.core.config import Settings
from bot.core.record import Record
from bot.slack.outbox import Outbox
from bot.sources import worker as worker_module
from bot.sources.poller import Poller
from bot.sources.sqs import MAX_RECEIVES
from bot.sources.state import set_aside_counts
from bot.sources.worker import Worker, WorkReport, decode, run
from bot.store.database import Store
from standins.cloudtrail import public_bpa_off, s3_record
from tests.clocks import QueueClock
from tests.slack_standin import SlackStandin, slack_standin  # noqa: F401
from tests.test_sqs_source import s3_notification
from tests.wiring import alert_service

REPO = Path(__file__).resolve().parents[1]
BUCKET = "org-trail"
ACCT = "111122223333"


@dataclass
class Queues:
    s3: Any
    sqs: Any
    notifications: str
    findings: str


def _queues(s3: Any, sqs: Any, visibility: int = 30) -> Queues:
    s3.create_bucket(Bucket=BUCKET)
    attributes = {"VisibilityTimeout": str(visibility)}
    notifications = sqs.create_queue(QueueName="trail-files", Attributes=attributes)["QueueUrl"]
    findings = sqs.create_queue(QueueName="trail-findings", Attributes=attributes)["QueueUrl"]
    return Queues(s3, sqs, notifications, findings)


@pytest.fixture
def queues() -> Iterator[Queues]:
    with mock_aws():
        yield _queues(boto3.client("s3", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1"))


def _key(n: int, when: datetime) -> str:
    return (f"AWSLogs/{ACCT}/CloudTrail/us-east-1/{when:%Y/%m/%d}/"
            f"{ACCT}_CloudTrail_us-east-1_{when:%Y%m%dT%H%MZ}_f{n:04d}.json.gz")  # fmt: skip


def _deliver(q: Queues, n: int, records: list[dict[str, Any]], when: datetime) -> str:
    key = _key(n, when)
    body = json.dumps({"Records": records}, separators=(",", ":")).encode()
    q.s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(body, 1))
    return key


def _notify(q: Queues, *keys: str) -> None:
    records = [s3_notification(key, bucket=BUCKET)["Records"][0] for key in keys]
    q.sqs.send_message(QueueUrl=q.notifications, MessageBody=json.dumps({"Records": records}))


def _trail(q: Queues, files: int) -> tuple[set[str], list[str]]:
    """`files` log files, each with reads, benign writes and two exposures: their exposures' ids, their keys."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    exposures: set[str] = set()
    keys = []
    for n in range(files):
        exposure = [public_bpa_off(when=now, bucket=f"b{n}-{i}") for i in range(2)]
        exposures |= {r["eventID"] for r in exposure}
        noise = [s3_record("GetBucketAcl", bucket=f"b{n}", when=now) for _ in range(30)]
        benign = [s3_record("PutBucketTagging", bucket=f"b{n}", when=now)]
        keys.append(_deliver(q, n, [*noise[:15], exposure[0], *benign, *noise[15:], exposure[1]], now))
        _notify(q, keys[-1])
    return exposures, keys


def _bot(q: Queues, store: Store) -> tuple[Poller, list[Record]]:
    handed: list[Record] = []
    settings = Settings(findings_queue_url=q.findings, regions=("us-east-1",), lookup_polling=False)
    return Poller(settings, store, AwsClients(settings), on_records=handed.extend), handed


def _drain(poller: Poller) -> None:
    for _ in range(50):
        report = poller.poll_once()
        assert not report.errors, report.errors
        if not any(s.seen or s.new for s in report.sources):
            return
    raise AssertionError("the findings queue did not drain")


def _left(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def _worker(q: Queues) -> Worker:
    return Worker(lambda _region: q.s3, q.sqs, q.findings)


def test_three_workers_lose_no_finding_and_the_bot_alerts_each_once(
    queues: Queues, store: Store, slack_standin: SlackStandin  # noqa: F811
) -> None:
    exposures, keys = _trail(queues, files=24)
    # S3 delivers notifications at least once: a few files are announced twice.
    _notify(queues, keys[0])
    _notify(queues, keys[5], keys[6])
    reports: list[WorkReport] = []

    def one_worker() -> None:
        reports.append(run(_worker(queues), queues.notifications, once=True, wait_seconds=0))

    threads = [threading.Thread(target=one_worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert _left(queues.sqs, queues.notifications) == 0
    # Every file read, the repeated ones again (SQS may also hand one message to two receivers: at least once).
    assert sum(r.files for r in reports) >= 24 + 3
    assert sum(1 for r in reports if r.files) >= 2  # the work was shared

    poller, handed = _bot(queues, store)
    # The bot's path for any source's records: the alert engine, its notifier, the outbox, then Slack.
    outbox = Outbox(store, WebClient(token="xoxb-test", base_url=slack_standin.url), "C0ALERTS")
    engine = alert_service(store, outbox=outbox)

    def to_engine(records: list[Record]) -> None:
        handed.extend(records)
        engine.process(records)

    poller.on_records = to_engine
    _drain(poller)
    alerted = Counter(r.event_id for r in handed if r.event_name == "PutBucketPublicAccessBlock")
    assert set(alerted) == exposures  # none lost
    assert set(alerted.values()) == {1}  # none twice, though three files were read twice
    assert {r.event_name for r in handed} == {"PutBucketPublicAccessBlock", "PutBucketTagging"}  # no reads
    outbox.flush()
    cards = slack_standin.top_level("C0ALERTS")
    assert len(cards) == len(exposures) == 48  # one card per exposed bucket, none twice
    assert _left(queues.sqs, queues.findings) == 0
    state = {s.source: s for s in poller.health()}["findings:trail-findings"]
    assert state.last_error is None


def test_the_lambda_handler_forwards_and_reports_what_to_retry(queues: Queues, monkeypatch: pytest.MonkeyPatch,
                                                                store: Store) -> None:  # fmt: skip
    monkeypatch.setenv("FINDINGS_QUEUE_URL", queues.findings)
    monkeypatch.setattr(worker_module, "_LAMBDA", {})
    now = datetime.now(UTC) - timedelta(minutes=2)
    exposure = public_bpa_off(when=now, bucket="lambda-bucket")
    key = _deliver(queues, 1, [s3_record("GetBucketAcl", when=now), exposure], now)
    good = {"messageId": "m1", "body": json.dumps(s3_notification(key, bucket=BUCKET))}
    gone = {"messageId": "m2", "body": json.dumps(s3_notification(_key(2, now), bucket=BUCKET))}
    junk = {"messageId": "m3", "body": "not a notification"}
    assert worker_module.lambda_handler({"Records": [good, gone, junk]}, None) == {"batchItemFailures": []}

    poller, handed = _bot(queues, store)
    _drain(poller)
    assert [r.event_id for r in handed] == [exposure["eventID"]]
    reasons = sorted(row["reason"] for row in store.db["quarantine"].rows)
    assert len(reasons) == 2
    assert reasons[0].startswith("notification: invalid JSON") and reasons[1].endswith("announced, then gone")

    # AccessDenied (any error but "gone"): the message is named for Lambda to deliver again.
    def denied(_region: str | None) -> Any:
        raise worker_module.ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")

    monkeypatch.setattr(worker_module._LAMBDA["worker"], "s3_for", denied)
    assert worker_module.lambda_handler({"Records": [good]}, None) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_a_findings_message_carries_writes_and_findings_only(queues: Queues) -> None:
    now = datetime.now(UTC)
    exposure = public_bpa_off(when=now, bucket="x")
    reads = [s3_record("GetBucketPolicy", when=now) for _ in range(5)]
    _notify(queues, _deliver(queues, 3, [*reads, exposure], now))
    report = run(_worker(queues), queues.notifications, once=True, wait_seconds=0)
    assert (report.files, report.records, report.forwarded, report.findings) == (1, 6, 1, 1)
    [message] = queues.sqs.receive_message(QueueUrl=queues.findings, MaxNumberOfMessages=10)["Messages"]
    payload = decode(message["Body"])
    assert [r["eventID"] for r in payload["records"]] == [exposure["eventID"]]
    assert [f["detection"] for f in payload["findings"]] == ["bucket_bpa_weakened"]
    assert payload["seen"] == 6 and payload["file"].startswith(f"s3://{BUCKET}/AWSLogs/")


def test_a_worker_killed_mid_file_leaves_the_file_to_be_read_again_and_nothing_is_doubled(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, store: Store, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    clock = QueueClock(monkeypatch)  # the moto server runs in this process: its SQS clock is ours
    q = _queues(boto3.client("s3", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1"),
                visibility=2)  # fmt: skip
    now = datetime.now(UTC) - timedelta(minutes=1)
    first = [public_bpa_off(when=now, bucket="first"), s3_record("GetBucketAcl", when=now)]
    # The second file is large (about 150 MB of JSON): the worker is still reading it when it is killed.
    filler = [s3_record("GetObject", bucket="big", when=now) for _ in range(2000)]
    second_exposure = public_bpa_off(when=now, bucket="second")
    key_a = _deliver(q, 1, first, now)
    key_b = _deliver(q, 2, [*filler * 60, second_exposure], now)
    _notify(q, key_a, key_b)  # one notification, two files
    env = dict(os.environ, PYTHONPATH=str(REPO), TRAIL_QUEUE_URLS=q.notifications, FINDINGS_QUEUE_URL=q.findings,
               AWS_REGIONS="us-east-1")  # fmt: skip
    log = tmp_path / "worker.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "worker", "--once", "--wait", "0", "--visibility", "2"],
                                env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while _left(q.sqs, q.findings) == 0:  # the first file's findings are out: it is reading the second
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _left(q.sqs, q.findings) == 1  # only the first file's message was sent
    assert _left(q.sqs, q.notifications) == 1  # the notification was not deleted: it comes back
    clock.advance(2)  # once the killed worker's visibility timeout (2 s) is over
    clock.long_polls_on_the_clock(monkeypatch)  # and the drained queue's last long poll is not waited for

    again = run(Worker(lambda _r: q.s3, q.sqs, q.findings), q.notifications, wait_seconds=5, once=True)
    assert again.files == 2  # both files read again, the first one a second time
    poller, handed = _bot(q, store)
    _drain(poller)
    assert sorted(r.event_id for r in handed) == sorted([first[0]["eventID"], second_exposure["eventID"]])
    assert _left(q.sqs, q.notifications) == 0 and _left(q.sqs, q.findings) == 0


def test_a_findings_message_with_a_bad_field_never_stalls_the_queue(queues: Queues, store: Store) -> None:
    """Before, a findings message whose `newest` was not a time failed every poll (ValueError out of the
    receive loop): the messages behind it were never handled and nothing was set aside."""
    now = datetime.now(UTC)
    bad_time = public_bpa_off(when=now, bucket="odd-newest")
    after = public_bpa_off(when=now, bucket="behind-it")
    send = queues.sqs.send_message
    send(QueueUrl=queues.findings, MessageBody=worker_module.encode(
        {"v": worker_module.FORMAT, "records": [bad_time], "seen": 1, "newest": "yesterday"}))
    send(QueueUrl=queues.findings, MessageBody=worker_module.encode(
        {"v": worker_module.FORMAT, "records": [{"eventTime": {"not": "a time"}, "eventID": ["x"]}], "seen": "1",
         "quarantine": "nope"}))
    send(QueueUrl=queues.findings, MessageBody=worker_module.encode({"v": worker_module.FORMAT, "records": [after]}))
    poller, handed = _bot(queues, store)
    _drain(poller)
    assert {r.bucket for r in handed} == {"odd-newest", "behind-it"}  # a bad lag figure loses no record
    assert _left(queues.sqs, queues.findings) == 0


def test_a_findings_message_that_keeps_coming_back_is_set_aside_and_shown(queues: Queues, store: Store) -> None:
    body = worker_module.encode({"v": worker_module.FORMAT, "records": [public_bpa_off(bucket="again")]})
    queues.sqs.send_message(QueueUrl=queues.findings, MessageBody=body)
    for _ in range(MAX_RECEIVES):  # handed out and never deleted (a bot that crashed while handling it)
        queues.sqs.receive_message(QueueUrl=queues.findings, VisibilityTimeout=0)
    poller, handed = _bot(queues, store)
    poller.poll_once()
    assert handed == [] and _left(queues.sqs, queues.findings) == 0
    [row] = store.db["quarantine"].rows
    assert row["reason"].startswith("set aside after 6 receives (findings message")
    assert set_aside_counts(store) == {"findings:trail-findings": 1}  # what `status` counts
    [health] = poller.health()
    assert "1 message set aside in the last 24 h" in (health.last_error or "")
