"""A local HTTP server standing in for the Slack Web API; it records every call.

Use it as a pytest fixture (import it into your test module):

    from tests.slack_standin import slack_standin  # noqa: F401  (the fixture)

    def test_x(slack_standin):
        client = WebClient(token="xoxb-test", base_url=slack_standin.url)
        client.chat_postMessage(channel="C0ALERTS", text="hi")
        assert slack_standin.calls_to("chat.postMessage")[0].params["text"] == "hi"

Or start one yourself: `with SlackStandin() as standin: ...`.

API of `SlackStandin`:
- `url`: the Web API base URL (ends in `/api/`) for `WebClient(base_url=...)` or `SLACK_API_URL`.
- `calls`: every `Call(method, params, token, headers, status, ok, at)` in arrival order (`at`: time.monotonic()
  when it arrived), failures included;
  `calls_to(method)` all calls of a method; `accepted(method)` only those answered `ok: true`;
  `methods()` the method names in order; `clear()`.
- `messages`: `Message(channel, ts, text, blocks, thread_ts)` per chat.postMessage, kept current by
  chat.update; `top_level(channel=None)`, `replies(ts)`, `message(ts)`.
- `fail_next(method, times=1, *, status=429, retry_after=1, error=None)`: the next `times` calls of
  `method` answer HTTP 429 with Retry-After, a 5xx (`status=500/503`), or, with `error="channel_not_found"`,
  HTTP 200 `{"ok": false, "error": ...}`.
- `delay_next(method, seconds, times=1)`: the next `times` calls of `method` are carried out (a message
  is posted) and then answered only after `seconds` — Slack accepting a card but answering slower than
  the client waits. `hold_next(method)` the same until `release()`.
- Messages keep the `metadata` they were posted with; conversations.history returns it only with
  `include_all_metadata`, newest first, honouring `oldest`, `limit` and `cursor` like Slack.
- `respond(method, payload)`: a fixed JSON answer for a method (overrides the defaults).
- `scopes`: sent back by auth.test in `x-oauth-scopes`; `users` (id → users.info user dict);
  `usergroups` (group id → member ids); `channels` (id → conversations.info channel dict).
- `emails` (email → user id) for users.lookupByEmail (`users_not_found` otherwise; a user in `users` with
  `is_bot` or `deleted` is answered as Slack does); conversations.open gives `D<user id>` for a user, and
  `cannot_dm_bot` for a user id in `bots`.
- `valid_tokens`: when non-empty, any other bearer token gets `invalid_auth`.
- `response_url(name="r")`: a URL that records POSTs as calls of method `response_url:<name>`
  (Bolt's `respond()` and interactive payloads' response_url).
- `wait_for(method, count=1, timeout=5)`: block until `count` accepted calls of `method` arrived.
- Block checks: chat.postMessage / chat.update / chat.postEphemeral with more than 50 blocks, a section
  text over 3000 characters or no text and no blocks are refused like Slack (`invalid_blocks`, `no_text`).
Supported with realistic answers: chat.postMessage, chat.update, chat.postEphemeral, chat.getPermalink,
views.open/update/publish/push, auth.test, users.info, users.lookupByEmail, conversations.open,
usergroups.users.list, conversations.info,
conversations.join, conversations.replies, conversations.history, files.getUploadURLExternal (+ the upload
URL), files.completeUploadExternal. Any other method answers `{"ok": true}`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_SCOPES = (
    "chat:write,commands,usergroups:read,users:read,channels:read,groups:read,files:write,channels:history,"
    "groups:history,users:read.email,im:write,im:history"
)
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "user_ids")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    headers: dict[str, str]
    status: int = 200  # HTTP status sent back
    ok: bool = True  # the "ok" of the JSON answer
    at: float = field(default_factory=time.monotonic)  # when the request arrived (benchmarks time cards by it)


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[Any] = field(default_factory=list)
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class _Failure:
    times: int
    status: int
    retry_after: int
    error: str | None


class SlackStandin:
    """Threaded HTTP server on 127.0.0.1 answering Slack Web API calls; see the module docstring."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: list[Message] = []
        self.scopes = DEFAULT_SCOPES
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.emails: dict[str, str] = {}
        self.bots: set[str] = set()
        self.valid_tokens: set[str] = set()
        self._fixed: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, _Failure] = {}
        self._delays: dict[str, list[float]] = {}
        self._released = threading.Event()
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._last_ts = 0.0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                standin._handle(self)

            def do_GET(self) -> None:
                standin._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ---- lifecycle ----
    def start(self) -> SlackStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> SlackStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls ----
    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str | None = None,
    ) -> None:
        with self._lock:
            self._failures[method] = _Failure(times, 200 if error else status, retry_after, error)

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._delays.setdefault(method, []).extend([seconds] * times)

    def hold_next(self, method: str, times: int = 1) -> None:
        """Carry out the next `times` calls of `method` but answer only after `release()`."""
        self._released.clear()
        self.delay_next(method, float("inf"), times)

    def release(self) -> None:
        self._released.set()

    def respond(self, method: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self._fixed[method] = payload

    def response_url(self, name: str = "r") -> str:
        return f"http://127.0.0.1:{self.port}/response/{urllib.parse.quote(name)}"

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def accepted(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.ok]

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.messages.clear()

    def top_level(self, channel: str | None = None) -> list[Message]:
        with self._lock:
            return [
                m for m in self.messages if m.thread_ts is None and (channel is None or m.channel == channel)
            ]

    def replies(self, ts: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.thread_ts == ts]

    def message(self, ts: str) -> Message | None:
        with self._lock:
            return next((m for m in self.messages if m.ts == ts), None)

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len([c for c in self.calls if c.method == method and c.ok]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{method}: wanted {count} calls, got {self.methods()}")
                self._lock.wait(left)
            return [c for c in self.calls if c.method == method and c.ok]

    # ---- serving ----
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        path = urllib.parse.urlparse(request.path).path
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        params = _parse(body, headers.get("content-type", ""), urllib.parse.urlparse(request.path).query)
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else params.get("token")
        if path.startswith("/response/") or path.startswith("/upload/"):
            method = ("response_url:" if path.startswith("/response/") else "upload:") + path.split("/", 2)[2]
            self._record(Call(method, params, token, headers))
            return _send(request, 200, {"ok": True})
        method = path.rsplit("/", 1)[-1]
        with self._lock:
            failure = self._failures.get(method)
            if failure and failure.times > 0:
                failure.times -= 1
                self.calls.append(Call(method, params, token, headers, status=failure.status, ok=False))
                self._lock.notify_all()
                if failure.error:
                    return _send(request, 200, {"ok": False, "error": failure.error})
                if failure.status == 429:
                    return _send(
                        request,
                        429,
                        {"ok": False, "error": "ratelimited"},
                        {"Retry-After": str(failure.retry_after)},
                    )
                return _send(request, failure.status, None)
        if self.valid_tokens and token not in self.valid_tokens:
            self._record(Call(method, params, token, headers, ok=False))
            return _send(request, 200, {"ok": False, "error": "invalid_auth"})
        payload, extra = self._answer(method, params)
        self._record(Call(method, params, token, headers, ok=bool(payload.get("ok")), at=arrived))
        with self._lock:
            delays = self._delays.get(method)
            delay = delays.pop(0) if delays else 0.0
        if delay == float("inf"):
            self._released.wait(60)
        elif delay:
            time.sleep(delay)
        try:
            _send(request, 200, payload, extra)
        except OSError:
            pass  # the client gave up waiting (its timeout): Slack did the work all the same

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def _next_ts(self) -> str:
        """Like Slack's: the epoch time of posting with microseconds, unique and increasing."""
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"

    def _answer(self, method: str, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        with self._lock:
            if method in self._fixed:
                return self._fixed[method], {}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            problem = _check_message(p)
            if problem:
                return {"ok": False, "error": problem}, {}
        if method == "chat.postMessage":
            ts = self._next_ts()
            metadata = p.get("metadata") if isinstance(p.get("metadata"), dict) else None
            msg = Message(
                str(p.get("channel")), ts, str(p.get("text") or ""), p.get("blocks") or [], p.get("thread_ts"),
                metadata,
            )
            with self._lock:
                self.messages.append(msg)
            return {
                "ok": True,
                "channel": msg.channel,
                "ts": ts,
                "message": {"type": "message", "text": msg.text, "ts": ts, "blocks": msg.blocks},
            }, {}
        if method == "chat.update":
            found = self.message(str(p.get("ts")))
            if found is None:
                return {"ok": False, "error": "message_not_found"}, {}
            with self._lock:
                found.text, found.blocks = str(p.get("text") or found.text), p.get("blocks") or found.blocks
            return {"ok": True, "channel": found.channel, "ts": found.ts, "text": found.text}, {}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}, {}
        if method == "chat.getPermalink":
            return {
                "ok": True,
                "permalink": f"https://example.slack.com/archives/{p.get('channel')}/p{p.get('message_ts')}",
            }, {}
        if method in ("views.open", "views.update", "views.publish", "views.push"):
            view: dict[str, Any] = p["view"] if isinstance(p.get("view"), dict) else {}
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts):08d}"}}, {}
        if method == "auth.test":
            return (
                {
                    "ok": True,
                    "url": "https://example.slack.com/",
                    "team": "Example",
                    "user": "bucketwatch",
                    "team_id": "T0TEST",
                    "user_id": "U0BOT",
                    "bot_id": "B0BOT",
                },
                {"x-oauth-scopes": self.scopes},
            )
        if method == "users.info":
            uid = str(p.get("user"))
            user = self.users.get(
                uid,
                {
                    "id": uid,
                    "name": uid.lower(),
                    "real_name": uid,
                    "tz": "UTC",
                    "profile": {"display_name": uid.lower(), "real_name": uid},
                },
            )
            return {"ok": True, "user": user}, {}
        if method == "users.lookupByEmail":
            email = str(p.get("email") or "").lower()
            match = [u for e, u in self.emails.items() if e.lower() == email]
            if not match:
                return {"ok": False, "error": "users_not_found"}, {}
            uid = match[0]
            person = {"id": uid, "name": email.split("@")[0], "is_bot": uid in self.bots, "deleted": False,
                      "profile": {"email": email}}
            return {"ok": True, "user": {**person, **self.users.get(uid, {})}}, {}
        if method == "conversations.open":
            uid = str(p.get("users") or "").split(",")[0]
            if uid in self.bots:
                return {"ok": False, "error": "cannot_dm_bot"}, {}
            if not uid:
                return {"ok": False, "error": "users_list_not_supplied"}, {}
            return {"ok": True, "channel": {"id": f"D{uid}"}}, {}
        if method == "usergroups.users.list":
            group = str(p.get("usergroup"))
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}, {}
            return {"ok": True, "users": self.usergroups[group]}, {}
        if method == "conversations.info":
            cid = str(p.get("channel"))
            channel = self.channels.get(
                cid, {"id": cid, "name": "alerts", "is_channel": True, "is_member": True}
            )
            return {"ok": True, "channel": channel}, {}
        if method == "conversations.replies":
            listed = self.replies(str(p.get("ts")))
            return {"ok": True, "messages": [_shown(m, False) for m in listed], "has_more": False}, {}
        if method == "conversations.history":
            return self._history(p), {}
        if method == "files.getUploadURLExternal":
            fid = f"F{next(self._ts):08d}"
            return {
                "ok": True,
                "upload_url": f"http://127.0.0.1:{self.port}/upload/{fid}",
                "file_id": fid,
            }, {}
        if method == "files.completeUploadExternal":
            files = p.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}, {}
        return {"ok": True}, {}


    def _history(self, p: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages newest first, after `oldest`, `limit` a page, `cursor` an offset."""
        oldest = float(p.get("oldest") or 0)
        listed = [m for m in reversed(self.top_level(str(p.get("channel")))) if float(m.ts) > oldest]
        start = int(str(p.get("cursor") or "0") or 0)
        limit = int(p.get("limit") or 100)
        page = listed[start:start + limit]
        more = start + limit < len(listed)
        with_metadata = str(p.get("include_all_metadata")).lower() in ("1", "true")
        return {
            "ok": True,
            "messages": [_shown(m, with_metadata) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }


def _shown(message: Message, with_metadata: bool) -> dict[str, Any]:
    """A message as the Web API lists it (metadata only when asked for)."""
    shown: dict[str, Any] = {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks}
    if message.thread_ts:
        shown["thread_ts"] = message.thread_ts
    if with_metadata and message.metadata:
        shown["metadata"] = message.metadata
    return shown


def _parse(body: bytes, content_type: str, query: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
    if not body:
        return params
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return params
        return {**params, **data} if isinstance(data, dict) else params
    if "x-www-form-urlencoded" in content_type:
        for key, value in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            if key in _JSON_FIELDS or key in ("files",):
                try:
                    params[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            params[key] = value
        return params
    return {**params, "_body": body[:1000].decode("utf-8", "replace")}


def _check_message(p: dict[str, Any]) -> str | None:
    """What Slack would refuse: no content, more than 50 blocks, a section text over 3000 characters."""
    blocks = p.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks_format"
    if not p.get("text") and not blocks:
        return "no_text"
    if blocks:
        if len(blocks) > 50:
            return "invalid_blocks"
        for block in blocks:
            text = block.get("text") if isinstance(block, dict) else None
            if isinstance(text, dict) and len(str(text.get("text", ""))) > 3000:
                return "invalid_blocks"
    return None


def _send(
    request: BaseHTTPRequestHandler,
    status: int,
    payload: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> None:
    body = json.dumps(payload).encode() if payload is not None else b"<html>upstream error</html>"
    request.send_response(status)
    request.send_header(
        "Content-Type", "application/json; charset=utf-8" if payload is not None else "text/html"
    )
    request.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.end_headers()
    request.wfile.write(body)
