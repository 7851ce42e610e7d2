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
from typing import Any

from bot.aws.clients import AwsClients, error_message
from bot.core.clock import parse_iso
from bot.core.record import Record
from bot.sources.sqs import (
    BATCH,
    BUDGET,
    MAX_BATCHES,
    MAX_RECEIVES,
    VISIBILITY_SECONDS,
    WAIT_SECONDS,
    QueueResult,
    SqsQueue,
    receive_count,
)
from bot.sources.state import SET_ASIDE, Quarantined
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
) -> list[QueueResult]:
    """Receive up to `max_batches` batches of findings messages; nothing is deleted here.

    As for the other queues (bot.sources.sqs): the first result holds the messages received for the first
    time; each one that came back is handed over alone (a message that keeps failing fails alone), and one
    received more than MAX_RECEIVES times is set aside unread. A message that cannot be read, whatever is
    wrong in it, is quarantined: it never stops the messages behind it."""
    main = QueueResult(source=findings_source_name(queue), kind="trail", queue_url=queue.url)
    results = [main]
    began = clock()
    ids: set[str] = set()
    try:
        main.sqs = aws.ambient_client("sqs", queue.region or region)
        for batch in range(max_batches):
            if batch and clock() - began >= BUDGET * VISIBILITY_SECONDS:
                break
            main.calls += 1
            reply = main.sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=VISIBILITY_SECONDS, MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            messages = reply.get("Messages") or []
            for message in messages:
                _take(message, main, results, ids)
            if len(messages) < BATCH:
                break
    except Exception as exc:  # recorded per source; what was received before the error is still handled
        main.error = error_message(exc)
    for result in results:
        result.seconds = clock() - began
    return results


def _take(message: dict[str, Any], main: QueueResult, results: list[QueueResult], ids: set[str]) -> None:
    body, message_id, count = str(message.get("Body") or ""), str(message.get("MessageId")), receive_count(message)
    result = main
    if count > 1:
        result = QueueResult(source=main.source, kind=main.kind, queue_url=main.queue_url, sqs=main.sqs)
        results.append(result)
    if count > MAX_RECEIVES:
        result.set_aside += 1
        logger.warning("%s: findings message %s %s %d receives", main.source, message_id, SET_ASIDE, count)
        result.quarantine.append(Quarantined(f"{SET_ASIDE} {count} receives (findings message {message_id})",
                                             body[:4000]))
    else:
        try:
            _read(body, message_id, result, ids)
        except Exception as exc:  # any field of any shape: this message is set aside, the others go on
            result.malformed += 1
            why = f"message {message_id}: not a readable findings message ({type(exc).__name__}: {exc})"
            result.quarantine.append(Quarantined(why[:500], body[:4000]))
    result.done.append(message["ReceiptHandle"])


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
    try:
        newest = parse_iso(payload["newest"]) if isinstance(payload.get("newest"), str) else None
    except ValueError:  # only the lag figure is lost; the records are good
        logger.warning("message %s: 'newest' is not a time: %.40r", message_id, payload.get("newest"))
        newest = None
    if newest is not None and (result.newest_event is None or newest > result.newest_event):
        result.newest_event = newest
    collect(result, [Record(raw) for raw in raws if isinstance(raw, dict)], ids)
    entries = payload.get("quarantine")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, list) and len(entry) == 2:
            result.malformed += 1
            result.quarantine.append(Quarantined(str(entry[0])[:500], str(entry[1])))
