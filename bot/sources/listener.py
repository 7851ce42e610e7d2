"""Seconds, not minutes: one thread per queue long-polls SQS and hands each batch over as it arrives.

The scheduled poll runs every POLL_SECONDS; a queue waiting for it would add up to a minute to every
event. Instead each queue (EVENT_QUEUE_URLS, TRAIL_QUEUE_URLS) has a listener thread that waits in
ReceiveMessage (long polling, WaitTimeSeconds=20, answered as soon as a message arrives), reads what
came (up to 10 messages a receive), and hands it to the poller's `hand_over`: the same dedup, index,
alert engine and delete-after-handling as a poll. While listeners run, the scheduled poll leaves the
queues to them (`Poller.listening`).

A failing receive (network, AccessDenied on the queue) is recorded in the source's health and retried
after a back-off that doubles up to MAX_BACKOFF; nothing here lets an error end the thread. A message
that fails (a log file it cannot read) holds nothing up: it comes back alone after its visibility
timeout, and is set aside after MAX_RECEIVES (bot.sources.sqs).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.sources.poller import Poller, SourceReport
from bot.sources.sqs import SqsQueue, poll_queue
from bot.sources.state import load_state

logger = logging.getLogger(__name__)
LONG_POLL_SECONDS = 20  # SQS's longest wait: an empty queue costs 3 requests a minute
# Receives per hand-over (10 messages each). One: each card of a burst is posted once its own batch of
# ten is handled, not after fifty live verdicts (docs/benchmarks.md, "queue to card").
LISTEN_BATCHES = 1
# Received messages stay invisible this long: one hand-over of LISTEN_BATCHES × 10 messages (log files
# read, alerts posted through the outbox, deletes) with room to spare; a crash shows them again this soon.
LISTEN_VISIBILITY_SECONDS = 120
MAX_BACKOFF = 60.0


class QueueListener:
    """Long-polls one queue in a daemon thread until `stop`."""

    def __init__(
        self,
        poller: Poller,
        queue: SqsQueue,
        *,
        wait_seconds: int = LONG_POLL_SECONDS,
        visibility_seconds: int = LISTEN_VISIBILITY_SECONDS,
        max_batches: int = LISTEN_BATCHES,
        sleep: Callable[[float], bool] | None = None,
    ):
        self.poller = poller
        self.queue = queue
        self.wait_seconds = wait_seconds
        self.visibility_seconds = visibility_seconds
        self.max_batches = max_batches
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait  # returns True when stopping
        self._thread: threading.Thread | None = None
        self.receive_failed = False  # the last ReceiveMessage itself failed: back off before the next

    def run_once(self) -> list[SourceReport]:
        """One long-poll and hand-over; a report per part handed over (an empty receive is one, recorded)."""
        poller = self.poller
        results = poll_queue(
            poller.aws, self.queue, region=poller.settings.home_region, max_batches=self.max_batches,
            first_wait=self.wait_seconds, wait_seconds=0, visibility_seconds=self.visibility_seconds,
            last_error=load_state(poller.store, self.queue.source).last_error,
        )  # fmt: skip
        self.receive_failed = not results[0].receives
        return poller.hand_over_all(results)

    def _run(self) -> None:
        delay = 1.0
        try:
            while not self._stop.is_set():
                try:
                    self.run_once()
                    failed = self.receive_failed
                except Exception:  # a bug, not an AWS error (those are in the report): logged, retried
                    logger.exception("%s: listener cycle failed", self.queue.source)
                    failed = True
                if not failed:
                    delay = 1.0
                    continue
                if self._sleep(delay):
                    break
                delay = min(MAX_BACKOFF, delay * 2)
        finally:
            self.poller.store.close()  # this thread's connection

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"listen-{self.queue.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to end after its current receive (up to `wait_seconds`); wait `timeout` for it."""
        self._stop.set()
        if self._thread is not None and timeout is not None:
            self._thread.join(timeout)


def start_listeners(poller: Poller, *, wait_seconds: int = LONG_POLL_SECONDS) -> list[QueueListener]:
    """A running listener per configured queue; from now on the scheduled poll leaves the queues to them."""
    listeners = [QueueListener(poller, queue, wait_seconds=wait_seconds) for queue in poller.queues]
    poller.listening = bool(listeners)
    for listener in listeners:
        listener.start()
    if listeners:
        logger.info("listening on %d queue(s): %s", len(listeners), ", ".join(q.source for q in poller.queues))
    return listeners
