"""GET /healthz, /readyz and /metrics on $PORT: beside /slack/events in HTTP mode, alone in Socket Mode.

- `/healthz` (liveness): the process answers HTTP. Nothing else is checked, so a platform restarts
  the bot only when it is wedged, never because Slack or AWS is down.
- `/readyz` (readiness): 200 when the database takes a write lock and a write, every configured source
  had a successful poll recently, and Slack's auth.test succeeded; otherwise 503 with one reason a line.
- `/metrics`: Prometheus text (or OpenMetrics when asked) from `bot.core.metrics.REGISTRY`, through
  prometheus-client's own WSGI app; the gauges about stored state are refreshed from the database first.

A plain WSGI callable rather than a framework: three read-only paths, served by the same waitress
server as /slack/events (HTTP mode) or by one of their own (Socket Mode, `transport.serve_health`).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import make_wsgi_app
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.alerts.lifecycle import OPEN
from bot.core.clock import utcnow
from bot.core.metrics import (
    OPEN_ALERTS,
    OUTBOX_DEPTH,
    OUTBOX_GIVEN_UP,
    REGISTRY,
    SOURCE_LAG,
    SOURCE_LAST_SUCCESS,
)
from bot.slack.outbox import Outbox
from bot.sources.health import late_after, source_health
from bot.store.database import Store
from detections.base import SEVERITIES

log = logging.getLogger(__name__)

HEALTHZ, READYZ, METRICS = "/healthz", "/readyz", "/metrics"
PATHS = frozenset({HEALTHZ, READYZ, METRICS})
# Listed in a 503 at most; the rest are counted ("… and 40 more").
MAX_REASONS = 10
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SlackAuth:
    """The outcome of Slack's auth.test, checked again every `ok_seconds` (after a failure every `retry_seconds`).

    `status()` never waits for Slack: it returns the last outcome and, when that is due for a re-check,
    starts one in a background thread (a probe with a 1-second timeout must not wait on a slow API).
    """

    def __init__(
        self,
        client: WebClient,
        *,
        ok_seconds: float = 300,
        retry_seconds: float = 15,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.ok_seconds, self.retry_seconds, self.monotonic = ok_seconds, retry_seconds, monotonic
        self._problem: str | None = "Slack auth.test has not succeeded yet"
        self._checked_at: float | None = None
        self._lock = threading.Lock()
        self._running = False

    def check(self) -> str | None:
        """Call auth.test now; None when it succeeded, else why not (never the token)."""
        try:
            self.client.auth_test()
            problem = None
        except SlackApiError as exc:
            problem = f"Slack auth.test failed: {exc.response.get('error') or exc.response.status_code}"
        except Exception as exc:  # connection refused, timeout, DNS: say which, not the traceback
            problem = f"Slack auth.test failed: {type(exc).__name__}"
        with self._lock:
            if problem and problem != self._problem:
                log.warning("%s", problem)
            self._problem, self._checked_at = problem, self.monotonic()
        return problem

    def status(self) -> str | None:
        """The last outcome (None: auth succeeded); starts a re-check in the background when one is due."""
        with self._lock:
            problem, checked_at = self._problem, self._checked_at
            wait = self.retry_seconds if problem else self.ok_seconds
            due = checked_at is None or self.monotonic() - checked_at >= wait
            start = due and not self._running
            if start:
                self._running = True
        if start:
            threading.Thread(target=self._background, name="slack-auth-check", daemon=True).start()
        return problem

    def _background(self) -> None:
        try:
            self.check()
        finally:
            with self._lock:
                self._running = False


def database_problem(path: Path, *, timeout: float = 2.0) -> str | None:
    """None when the database takes a write: the write lock, then a schema change that is rolled back.

    BEGIN IMMEDIATE alone succeeds on a read-only file; the CREATE TABLE is what fails there. The
    rollback leaves nothing behind (not even in the WAL, so Litestream ships nothing).
    """
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        return f"database {path.name}: {exc}"
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE _bucketwatch_ready_probe (x)")
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"database {path.name} is not writable: {exc}"
    finally:
        conn.close()
    return None


class Health:
    """What the three paths answer, from the store, the configured sources and Slack's auth.test."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        slack_auth: SlackAuth,
        source_names: Callable[[], list[str]],
        *,
        poll_seconds: int,
        clock: Callable[[], datetime] = utcnow,
        db_timeout: float = 2.0,
    ):
        self.store, self.outbox, self.slack_auth, self.source_names = store, outbox, slack_auth, source_names
        self.deadline = late_after(poll_seconds)  # the rule `status`, App Home and the digest use
        self.clock, self.db_timeout = clock, db_timeout
        self._metrics_app = make_wsgi_app(REGISTRY)

    def problems(self) -> list[str]:
        """Why the bot is not ready, one reason each; empty when it is."""
        problems = []
        db = database_problem(self.store.path, timeout=self.db_timeout)
        if db:
            problems.append(db)
        for health in source_health(self.store, self.clock(), self.source_names(), stale_after=self.deadline):
            if health.last_success is None:
                problems.append(f"{health.source}: not polled successfully yet")
            elif health.stale:
                age = int((self.clock() - health.last_success).total_seconds())
                error = f" (last error: {health.last_error})" if health.last_error else ""
                problems.append(f"{health.source}: last successful poll {age}s ago{error}")
        auth = self.slack_auth.status()
        if auth:
            problems.append(auth)
        return problems

    def refresh_gauges(self) -> None:
        """Set the gauges about stored state from the database (called before each scrape)."""
        OUTBOX_DEPTH.set(len(self.outbox.pending()))
        OUTBOX_GIVEN_UP.set(self.outbox.failed())
        counts = dict.fromkeys(SEVERITIES, 0)
        marks = ", ".join("?" for _ in OPEN)
        sql = f"SELECT severity, count(*) FROM alerts WHERE status IN ({marks}) GROUP BY severity"  # noqa: S608
        for severity, count in self.store.db.execute(sql, list(OPEN)).fetchall():
            counts[str(severity)] = int(count)
        for severity, count in counts.items():
            OPEN_ALERTS.labels(severity=severity).set(count)
        for health in source_health(self.store, self.clock(), self.source_names()):
            # NaN, not 0, while a source has returned no event yet: no lag is known, and 0 would look healthy.
            lag = health.lag_seconds if health.lag_seconds is not None else math.nan
            SOURCE_LAG.labels(source=health.source).set(lag)
            success = health.last_success  # aware UTC (bot.core.clock)
            SOURCE_LAST_SUCCESS.labels(source=health.source).set(success.timestamp() if success else 0)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI app for the three paths (anything else is 404)."""
        path = environ.get("PATH_INFO") or "/"
        if path not in PATHS:
            return _text(start_response, "404 Not Found", "not found\n")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _text(start_response, "405 Method Not Allowed", "GET only\n", [("Allow", "GET, HEAD")])
        if path == HEALTHZ:
            return _text(start_response, "200 OK", "ok\n")
        if path == READYZ:
            problems = self.problems()
            if not problems:
                return _text(start_response, "200 OK", "ready\n")
            shown = problems[:MAX_REASONS]
            if len(problems) > MAX_REASONS:
                shown.append(f"… and {len(problems) - MAX_REASONS} more")
            return _text(start_response, "503 Service Unavailable", "not ready:\n" + "\n".join(shown) + "\n")
        try:
            self.refresh_gauges()
        except Exception:  # a locked or broken database must not hide the counters
            log.warning("could not refresh the metrics from the database", exc_info=True)
        return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]


def with_health(health: WSGIApp, other: WSGIApp) -> WSGIApp:
    """One WSGI app: the health paths to `health`, everything else (/slack/events) to `other`."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = health if environ.get("PATH_INFO") in PATHS else other
        return target(environ, start_response)

    return app


def _text(
    start_response: Callable[..., Any], status: str, body: str, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = body.encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))),
         ("Cache-Control", "no-store"), *(headers or [])],
    )
    return [data]
