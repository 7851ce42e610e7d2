"""Sends queued hand-offs over HTTP (requests), with back-off that survives restarts.

Retries are scheduled in the database, not slept in the call: a 429 or a 5xx reschedules the row after
the target's Retry-After (urllib3 parses both of its forms) or an exponential back-off, and the flush
goes on with other alerts' rows. Any other 4xx (a bad routing key, a receiver that refuses the
signature) will not succeed by repetition: the row is set aside, logged, and counted in `status`.
requests honours the standard proxy variables (HTTPS_PROXY, NO_PROXY) as boto3 and slack-sdk do; no
in-call retries (HTTPAdapter's default) and no redirects (a signed body goes only where it was sent).
Logs name the target, the alert and the HTTP status, never a body, a routing key or a signature.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import requests
from urllib3.exceptions import InvalidHeader
from urllib3.util import Retry

from bot.core.clock import utcnow
from bot.handoff.queue import HandoffQueue
from bot.handoff.targets import Target

log = logging.getLogger(__name__)

TIMEOUT = (5, 15)  # connect, read: well inside the queue's lease
MAX_BACKOFF = timedelta(minutes=10)
MAX_RETRY_AFTER = timedelta(hours=1)
MAX_ATTEMPTS = 20  # hours of back-off; then set aside as failed
RETRYABLE = frozenset({408, 425, 429})
PASSES = 10  # a flush drains rows queued behind ones it just sent (trigger → resolve) this many times


class HandoffSender:
    """Drains the hand-off queue to its targets; `flush()` never raises."""

    def __init__(self, queue: HandoffQueue, targets: Mapping[str, Target], *,
                 session: requests.Session | None = None, clock: Callable[[], datetime] = utcnow):
        self.queue, self.targets = queue, dict(targets)
        self.session = session or requests.Session()
        self.clock = clock
        self._flushing = threading.Lock()

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(self.targets)

    def flush(self, *, limit: int = 100) -> int:
        """Send every due row in order; returns how many the targets accepted."""
        if not self.targets or not self._flushing.acquire(blocking=False):
            return 0
        try:
            total = 0
            for _ in range(PASSES):
                sent = self._pass(limit)
                total += sent
                if not sent:
                    break
            return total
        finally:
            self._flushing.release()

    def _pass(self, limit: int) -> int:
        sent = 0
        for row in self.queue.due(limit):
            target = self.targets.get(row["target"])
            if target is None or not self.queue.claim(row):
                continue  # a target no longer configured keeps its rows until it is again
            try:
                if self._send(target, row):
                    sent += 1
            except Exception:  # a bug must not stop the scheduler: record and back off
                log.exception("hand-off %s to %s (alert %s) failed", row["id"], row["target"], row["alert_id"])
                self.queue.retry(row, "error", self._backoff(row))
        return sent

    def _send(self, target: Target, row: dict[str, Any]) -> bool:
        body, headers = target.request(json.loads(row["payload"]), row["key"], self.clock())
        where = f"hand-off {row['id']} ({row['action']}) to {target.name} for alert {row['alert_id']}"
        extra = {"alert_id": row["alert_id"]}
        try:
            response = self.session.post(target.url, data=body, headers=headers, timeout=TIMEOUT,
                                         allow_redirects=False)
        except requests.RequestException as error:
            # The request may have arrived: the next attempt sends the same body (PagerDuty's dedup_key,
            # the webhook's delivery id make it harmless).
            return self._failed(row, where, type(error).__name__, self._backoff(row), extra)
        with response:
            status = response.status_code
        if 200 <= status < 300:
            self.queue.sent(row)
            log.info("%s: accepted (%s)", where, status, extra=extra)
            return True
        if status in RETRYABLE or status >= 500:
            after = self._retry_after(response.headers.get("Retry-After")) or self._backoff(row)
            return self._failed(row, where, f"http {status}", after, extra)
        log.error("%s: refused with http %s; set aside (check the setting, then the receiver)", where, status,
                  extra=extra)
        self.queue.retry(row, f"http {status}", timedelta(0), give_up=True)
        return False

    def _failed(self, row: dict[str, Any], where: str, error: str, after: timedelta, extra: dict[str, Any]) -> bool:
        give_up = (row["attempts"] or 0) + 1 >= MAX_ATTEMPTS
        if give_up:
            log.error("%s: %s; given up after %s attempts", where, error, MAX_ATTEMPTS, extra=extra)
        else:
            log.warning("%s: %s; retry in %ss", where, error, int(after.total_seconds()), extra=extra)
        self.queue.retry(row, error, after, give_up=give_up)
        return False

    @staticmethod
    def _retry_after(value: str | None) -> timedelta | None:
        if not value:
            return None
        try:
            seconds = Retry().parse_retry_after(value)
        except InvalidHeader:
            return None
        return min(timedelta(seconds=max(seconds, 0)), MAX_RETRY_AFTER)

    @staticmethod
    def _backoff(row: dict[str, Any]) -> timedelta:
        return min(timedelta(seconds=5 * 2 ** min(row["attempts"] or 0, 10)), MAX_BACKOFF)
