"""Verify before anything: a WSGI middleware in front of bolt that checks Slack's signature on raw bytes.

bolt verifies signatures too, but only after its adapter has read the whole body and parsed it, and a
timestamp that is not an integer (`1.5`, `abc`, empty) raised inside slack-sdk's SignatureVerifier
(`int(timestamp)`), which sent the forged request to the error handler: a 500, and outbound calls to
whatever `response_url` and user the forged body named. This middleware runs first, in this order:

1. Content-Length over MAX_BODY → 413, nothing read (waitress refuses such bodies too:
   `max_request_body_size`); no or a bad Content-Length → read at most MAX_BODY + 1 bytes, 413 if more.
2. `X-Slack-Request-Timestamp` must be ASCII digits within 5 minutes of now, else 401.
3. slack-sdk's SignatureVerifier on the raw bytes (api.slack.com/authentication/verifying-requests-from-slack),
   else 401.
4. Once verified: a request seen before (same signature, so same timestamp and body) is a replay and is
   answered 200 with nothing done; an Events API delivery whose `event_id` was already handled (Slack
   retries with `X-Slack-Retry-Num` when our answer was slow) is acknowledged without redoing it.

A refusal logs one short line (reason, path, client address), never the body or headers, and counts
`bucketwatch_request_verification_failures_total{reason}`. Nothing refused reaches bolt, so nothing
refused can cause an outbound call.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.signature import Clock, SignatureVerifier

from bot.core.metrics import VERIFICATION_FAILURES
from bot.store.database import Store

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # 1 MiB: Slack's own payloads are a few KiB (a view submission is the largest)
MAX_SKEW = 5 * 60  # seconds: Slack's documented replay window
_ADDRESS = re.compile(r"[^0-9A-Fa-f.:, ]")
_TIMESTAMP_DIGITS = 12  # an epoch in seconds; more digits is not a timestamp Slack sends

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]):
        self._now = now

    def now(self) -> float:
        return self._now()


class SeenRequests:
    """Keys seen in the last MAX_SKEW seconds (+ a minute), shared by every process on one database.

    In the database rather than in memory so a replay is refused after a restart, and by a second
    process serving the same Slack app. With no store (tests of the middleware alone), in memory.
    """

    def __init__(self, store: Store | None = None, *, clock: Callable[[], float] = time.time):
        self.store, self.clock = store, clock
        self._memory: dict[str, float] = {}
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def first(self, key: str) -> bool:
        """True the first time `key` is offered within the window; False for a repeat."""
        now = self.clock()
        horizon = now - MAX_SKEW - 60
        if self.store is None:
            with self._lock:
                if now - self._last_prune > 60:
                    self._memory = {k: at for k, at in self._memory.items() if at > horizon}
                    self._last_prune = now
                if key in self._memory:
                    return False
                self._memory[key] = now
                return True
        with self.store.atomic() as db:
            if now - self._last_prune > 60:
                db.execute("DELETE FROM slack_requests_seen WHERE at < ?", [horizon])
                self._last_prune = now
            cursor = db.execute("INSERT OR IGNORE INTO slack_requests_seen (key, at) VALUES (?, ?)", [key, now])
            return cursor.rowcount == 1


class VerifiedRequests:
    """WSGI middleware: Slack requests at `path` reach `app` only verified, bounded and once."""

    def __init__(
        self,
        app: Wsgi,
        signing_secret: str,
        *,
        path: str,
        seen: SeenRequests | None = None,
        clock: Callable[[], float] = time.time,
        max_body: int = MAX_BODY,
    ):
        self.app, self.path, self.clock, self.max_body = app, path, clock, max_body
        self.verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))
        self.seen = seen or SeenRequests(clock=clock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path:
            return self.app(environ, start_response)  # bolt's adapter answers 404; other routes are not Slack's
        declared = _content_length(environ)
        if declared is not None and declared > self.max_body:
            return self._refuse(environ, start_response, "too_large")
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        reason = self._timestamp_problem(timestamp) or ("" if signature else "no_signature")
        if reason:
            return self._refuse(environ, start_response, reason)  # the body is never read
        # PEP 3333: never read past Content-Length; without one, one byte past the cap tells "too big".
        body = _read(environ, self.max_body + 1 if declared is None else declared)
        if len(body) > self.max_body:
            return self._refuse(environ, start_response, "too_large")
        if not self._valid(body, str(timestamp), str(signature)):
            return self._refuse(environ, start_response, "bad_signature")
        if not self.seen.first("sig:" + hashlib.sha256(str(signature).encode()).hexdigest()):
            return self._refuse(environ, start_response, "replay", status="200 OK")
        event_id = _event_id(body, environ)
        if event_id and not self.seen.first("event:" + event_id):
            log.info("Slack event %s delivered again (retry %s): acknowledged, not redone",
                     event_id[:40], str(environ.get("HTTP_X_SLACK_RETRY_NUM", "-"))[:4])
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    def _timestamp_problem(self, timestamp: str | None) -> str:
        if not timestamp:
            return "no_timestamp"
        # isdigit() alone accepts other scripts' digits (e.g. "١٢٣"); Slack sends ASCII seconds.
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _TIMESTAMP_DIGITS):
            return "bad_timestamp"
        if abs(self.clock() - int(timestamp)) > MAX_SKEW:
            return "stale"
        return ""

    def _valid(self, body: bytes, timestamp: str, signature: str) -> bool:
        try:
            return self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except (ValueError, UnicodeDecodeError):  # slack-sdk decodes the body as UTF-8 to sign it
            return False

    def _refuse(
        self, environ: dict[str, Any], start_response: Callable[..., Any], reason: str, *, status: str = ""
    ) -> Iterable[bytes]:
        VERIFICATION_FAILURES.labels(reason=reason).inc()
        # The address may come from a header the caller wrote: keep only what an address can contain.
        client = _ADDRESS.sub("", str(environ.get("HTTP_X_FORWARDED_FOR") or environ.get("REMOTE_ADDR") or "?"))[:64]
        log.warning("Slack request refused: %s (from %s)", reason, client)
        if status:  # a replay: Slack-like empty acknowledgement, so a replayer learns nothing
            start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        code, text = ("413 Request Entity Too Large", b"too large\n") if reason == "too_large" else (
            "401 Unauthorized", b"unauthorized\n")
        start_response(code, [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
        return [text]


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _read(environ: dict[str, Any], most: int) -> bytes:
    """At most `most` bytes of the body."""
    stream = environ["wsgi.input"]
    chunks, left = [], most
    while left > 0:
        chunk = stream.read(min(left, 64 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _event_id(body: bytes, environ: dict[str, Any]) -> str:
    """The Events API delivery's event_id (JSON bodies only); '' for commands and interactivity."""
    if "json" not in str(environ.get("CONTENT_TYPE") or ""):
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    return str(data.get("event_id") or "")[:100] if isinstance(data, dict) else ""
