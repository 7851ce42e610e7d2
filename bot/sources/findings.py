"""The findings queue: what the scan workers (bot.sources.worker) send, read by the bot.

The workers read the trail's files; the bot only receives each file's S3 configuration writes and stays
the single writer of alert state. Records go through the poller like any source's: events already seen
(by event id) are dropped, so a file read twice (a worker killed mid-file, a notification delivered
twice) alerts once. A message is deleted only once its records were handled (QueueResult.acknowledge);
one that is not a findings message is quarantined and deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.aws.clients import AwsClients, error_message
from bot.core.clock import parse_iso
from bot.core.record import Record
from bot.sources.sqs import BATCH, BUDGET, MAX_BATCHES, VISIBILITY_SECONDS, WAIT_SECONDS, QueueResult, SqsQueue
from bot.sources.state import Quarantined
from bot.sources.trail_bucket import collect
from bot.sources.worker import decode

logger = logging.getLogger(__name__)


def findings_source_name(queue: SqsQueue) -> str:
    return f"findings:{queue.name}"


def poll_findings(
    aws: AwsClients,
    queue: SqsQueue,
    *,
    region: str,
    max_batches: int = MAX_BATCHES,
    wait_seconds: int = WAIT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> QueueResult:
    """Receive up to `max_batches` batches of findings messages; nothing is deleted here."""
    result = QueueResult(source=findings_source_name(queue), kind="trail", queue_url=queue.url)
    began = clock()
    ids: set[str] = set()
    try:
        result.sqs = aws.ambient_client("sqs", queue.region or region)
        for batch in range(max_batches):
            if batch and clock() - began >= BUDGET * VISIBILITY_SECONDS:
                break
            result.calls += 1
            reply = result.sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=VISIBILITY_SECONDS,
            )
            messages = reply.get("Messages") or []
            for message in messages:
                _read(message.get("Body") or "", str(message.get("MessageId")), result, ids)
                result.done.append(message["ReceiptHandle"])
            if len(messages) < BATCH:
                break
    except Exception as exc:  # recorded per source; what was received before the error is still handled
        result.error = error_message(exc)
    result.seconds = clock() - began
    return result


def _read(body: str, message_id: str, result: QueueResult, ids: set[str]) -> None:
    try:
        payload = decode(body)
    except ValueError as exc:
        result.malformed += 1
        result.quarantine.append(Quarantined(f"message {message_id}: {exc}", body[:4000]))
        return
    raws = payload.get("records")
    if not isinstance(raws, list):
        raws = []
    result.seen += int(payload.get("seen") or 0) if isinstance(payload.get("seen"), int) else 0
    newest = parse_iso(payload["newest"]) if isinstance(payload.get("newest"), str) else None
    if newest is not None and (result.newest_event is None or newest > result.newest_event):
        result.newest_event = newest
    collect(result, [Record(raw) for raw in raws if isinstance(raw, dict)], ids)
    entries = payload.get("quarantine")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, list) and len(entry) == 2:
            result.malformed += 1
            result.quarantine.append(Quarantined(str(entry[0])[:500], str(entry[1])))
