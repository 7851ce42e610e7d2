"""SQS queues: EventBridge API-call events in seconds, and trail log files announced instead of listed.

EVENT_QUEUE_URLS are fed by an EventBridge rule on "AWS API Call via CloudTrail" for s3.amazonaws.com
(deploy/eventbridge-*.cfn.yaml); TRAIL_QUEUE_URLS by the trail bucket's `s3:ObjectCreated` notifications,
directly or through SNS. Every queue reads every shape (bot.sources.queue_messages). The running bot
long-polls each queue in its own thread (bot.sources.listener); `poll --once` drains them here.

Delivery is at least once. Messages are received with `VisibilityTimeout` longer than the work they
start (reading, handing over, deleting), and no batch is received once BUDGET of it has gone. A
message is deleted only after its records were handed to the alert engine and stored
(`QueueResult.acknowledge`, called by the poller after `on_records`); a crash before that brings it
back after the timeout, and the event-id dedup (`seen_events`) makes a second delivery harmless.
A message that comes back is handled on its own, so one that keeps failing does not hold up the
others; one received more than MAX_RECEIVES times is set aside unread (kept in the `quarantine`
table, shown by `status` and in the source's health) and deleted.

One bot (one database) per queue: SQS gives each message to one consumer, so bots sharing a queue
would each see part of the events, and alert grouping and dedup live in each bot's own SQLite.

What happens to each message:
- an API-call event or a CloudTrail log file read (or nothing to read: test event, digest, other
  keys, other S3 events) → deleted once handled;
- a body that is none of the shapes → quarantined and deleted;
- an announced object that is gone (NoSuchKey) → recorded in the quarantine table and deleted;
- AccessDenied (or any other AWS error) reading the object → kept for a retry; the error shows in health.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from bot.aws.clients import AWS_ERRORS, AwsClients, error_code, error_message
from bot.core.config import ConfigError
from bot.core.record import Record
from bot.sources.files import ScanStats
from bot.sources.queue_messages import REGION, LogObject, MalformedMessage, parse_message
from bot.sources.state import SET_ASIDE, Quarantined, SourceResult
from bot.sources.trail_bucket import collect, read_log_file

logger = logging.getLogger(__name__)
BATCH = 10  # ReceiveMessage and DeleteMessageBatch take at most 10 messages
MAX_BATCHES = 20  # per queue per `poll --once`: bounds how long received messages wait for their delete
# A short long-poll: with WaitTimeSeconds=0 SQS samples only some of its servers and may answer
# "empty" while messages wait; one second asks them all without holding the poll up.
WAIT_SECONDS = 1
# How long received messages stay invisible: MAX_BATCHES × 10 log files read, handed to the alert
# engine (Slack posts, AWS look-ups) and deleted, with room to spare. The queue's own default is 30 s.
VISIBILITY_SECONDS = 300
BUDGET = 0.6  # of the visibility timeout spent receiving and reading; the rest is for handling + deleting
# Receives before a message is set aside unread. Give the queue's redrive policy a higher
# maxReceiveCount (the template uses 10) so that the bot, not SQS, sets it aside and `status` shows it.
MAX_RECEIVES = 5
# The object is gone: nothing will ever be readable, so the message is deleted rather than retried.
GONE = frozenset({"NoSuchKey", "NoSuchBucket", "404"})


class QueueConfigError(ConfigError):
    """An EVENT_QUEUE_URLS or TRAIL_QUEUE_URLS entry is not an SQS queue URL."""


@dataclass(frozen=True)
class SqsQueue:
    """One EVENT_QUEUE_URLS or TRAIL_QUEUE_URLS entry."""

    url: str
    name: str
    region: str | None  # from the URL's host; None for a custom endpoint (the home region)

    @classmethod
    def parse(cls, text: str, setting: str = "EVENT_QUEUE_URLS") -> SqsQueue:
        parts = urlsplit(text)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme not in ("https", "http") or not parts.hostname or len(segments) < 2:
            raise QueueConfigError(
                f"{setting}: {text!r} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"
            )
        region = next((label for label in parts.hostname.split(".") if REGION.fullmatch(label)), None)
        return cls(text, segments[-1], region)

    @property
    def source(self) -> str:
        return f"sqs:{self.name}"


@dataclass
class QueueResult(SourceResult):
    """A SourceResult plus the messages to delete once the poller has handled its records."""

    queue_url: str = ""
    sqs: Any = None
    done: list[str] = field(default_factory=list)  # receipt handles
    set_aside: int = 0  # messages received more than MAX_RECEIVES times, quarantined unread
    receives: int = 0  # ReceiveMessage calls that answered

    def acknowledge(self) -> None:
        """Delete the handled messages; one that fails to go is only redelivered (harmless), but shown."""
        handles, self.done = self.done, []
        failed: list[str] = []
        for start in range(0, len(handles), BATCH):
            chunk = handles[start : start + BATCH]
            entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(chunk)]
            self.calls += 1
            try:
                reply = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except AWS_ERRORS as exc:
                failed.append(f"DeleteMessageBatch: {error_message(exc)}")
                continue
            for entry in reply.get("Failed") or []:
                failed.append(f"DeleteMessage: {entry.get('Code')}: {entry.get('Message') or ''}".rstrip(": "))
        if failed:
            logger.warning("%s: %d message(s) not deleted: %s", self.source, len(failed), failed[0])
            self.error = "; ".join(filter(None, [self.error, failed[0]]))[:300]


@dataclass
class _Reading:
    """One result being filled: what it read so far (a file announced twice is read once)."""

    result: QueueResult
    stats: ScanStats = field(default_factory=ScanStats)
    ids: set[str] = field(default_factory=set)


def poll_queue(
    aws: AwsClients,
    queue: SqsQueue,
    *,
    region: str,
    max_batches: int = MAX_BATCHES,
    wait_seconds: int = WAIT_SECONDS,
    first_wait: int | None = None,
    visibility_seconds: int | None = None,
    max_receives: int | None = None,
    last_error: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[QueueResult]:
    """Receive up to `max_batches` batches and read them; nothing is deleted here.

    The first result holds every message received for the first time; each message that came back
    gets a result of its own (handed over alone, so a message that keeps failing fails alone).
    The first receive waits `first_wait` seconds (default `wait_seconds`): the listener long-polls
    there, and takes the rest of a burst without waiting. Receiving stops once BUDGET of
    `visibility_seconds` (default VISIBILITY_SECONDS) has gone since the first receive: the first
    batch's messages turn visible again that long after it, deleted or not.
    """
    visibility = visibility_seconds or VISIBILITY_SECONDS
    most = max_receives or MAX_RECEIVES
    main = _Reading(QueueResult(source=queue.source, kind="queue", queue_url=queue.url))
    readings = [main]
    began = clock()
    read: set[tuple[str, str]] = set()  # files read this poll: a notification repeated is read once
    home = queue.region or region
    try:
        main.result.sqs = aws.ambient_client("sqs", home)
        for batch in range(max_batches):
            if batch and clock() - began >= BUDGET * visibility:
                logger.info("%s: receive budget used after %d batch(es); the rest waits for the next poll",
                            queue.source, batch)
                break
            main.result.calls += 1
            reply = main.result.sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=BATCH, VisibilityTimeout=visibility,
                WaitTimeSeconds=wait_seconds if batch or first_wait is None else first_wait,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            messages = reply.get("Messages") or []
            main.result.receives += 1
            for message in messages:
                reading = main if receive_count(message) <= 1 else _alone(main.result, readings)
                if _read_message(aws, message, reading, read, home, most, last_error):
                    reading.result.done.append(message["ReceiptHandle"])
            if len(messages) < BATCH:
                break  # drained for now: the next poll picks up what arrives meanwhile
    except Exception as exc:  # recorded per source; messages read before the error are still deleted
        main.result.error = error_message(exc)
    elapsed = clock() - began
    for reading in readings:
        reading.result.seen += reading.stats.records
        reading.result.malformed += reading.stats.malformed
        reading.result.seconds = elapsed
    return [r.result for r in readings]


def receive_count(message: dict[str, Any]) -> int:
    """How many times SQS has handed this message out (ApproximateReceiveCount; 1 when not asked for)."""
    try:
        return int((message.get("Attributes") or {}).get("ApproximateReceiveCount") or 1)
    except ValueError:
        return 1


def _alone(main: QueueResult, readings: list[_Reading]) -> _Reading:
    reading = _Reading(QueueResult(source=main.source, kind=main.kind, queue_url=main.queue_url, sqs=main.sqs))
    readings.append(reading)
    return reading


def _read_message(
    aws: AwsClients,
    message: dict[str, Any],
    reading: _Reading,
    read: set[tuple[str, str]],
    queue_region: str,
    max_receives: int,
    last_error: str | None,
) -> bool:
    """Act on one message; True when it may be deleted once handled."""
    result = reading.result
    body = str(message.get("Body") or "")
    label = f"message {message.get('MessageId')}"
    receives = receive_count(message)
    if receives > max_receives:
        # Set aside unread: it failed (or brought the bot down) that many times already.
        why = f"; last error: {last_error}" if last_error else ""
        logger.warning("%s: %s %s %d receives", result.source, label, SET_ASIDE, receives)
        result.quarantine.append(Quarantined(f"{SET_ASIDE} {receives} receives ({label}){why}", body))
        result.set_aside += 1
        return True
    try:
        parsed = parse_message(body)
    except MalformedMessage as exc:
        result.malformed += 1
        result.quarantine.append(Quarantined(f"{label}: {exc}", body))
        return True  # kept in the quarantine table; redelivering it would only fail again
    if parsed.records:
        result.seen += len(parsed.records)
        collect(result, [Record(raw) for raw in parsed.records], reading.ids)
    keep = False
    for obj in parsed.files:
        if (obj.bucket, obj.key) in read:
            continue
        result.calls += 1
        try:
            records, bad = _read_file(aws, obj, queue_region, reading.stats)
        except ClientError as exc:
            if error_code(exc) in GONE:
                logger.warning("%s: announced but gone (%s)", obj.uri, error_code(exc))
                result.quarantine.append(Quarantined(f"{obj.uri}: {error_code(exc)}: announced, then gone", obj.uri))
                continue
            # AccessDenied (bucket policy, KMS key) and the like: the message comes back after the
            # visibility timeout, alone, and is set aside after MAX_RECEIVES.
            result.error = f"{obj.uri}: {error_message(exc)}"[:300]
            keep = True
            continue
        except AWS_ERRORS as exc:
            result.error = f"{obj.uri}: {error_message(exc)}"[:300]
            keep = True
            continue
        read.add((obj.bucket, obj.key))
        collect(result, records, reading.ids)
        result.quarantine += bad
    return not keep


def _read_file(
    aws: AwsClients, obj: LogObject, queue_region: str, stats: ScanStats
) -> tuple[list[Record], list[Quarantined]]:
    s3 = aws.ambient_client("s3", obj.region or queue_region)  # the bucket's region, as S3 reported it
    try:
        return read_log_file(s3, obj.bucket, obj.key, stats)
    except ClientError as exc:
        if obj.other_key is None or error_code(exc) not in GONE:
            raise
    return read_log_file(s3, obj.bucket, obj.other_key, stats)
