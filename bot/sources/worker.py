"""Stateless scan workers: trail-file notifications in, S3 configuration writes and findings out.

An organisation's trail can hold billions of records a day; one process cannot read them all. The
trail bucket's `s3:ObjectCreated` notifications go to a queue (TRAIL_QUEUE_URLS) that any number of
workers read: `bucketwatch worker` on any machine, or the same code as an AWS Lambda function
(`bot.sources.worker.lambda_handler`, triggered by that queue). A worker reads each announced log
file with the scanner (streamed, capped, only S3 writes parsed), and sends only what the bot needs to
FINDINGS_QUEUE_URL: the file's S3 configuration writes (raw records), their findings, and what in the
file was unreadable. It keeps no state. The bot reads the findings queue (bot.sources.findings) and
stays the single writer of alert state.

Delivery is at least once, on purpose: a notification is deleted only after its file's results were
sent, so a worker killed mid-file leaves the notification to come back after its visibility timeout,
and the file is read again. The bot drops events it has already seen (by event id), so nothing is
alerted twice.

A findings message body is base64 of gzip of JSON (SQS bodies are text, at most 256 KiB):
`{"v": 1, "file": "s3://…", "records": [raw CloudTrail records], "findings": [scan --format jsonl
objects], "quarantine": [[reason, text], …], "seen": records read, "newest": ISO time}`. A file
with nothing to send sends nothing.
"""

from __future__ import annotations

import base64
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from isal import isal_zlib

from bot.aws.clients import AWS_ERRORS, AwsClients, error_code, error_message
from bot.core.clock import iso
from bot.core.config import load_settings
from bot.core.record import Record
from bot.sources.inflate import CORRUPT_GZIP
from bot.sources.queue_messages import MalformedMessage, parse_message
from bot.sources.reader import ScanStats
from bot.sources.sqs import GONE
from bot.sources.trail_bucket import read_log_file
from bot.store.rows import is_config_write
from detections import evaluate

logger = logging.getLogger(__name__)
FORMAT = 1
MAX_BODY = 200_000  # characters of one findings message; SQS takes 262,144
QUARANTINE_TEXT = 4_000  # characters of unreadable input carried per entry


@dataclass
class WorkReport:
    """What a worker did with a batch of notifications."""

    files: int = 0
    records: int = 0
    forwarded: int = 0  # configuration writes sent
    findings: int = 0
    messages_sent: int = 0
    errors: list[str] = field(default_factory=list)


def encode(payload: dict[str, Any]) -> str:
    return base64.b64encode(isal_zlib.compress(orjson.dumps(payload), 2, 31)).decode()


def decode(body: str) -> dict[str, Any]:
    """A findings message's payload; ValueError when it is not one."""
    try:
        payload = orjson.loads(isal_zlib.decompress(base64.b64decode(body, validate=True), 31))
    except CORRUPT_GZIP as exc:  # bad base64 and bad JSON are ValueErrors too
        raise ValueError(f"not a findings message ({exc})") from None
    if not isinstance(payload, dict) or payload.get("v") != FORMAT:
        raise ValueError("not a findings message (no version 1 payload)")
    return payload


class Worker:
    """Reads the log files notifications name and sends their S3 writes and findings on."""

    def __init__(self, s3_for: Callable[[str | None], Any], sqs: Any, findings_url: str):
        self.s3_for = s3_for  # region (or None: the default) → S3 client
        self.sqs = sqs
        self.findings_url = findings_url

    def handle(self, body: str, report: WorkReport) -> bool:
        """One notification: True when it is done with (delete it), False to have it delivered again."""
        try:
            objects = parse_message(body).files  # records an EventBridge rule forwards are the bot's to read
        except MalformedMessage as exc:
            self._send({"file": "", "quarantine": [[f"notification: {exc}", body[:QUARANTINE_TEXT]]]}, report)
            return True
        done = True
        for obj in objects:
            stats = ScanStats()
            try:
                records, bad = read_log_file(self.s3_for(obj.region), obj.bucket, obj.key, stats)
            except ClientError as exc:
                if error_code(exc) in GONE:
                    self._send({"file": obj.uri, "quarantine": [[f"{obj.uri}: {error_code(exc)}: announced, then gone",
                                                                  obj.uri]]}, report)  # fmt: skip
                    continue
                report.errors.append(f"{obj.uri}: {error_message(exc)}")
                done = False  # AccessDenied and the like: retried, then the queue's redrive policy ends it
                continue
            except AWS_ERRORS as exc:
                report.errors.append(f"{obj.uri}: {error_message(exc)}")
                done = False
                continue
            report.files += 1
            report.records += stats.records
            self._forward(obj.uri, records, [(q.reason, q.raw) for q in bad], stats.records, report)
        return done

    def _forward(self, uri: str, records: list[Record], bad: list[tuple[str, str]], seen: int,
                 report: WorkReport) -> None:  # fmt: skip
        times = [r.event_time for r in records if r.event_time is not None]
        writes = [r for r in records if r.event_id and is_config_write(r)]
        findings = [f.as_dict() for r in writes for f in evaluate(r)]
        if not writes and not bad:
            return
        base = {"file": uri, "seen": seen, "newest": iso(max(times)) if times else None}
        report.forwarded += len(writes)
        report.findings += len(findings)
        self._send_split(base, [r.raw for r in writes], findings,
                         [[reason, text[:QUARANTINE_TEXT]] for reason, text in bad], report)  # fmt: skip

    def _send_split(self, base: dict[str, Any], raws: list[Any], findings: list[dict[str, Any]],
                    bad: list[list[str]], report: WorkReport) -> None:  # fmt: skip
        payload = {**base, "records": raws, "findings": findings, "quarantine": bad}
        body = encode({"v": FORMAT, **payload})
        if len(body) <= MAX_BODY or len(raws) + len(bad) <= 1:
            if len(body) > MAX_BODY:  # one record larger than a message: kept back, said so
                text = orjson.dumps(raws)[:200].decode("utf-8", "replace")
                raws, bad = [], [["record larger than an SQS message: not forwarded", text]]
                body = encode({"v": FORMAT, **base, "records": [], "findings": [], "quarantine": bad})
            self.sqs.send_message(QueueUrl=self.findings_url, MessageBody=body)
            report.messages_sent += 1
            return
        ids = {str(r.get("eventID")) for r in raws[: len(raws) // 2] if isinstance(r, dict)}
        half_bad = len(bad) // 2
        self._send_split(base, raws[: len(raws) // 2], [f for f in findings if f["event_id"] in ids],
                         bad[:half_bad], report)  # fmt: skip
        self._send_split({**base, "seen": 0}, raws[len(raws) // 2 :],
                         [f for f in findings if f["event_id"] not in ids], bad[half_bad:], report)  # fmt: skip

    def _send(self, payload: dict[str, Any], report: WorkReport) -> None:
        self.sqs.send_message(QueueUrl=self.findings_url, MessageBody=encode({"v": FORMAT, "records": [],
                                                                              "findings": [], **payload}))  # fmt: skip
        report.messages_sent += 1


MAX_BACKOFF = 60.0  # seconds between receives while SQS keeps failing


def run(
    worker: Worker,
    queue_url: str,
    *,
    once: bool = False,
    wait_seconds: int = 20,
    visibility: int = 300,
    stop: threading.Event | None = None,
    on_batch: Callable[[WorkReport], None] | None = None,
) -> WorkReport:
    """Receive notifications and handle them until `stop` is set (or, with `once`, the queue is empty).

    A receive that fails (SQS unreachable, throttled, denied) is retried with back-off while running; with
    `once` it raises, and `bucketwatch worker` says it in one line."""
    stop = stop or threading.Event()
    total = WorkReport()
    delay = 1.0
    while not stop.is_set():
        try:
            reply = worker.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=wait_seconds, VisibilityTimeout=visibility)
        except (BotoCoreError, ClientError) as exc:
            if once:
                raise
            logger.warning("receiving from %s failed: %s; retrying in %.0f s", queue_url, error_message(exc), delay)
            if stop.wait(delay):
                break
            delay = min(delay * 2, MAX_BACKOFF)
            continue
        delay = 1.0
        messages = reply.get("Messages") or []
        report = WorkReport()
        for message in messages:
            if worker.handle(str(message.get("Body") or ""), report):
                worker.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        for name in ("files", "records", "forwarded", "findings", "messages_sent"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.errors += report.errors
        if on_batch is not None and messages:
            on_batch(report)
        if once and not messages:
            break
    return total


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the worker finishes the message in hand, then stops."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


_LAMBDA: dict[str, Worker] = {}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point, for an SQS trigger on the notification queue (ReportBatchItemFailures on).

    Settings come from the function's environment (FINDINGS_QUEUE_URL). Messages handled are deleted by
    Lambda; the ones named in `batchItemFailures` come back after the visibility timeout.
    """
    worker = _LAMBDA.get("worker")
    if worker is None:
        # Built once per Lambda environment: the clients are reused across invocations.
        settings = load_settings()
        clients = AwsClients(settings)
        region = settings.regions[0]
        worker = _LAMBDA["worker"] = Worker(
            lambda r: clients.ambient_client("s3", r or region), clients.ambient_client("sqs", region),
            settings.findings_queue_url,
        )
    report = WorkReport()
    failures = []
    for message in event.get("Records") or []:
        if not worker.handle(str(message.get("body") or ""), report):
            failures.append({"itemIdentifier": message.get("messageId")})
    for error in report.errors:
        logger.warning("%s", error)
    return {"batchItemFailures": failures}
