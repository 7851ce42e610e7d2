"""What one SQS message says, whichever queue it came from (EVENT_QUEUE_URLS or TRAIL_QUEUE_URLS).

Every queue accepts every shape, wrapped by SNS or not (SNS "Notification" envelope; raw message
delivery needs none):
- an EventBridge CloudTrail event (`detail-type` "AWS API Call via CloudTrail", from a rule on
  `s3.amazonaws.com`): the record itself is in `detail` and is alerted at once;
- an S3 event notification (`Records[].eventName` "ObjectCreated:*", "Amazon S3 Event Notifications"):
  the CloudTrail log file it names is read;
- an EventBridge S3 event (`detail-type` "Object Created", S3's EventBridge delivery): the log file
  it names is read;
- CloudTrail's own SNS notification of a delivered log file (the trail's SNS topic: `s3Bucket` and
  `s3ObjectKey`, a list of keys): each log file is read.
Only CloudTrail log files are read (not CloudTrail-Digest or -Insight files, not other keys).
S3 test events, SNS subscription confirmations, other S3 events and other EventBridge detail types
carry nothing to act on. Anything else is `MalformedMessage`: the caller quarantines it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import orjson

from bot.core.record import deep_get

logger = logging.getLogger(__name__)
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")
# <prefix>/AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/…: log files only, not CloudTrail-Digest
# or CloudTrail-Insight (digests hold hashes, not events).
_LOG_KEY = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?\d{12}/CloudTrail/[^/]+/.+\.json(?:\.gz)?$")
# EventBridge detail types whose `detail` is a CloudTrail record ("Events delivered via AWS CloudTrail",
# EventBridge user guide). Console sign-ins are not S3 calls, so they are not among them.
API_CALL_TYPES = frozenset({"AWS API Call via CloudTrail", "AWS Service Event via CloudTrail"})
OBJECT_CREATED = "Object Created"


class MalformedMessage(ValueError):
    """A queue message is none of the shapes a queue carries."""


@dataclass(frozen=True)
class LogObject:
    """One CloudTrail log file a notification announces."""

    bucket: str
    key: str  # as S3 names it (notifications' URL encoding undone)
    region: str | None  # the bucket's region, from the notification; None when it does not say
    other_key: str | None = None  # a second spelling to try if `key` is not found (EventBridge, see below)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class QueueMessage:
    """What one message carries: CloudTrail records to hand over as they are, log files to read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[LogObject] = field(default_factory=list)


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"invalid JSON ({exc.msg})") from None


def _region(value: Any) -> str | None:
    return value if isinstance(value, str) and REGION.fullmatch(value) else None


def parse_message(body: str) -> QueueMessage:
    """Records and log files in one message body; empty for the messages that carry nothing to act on."""
    document = _json(body)
    kind = deep_get(document, "Type")
    if kind == "Notification" and isinstance(deep_get(document, "Message"), str):
        document = _json(document["Message"])  # SNS envelope around any of the shapes below
    elif kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        # SNS asks the queue's owner to confirm a cross-account subscription: nothing to read here.
        logger.warning("SNS %s for %s on a queue: ignored", kind, deep_get(document, "TopicArn"))
        return QueueMessage()
    if not isinstance(document, dict):
        raise MalformedMessage("not a JSON object")
    if "detail-type" in document:
        return _eventbridge(document)
    if document.get("Event") == "s3:TestEvent":  # S3 sends one when the notification is configured
        return QueueMessage()
    if "s3ObjectKey" in document:
        return _cloudtrail_delivery(document)
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        raise MalformedMessage("no Records list and no detail-type: neither an S3 event notification nor an"
                               " EventBridge event")
    return QueueMessage(files=_notification_files(records))


def _notification_files(records: list[Any]) -> list[LogObject]:
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
        if _LOG_KEY.search(key):
            out.append(LogObject(bucket, key, _region(deep_get(record, "awsRegion"))))
    return out


def _cloudtrail_delivery(document: dict[str, Any]) -> QueueMessage:
    """CloudTrail's SNS message for delivered log files: {"s3Bucket": …, "s3ObjectKey": [keys]} (not encoded)."""
    bucket, keys = document.get("s3Bucket"), document.get("s3ObjectKey")
    if isinstance(keys, str):
        keys = [keys]
    if not (isinstance(bucket, str) and bucket and isinstance(keys, list) and keys
            and all(isinstance(k, str) and k for k in keys)):
        raise MalformedMessage("CloudTrail notification without s3Bucket or s3ObjectKey")
    return QueueMessage(files=[LogObject(bucket, key, None) for key in keys if _LOG_KEY.search(key)])


def _eventbridge(event: dict[str, Any]) -> QueueMessage:
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedMessage(f"EventBridge event {event.get('id')!r} has no detail object")
    if detail_type in API_CALL_TYPES:
        if not (isinstance(detail.get("eventID"), str) and isinstance(detail.get("eventName"), str)):
            raise MalformedMessage(f"EventBridge event {event.get('id')!r}: detail is not a CloudTrail record")
        return QueueMessage(records=[detail])
    if detail_type == OBJECT_CREATED and event.get("source") == "aws.s3":
        bucket = deep_get(detail, "bucket", "name")
        key = deep_get(detail, "object", "key")
        if not (isinstance(bucket, str) and bucket and isinstance(key, str) and key):
            raise MalformedMessage(f"EventBridge event {event.get('id')!r} has no bucket.name or object.key")
        # S3's EventBridge events document no URL encoding of the key (unlike its notifications) and
        # reports differ: read it as given, and if that is not found, decoded.
        decoded = unquote_plus(key)
        if not _LOG_KEY.search(key) and not _LOG_KEY.search(decoded):
            return QueueMessage()
        return QueueMessage(files=[LogObject(bucket, key, _region(event.get("region")),
                                             decoded if decoded != key else None)])
    # Another S3 event (Object Deleted …) or detail type the rule let through: nothing to act on.
    logger.debug("EventBridge %s from %s: nothing to read", detail_type, event.get("source"))
    return QueueMessage()
