"""Clocks the tests own, for waits that happen inside libraries: nothing is slept, time is moved on.

- QueueClock: moto's SQS clock (visibility timeouts).
- RetryClock: botocore's retry back-off and adaptive rate limiter (throttling).
- VirtualClock: a clock and a sleep for code that takes them (the LookupEvents pacing).
- recorded_sleeps: a library module's `time.sleep` replaced by a list of the waits it asked for.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from types import ModuleType
from typing import Any

import botocore.endpoint
import moto.core.utils
import moto.sqs.models
import pytest
from botocore.retries import bucket


def recorded_sleeps(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[float]:
    """`module`'s own `time.sleep` records the seconds instead of sleeping (other modules are untouched)."""
    slept: list[float] = []
    own_time = ModuleType("time")
    own_time.__dict__.update(vars(time))
    own_time.sleep = slept.append  # type: ignore[attr-defined]
    monkeypatch.setattr(module, "time", own_time)
    return slept


class VirtualClock:
    """Stands still until something sleeps on it; a sleep moves it on at once."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)


class QueueClock:
    """moto's SQS clock, moved on by the test: a visibility timeout ends without being waited for.

    moto's SQS models read the time through `unix_time`/`unix_time_millis` (imported names); this
    adds an offset to both. Were moto to read the time elsewhere, advancing would change nothing and
    the tests that wait for a kept message to come back would fail, not pass unnoticed.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.offset = 0.0
        real = moto.core.utils.unix_time

        def unix_time(dt: datetime | None = None) -> float:
            return real(dt) if dt is not None else real() + self.offset

        monkeypatch.setattr(moto.sqs.models, "unix_time", unix_time)
        monkeypatch.setattr(moto.sqs.models, "unix_time_millis", lambda dt=None: unix_time(dt) * 1000.0)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def long_polls_on_the_clock(self, monkeypatch: pytest.MonkeyPatch) -> list[float]:
        """An empty queue's long poll (ReceiveMessage WaitTimeSeconds) moves this clock on instead of
        waiting: for tests where nothing arrives while a poll waits. Returns the seconds so waited."""
        waited: list[float] = []

        def wait_for_messages(queue: Any, timeout: int) -> None:
            if not queue.messages:
                waited.append(timeout)
                self.advance(timeout)

        monkeypatch.setattr(moto.sqs.models.Queue, "wait_for_messages", wait_for_messages)
        return waited


class RetryClock:
    """botocore's retry timing on a clock the test owns: back-offs and client-side rate limits are
    counted in `waited`, not slept.

    botocore has no switch for this, so three of its own names are replaced: the back-off
    `time.sleep` in botocore.endpoint, the adaptive mode's `Clock` and its token bucket's wait.
    Were botocore to stop using them, the waits would be real again and `waited` would stay 0, which
    the throttling tests assert against.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.waited = 0.0
        self._lock = threading.Lock()

    def current_time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.offset += max(0.0, seconds)
            self.waited += max(0.0, seconds)

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> RetryClock:
        """Every botocore client created from now until the test ends waits on this clock."""
        clock = cls()
        endpoint_time = ModuleType("time")
        endpoint_time.__dict__.update(vars(time))
        endpoint_time.sleep = clock.sleep  # type: ignore[attr-defined]
        monkeypatch.setattr(botocore.endpoint, "time", endpoint_time)
        monkeypatch.setattr(bucket, "Clock", lambda: clock)
        original_init = bucket.TokenBucket.__init__

        def token_bucket_init(self: bucket.TokenBucket, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            self._new_fill_rate_condition = _VirtualCondition(self._lock, clock)

        monkeypatch.setattr(bucket.TokenBucket, "__init__", token_bucket_init)
        return clock


class _VirtualCondition:
    """The token bucket's condition variable: a wait moves the clock on instead of blocking."""

    def __init__(self, lock: Any, clock: RetryClock):
        self._lock, self._clock = lock, clock

    def __enter__(self) -> _VirtualCondition:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        self._clock.sleep(timeout or 0.0)
        return False

    def notify(self, n: int = 1) -> None:
        return None
