"""New trail log files announced on SQS: S3 event notifications instead of listing (large organisations).

The organisation trail's bucket sends `s3:ObjectCreated:*` notifications to a queue, directly or
through an SNS topic ("Amazon S3 Event Notifications", S3 user guide). Each poll receives a bounded
number of batches, reads the CloudTrail log files they name with the trail bucket's own reader, and
hands the records to the poller. A message is deleted only after its records were handled
(`QueueResult.acknowledge`, called by the poller after `on_records`); a crash before that means the
message comes back after its visibility timeout, and the event-id dedup (`seen_events`) makes a
second delivery harmless.

One bot (one database) per queue: SQS gives each message to one consumer, so bots sharing a queue
would each see part of the events, and alert grouping and dedup live in each bot's own SQLite.
Messages are received with `VisibilityTimeout=VISIBILITY_SECONDS` (the whole poll's work: reading,
handing over, deleting), and no batch is received once BUDGET of it has gone, so what was received
is deleted before it could be delivered again.

What happens to each message:
- a CloudTrail log file read (or nothing to read: test event, digest, other keys) → deleted once handled;
- a body that is not an S3 notification → quarantined (table `quarantine`) and deleted;
- an announced object that is gone (NoSuchKey) → recorded in the quarantine table and deleted;
- AccessDenied (or any other AWS error) reading the object → kept for a retry; the error shows in health.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import orjson
from botocore.exceptions import ClientError

from bot.aws.clients import AWS_ERRORS, AwsClients, error_code, error_message
from bot.core.config import ConfigError
from bot.core.record import deep_get
from bot.sources.files import ScanStats
from bot.sources.state import Quarantined, SourceResult
from bot.sources.trail_bucket import collect, read_log_file

logger = logging.getLogger(__name__)
BATCH = 10  # ReceiveMessage and DeleteMessageBatch take at most 10 messages
MAX_BATCHES = 20  # per queue per poll: bounds how long received messages wait for their delete
# A short long-poll: with WaitTimeSeconds=0 SQS samples only some of its servers and may answer
# "empty" while messages wait; one second asks them all without holding the poll up.
WAIT_SECONDS = 1
# How long received messages stay invisible: MAX_BATCHES × 10 log files read, handed to the alert
# engine (Slack posts, AWS look-ups) and deleted, with room to spare. The queue's own default is 30 s.
VISIBILITY_SECONDS = 300
BUDGET = 0.6  # of VISIBILITY_SECONDS spent receiving and reading; the rest is for handling + deleting
# The object is gone: nothing will ever be readable, so the message is deleted rather than retried.
GONE = frozenset({"NoSuchKey", "NoSuchBucket", "404"})
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")
# <prefix>/AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/…: log files only, not CloudTrail-Digest
# or CloudTrail-Insight (digests hold hashes, not events).
_LOG_KEY = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?\d{12}/CloudTrail/[^/]+/.+\.json(?:\.gz)?$")


class QueueConfigError(ConfigError):
    """A TRAIL_QUEUE_URLS entry is not an SQS queue URL."""


class MalformedMessage(ValueError):
    """A queue message is not an S3 event notification (raw or wrapped by SNS)."""


@dataclass(frozen=True)
class TrailQueue:
    """One TRAIL_QUEUE_URLS entry."""

    url: str
    name: str
    region: str | None  # from the URL's host; None for a custom endpoint (the first AWS_REGIONS entry)

    @classmethod
    def parse(cls, text: str) -> TrailQueue:
        parts = urlsplit(text)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme not in ("https", "http") or not parts.hostname or len(segments) < 2:
            raise QueueConfigError(
                f"TRAIL_QUEUE_URLS: {text!r} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"
            )
        region = next((label for label in parts.hostname.split(".") if _REGION.fullmatch(label)), None)
        return cls(text, segments[-1], region)

    @property
    def source(self) -> str:
        return f"sqs:{self.name}"


@dataclass(frozen=True)
class LogObject:
    """One CloudTrail log file a notification announces."""

    bucket: str
    key: str  # URL-decoded
    region: str | None  # the bucket's region, from the notification record

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class QueueResult(SourceResult):
    """A SourceResult plus the messages to delete once the poller has handled its records."""

    queue_url: str = ""
    sqs: Any = None
    done: list[str] = field(default_factory=list)  # receipt handles

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


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"invalid JSON ({exc.msg})") from None


def parse_notification(body: str) -> list[LogObject]:
    """The CloudTrail log files one message announces: [] for test events, other events and other keys."""
    document = _json(body)
    kind = deep_get(document, "Type")
    if kind == "Notification" and isinstance(deep_get(document, "Message"), str):
        document = _json(document["Message"])  # SNS envelope; raw message delivery needs none
    elif kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        # SNS asks the queue's owner to confirm a cross-account subscription: nothing to read here.
        logger.warning("SNS %s for %s on a trail queue: ignored", kind, deep_get(document, "TopicArn"))
        return []
    if not isinstance(document, dict):
        raise MalformedMessage("not a JSON object")
    if document.get("Event") == "s3:TestEvent":  # S3 sends one when the notification is configured
        return []
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        raise MalformedMessage("no Records list: not an S3 event notification")
    out: list[LogObject] = []
    for number, record in enumerate(records, 1):
        name = deep_get(record, "eventName")
        bucket = deep_get(record, "s3", "bucket", "name")
        key = deep_get(record, "s3", "object", "key")
        if not (isinstance(name, str) and isinstance(bucket, str) and bucket and isinstance(key, str) and key):
            raise MalformedMessage(f"record {number} has no eventName, s3.bucket.name or s3.object.key")
        if not name.startswith("ObjectCreated:"):
            continue
        key = unquote_plus(key)  # notifications URL-encode keys, with + for a space
        if not _LOG_KEY.search(key):
            continue
        region = deep_get(record, "awsRegion")
        out.append(LogObject(bucket, key, region if isinstance(region, str) and _REGION.fullmatch(region) else None))
    return out


def poll_queue(
    aws: AwsClients,
    queue: TrailQueue,
    *,
    region: str,
    max_batches: int = MAX_BATCHES,
    wait_seconds: int = WAIT_SECONDS,
    visibility_seconds: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> QueueResult:
    """Receive up to `max_batches` batches and read the log files they name; nothing is deleted here.

    Receiving stops once BUDGET of `visibility_seconds` (default VISIBILITY_SECONDS) has gone since the
    first receive: the first batch's messages turn visible again that long after it, deleted or not.
    """
    visibility = visibility_seconds or VISIBILITY_SECONDS
    result = QueueResult(source=queue.source, kind="trail", queue_url=queue.url)
    began = clock()
    stats = ScanStats()
    ids: set[str] = set()
    read: set[tuple[str, str]] = set()  # files read this poll: a notification repeated is read once
    try:
        result.sqs = aws.ambient_client("sqs", queue.region or region)
        for batch in range(max_batches):
            if batch and clock() - began >= BUDGET * visibility:
                logger.info("%s: receive budget used after %d batch(es); the rest waits for the next poll",
                            queue.source, batch)
                break
            result.calls += 1
            reply = result.sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility,
            )
            messages = reply.get("Messages") or []
            for message in messages:
                if _read_message(aws, message, result, stats, ids, read, queue.region or region):
                    result.done.append(message["ReceiptHandle"])
            if len(messages) < BATCH:
                break  # drained for now: the next poll picks up what arrives meanwhile
    except Exception as exc:  # recorded per source; messages read before the error are still deleted
        result.error = error_message(exc)
    result.seen = stats.records
    result.malformed += stats.malformed
    result.seconds = clock() - began
    return result


def _read_message(
    aws: AwsClients,
    message: dict[str, Any],
    result: QueueResult,
    stats: ScanStats,
    ids: set[str],
    read: set[tuple[str, str]],
    queue_region: str,
) -> bool:
    """Read the files one message names; True when the message may be deleted once handled."""
    body = str(message.get("Body") or "")
    try:
        objects = parse_notification(body)
    except MalformedMessage as exc:
        result.malformed += 1
        result.quarantine.append(Quarantined(f"message {message.get('MessageId')}: {exc}", body))
        return True  # kept in the quarantine table; redelivering it would only fail again
    keep = False
    for obj in objects:
        if (obj.bucket, obj.key) in read:
            continue
        result.calls += 1
        try:
            s3 = aws.ambient_client("s3", obj.region or queue_region)  # the bucket's region, as S3 reported it
            records, bad = read_log_file(s3, obj.bucket, obj.key, stats)
        except ClientError as exc:
            if error_code(exc) in GONE:
                logger.warning("%s: announced but gone (%s)", obj.uri, error_code(exc))
                result.quarantine.append(Quarantined(f"{obj.uri}: {error_code(exc)}: announced, then gone", obj.uri))
                continue
            # AccessDenied (bucket policy, KMS key) and the like: the message comes back after the
            # visibility timeout, and the queue's redrive policy ends it after maxReceiveCount.
            result.error = f"{obj.uri}: {error_message(exc)}"[:300]
            keep = True
            continue
        except AWS_ERRORS as exc:
            result.error = f"{obj.uri}: {error_message(exc)}"[:300]
            keep = True
            continue
        read.add((obj.bucket, obj.key))
        collect(result, records, ids)
        result.quarantine += bad
    return not keep
