"""Stand-ins for the hand-off targets on 127.0.0.1: PagerDuty's Events API v2 and a webhook receiver.

Each records every request (path, headers, raw body) and answers as the real one does: PagerDuty 202
with `{"status": "success", "dedup_key": …}` and 400 for an event it would reject; the webhook 200.
`fail_next(times, status, retry_after)` answers the next requests with 429 or 5xx first, so tests and the
demo can watch the bot back off and retry.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Failures:
    times: int = 0
    status: int = 503
    retry_after: str | None = None


@dataclass
class HandoffReceiver:
    """`kind` "pagerduty" checks events as PagerDuty would; "webhook" accepts any JSON."""

    kind: str = "webhook"
    requests: list[Received] = field(default_factory=list)  # every request, refused ones too
    accepted: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures = _Failures()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        path = "/v2/enqueue" if self.kind == "pagerduty" else "/hooks/bucketwatch"
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> HandoffReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, times: int = 1, *, status: int = 503, retry_after: str | None = None) -> None:
        with self._lock:
            self._failures = _Failures(times, status, retry_after)

    def bodies(self) -> list[Any]:
        """The accepted requests' JSON bodies, in order."""
        return [r.json() for r in self.accepted]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        got = Received(request.path, {k: v for k, v in request.headers.items()}, request.rfile.read(length))
        with self._lock:
            self.requests.append(got)
            failing = self._failures.times > 0
            if failing:
                self._failures.times -= 1
                status, retry_after = self._failures.status, self._failures.retry_after
        if failing:
            headers = {"Retry-After": retry_after} if retry_after else {}
            return _answer(request, status, {"status": "throttled" if status == 429 else "error"}, headers)
        if self.kind == "pagerduty":
            problem = _pagerduty_problem(got.body)
            if problem:
                return _answer(request, 400, {"status": "invalid event", "message": problem, "errors": [problem]})
            with self._lock:
                self.accepted.append(got)
            return _answer(request, 202, {"status": "success", "message": "Event processed",
                                          "dedup_key": got.json()["dedup_key"]})
        with self._lock:
            self.accepted.append(got)
        return _answer(request, 200, {"ok": True})


def _pagerduty_problem(body: bytes) -> str:
    """What PagerDuty's Events API v2 would reject (https://developer.pagerduty.com/docs/events-api-v2/)."""
    try:
        event = json.loads(body)
    except ValueError:
        return "body is not JSON"
    if len(str(event.get("routing_key", ""))) != 32:
        return "routing_key must be 32 characters"
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        return "event_action must be trigger, acknowledge or resolve"
    if event["event_action"] == "trigger":
        payload = event.get("payload") or {}
        if not all(payload.get(k) for k in ("summary", "source", "severity")):
            return "payload needs summary, source and severity"
        if payload["severity"] not in ("critical", "error", "warning", "info"):
            return "payload.severity must be critical, error, warning or info"
    elif not event.get("dedup_key"):
        return "dedup_key is required to resolve"
    return ""


def _answer(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
            headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(raw)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(raw)
