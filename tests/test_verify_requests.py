"""Verify before anything (issue 8, defects 1 and 2): raw HTTP at the app, signed as Slack signs or not.

Every unverifiable request gets 401 (413 when too big) and causes no outbound call of any kind: the
Slack stand-in records every Web API call and every POST to a response_url, and must record none.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import socket
import time
from typing import Any

from bot.core.metrics import VERIFICATION_FAILURES
from bot.slack.verify import MAX_BODY, SeenRequests, VerifiedRequests
from tests.slack_requests import (
    BYSTANDER,
    RESPONDER,
    SECRET,
    BotApp,
    block_action,
    bot_app,
    encode_form,
    encode_payload,
    post,
    sign,
    slash_body,
)
from tests.slack_standin import slack_standin

FIXTURES = (bot_app, slack_standin)


def _failures(reason: str) -> float:
    return VERIFICATION_FAILURES.labels(reason=reason)._value.get()


def _forged_press(bot: BotApp, alert_id: int) -> str:
    """A press whose response_url, user and channel an attacker chose (here: the stand-in, to see calls)."""
    payload = block_action("ack", str(alert_id), user=BYSTANDER, channel="C0ELSEWHERE",
                           response_url=bot.standin.response_url("attacker"))
    return encode_payload(payload)


UNVERIFIABLE = [
    ({}, "no_timestamp"),
    ({"X-Slack-Request-Timestamp": "", "X-Slack-Signature": "v0=00"}, "no_timestamp"),
    ({"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"}, "bad_timestamp"),
    ({"X-Slack-Request-Timestamp": "1700000000.5", "X-Slack-Signature": "v0=00"}, "bad_timestamp"),
    ({"X-Slack-Request-Timestamp": "-1", "X-Slack-Signature": "v0=00"}, "bad_timestamp"),
    ({"X-Slack-Request-Timestamp": "99999999999999999999", "X-Slack-Signature": "v0=00"}, "bad_timestamp"),
    ({"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": ""}, "no_signature"),
    ({"X-Slack-Request-Timestamp": "OLD", "X-Slack-Signature": "SIGNED"}, "stale"),
    ({"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": "v0=deadbeef"}, "bad_signature"),
]


def test_unverifiable_requests_get_401_and_no_outbound_call(bot_app: BotApp, caplog: Any) -> None:
    """Missing, empty, non-numeric, float, huge or stale timestamps, no or a wrong signature: 401, one
    short log line without the body, the counter by reason, and nothing sent anywhere (no response_url
    post, no ephemeral, no DM) while the forged body names an attacker's response_url, user and channel."""
    alert = bot_app.open_alert("guarded")
    body = _forged_press(bot_app, alert.id)
    for headers, reason in UNVERIFIABLE:
        now = int(time.time())
        headers = dict(headers)
        if headers.get("X-Slack-Request-Timestamp") == "NOW":
            headers["X-Slack-Request-Timestamp"] = str(now)
        if headers.get("X-Slack-Request-Timestamp") == "OLD":
            headers = sign(body, timestamp=now - 5 * 60 - 5)
        bot_app.standin.clear()
        caplog.clear()
        before = _failures(reason)
        with caplog.at_level(logging.INFO):
            reply = post(bot_app.url, body, signed=False, headers=headers)
        assert reply.status == 401, (headers, reason)
        assert _failures(reason) == before + 1, reason
        refused = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refused) == 1 and reason in refused[0].getMessage()
        assert "C0ELSEWHERE" not in caplog.text and "attacker" not in caplog.text  # never the body
    time.sleep(0.3)  # anything a request could have set off (ephemeral, DM, response_url) has run by now
    assert bot_app.standin.calls == []
    assert bot_app.services.audit.recent() == []
    assert bot_app.services.alerts.get(alert.id).status == "open"


def test_a_body_that_is_not_utf8_is_refused_not_an_error(bot_app: BotApp) -> None:
    raw = b"payload=\xff\xfe" + b"x" * 100
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    status, _ = _raw(bot_app.url, raw, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"})
    assert status == 401
    assert bot_app.standin.calls == []


def _raw(url: str, body: bytes, headers: dict[str, str], *, declared: int | None = None,
         send_body: bool = True) -> tuple[int, bytes]:
    """POST over a plain socket (a Content-Length that lies, or a body never sent)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    lines = [
        "POST /slack/events HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(body) if declared is None else declared}",
        *[f"{k}: {v}" for k, v in headers.items()],
        "Connection: close",
    ]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        if send_body:
            sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def test_a_huge_declared_body_gets_413_before_it_is_sent(bot_app: BotApp) -> None:
    """256 MiB announced, none sent: the answer comes at once, so nothing waited for (or read) the body."""
    started = time.monotonic()
    status, _ = _raw(bot_app.url, b"", {}, declared=256 * 1024 * 1024, send_body=False)
    assert status == 413
    assert time.monotonic() - started < 5
    assert bot_app.standin.calls == []


def test_a_body_just_over_1_mib_gets_413_and_one_at_1_mib_is_verified(bot_app: BotApp) -> None:
    status, _ = _raw(bot_app.url, b"", {}, declared=MAX_BODY + 1, send_body=False)
    assert status == 413
    at_cap = encode_form({**slash_body("help"), "pad": "x" * MAX_BODY})[:MAX_BODY]
    reply = post(bot_app.url, at_cap)
    assert reply.status != 413


def test_the_app_reads_at_most_1_mib_plus_one_without_a_content_length() -> None:
    """Behind another server (or chunked input with no length), the middleware itself stops reading."""

    class Endless(io.RawIOBase):
        read_bytes = 0

        def read(self, n: int = -1) -> bytes:
            n = 65536 if n < 0 else n
            self.read_bytes += n
            return b"a" * n

    def inner(environ: Any, start_response: Any) -> list[bytes]:
        raise AssertionError("an unverified body reached the app")

    middleware = VerifiedRequests(inner, SECRET, path="/slack/events")
    stream = Endless()
    ts = str(int(time.time()))
    environ = {"PATH_INFO": "/slack/events", "wsgi.input": stream, "HTTP_X_SLACK_REQUEST_TIMESTAMP": ts,
               "HTTP_X_SLACK_SIGNATURE": "v0=00", "REMOTE_ADDR": "127.0.0.1"}
    statuses: list[str] = []
    middleware(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["413 Request Entity Too Large"]
    assert stream.read_bytes == MAX_BODY + 1
    # A declared length over the cap is refused with nothing read at all.
    stream2 = Endless()
    middleware({**environ, "wsgi.input": stream2, "CONTENT_LENGTH": str(MAX_BODY + 1)},
               lambda status, headers: statuses.append(status))
    assert statuses[-1].startswith("413") and stream2.read_bytes == 0


def test_a_replayed_signed_press_acts_once(bot_app: BotApp) -> None:
    """Issue 8, item 11: an identical signed request replayed within the five-minute window is answered
    200 (a replayer learns nothing) and does nothing: one audit row, one card update."""
    alert = bot_app.open_alert("replayed")
    payload = block_action("ack", str(alert.id), user=RESPONDER, response_url=bot_app.standin.response_url("p"))
    body = encode_payload(payload)
    headers = sign(body)
    first = post(bot_app.url, body, signed=False, headers=headers)
    assert first.status == 200
    bot_app.standin.wait_for("chat.update")
    before = _failures("replay")
    again = [post(bot_app.url, body, signed=False, headers=headers) for _ in range(3)]
    assert [r.status for r in again] == [200, 200, 200]
    assert _failures("replay") == before + 3
    time.sleep(0.3)
    assert [(r.user, r.action) for r in bot_app.services.audit.for_alert(alert.id)] == [(RESPONDER, "ack")]
    assert len(bot_app.standin.accepted("chat.update")) == 1
    assert len(bot_app.standin.accepted("chat.postEphemeral")) == 0


def test_a_replay_is_refused_after_a_restart_too(bot_app: BotApp) -> None:
    """The signatures seen are in the database, so a second process on it refuses the replay as well."""
    seen = SeenRequests(bot_app.services.store)
    other = SeenRequests(bot_app.services.store)
    assert seen.first("sig:abc") and not other.first("sig:abc")


def test_events_api_retries_are_acknowledged_without_redoing_work(bot_app: BotApp) -> None:
    event = {
        "type": "event_callback", "team_id": "T0TEST", "api_app_id": "A0TEST", "event_id": "Ev0RETRIED",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": BYSTANDER, "tab": "home", "channel": "D0"},
    }
    body = json.dumps(event)
    assert post(bot_app.url, body, headers={"Content-Type": "application/json"}).status == 200
    bot_app.standin.wait_for("views.publish")
    # Slack's retry: the same event, signed again (a new timestamp), with X-Slack-Retry-Num.
    retry = post(bot_app.url, body, timestamp=int(time.time()) + 1,
                 headers={"Content-Type": "application/json", "X-Slack-Retry-Num": "1",
                          "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status == 200
    time.sleep(0.3)
    assert len(bot_app.standin.accepted("views.publish")) == 1


def test_a_signed_request_still_works_end_to_end(bot_app: BotApp) -> None:
    reply = bot_app.slash("help")
    assert reply.status == 200 and "allowlist" in reply.json()["text"]


def test_digits_of_other_scripts_are_not_a_timestamp() -> None:
    middleware = VerifiedRequests(lambda e, s: [b""], SECRET, path="/slack/events")
    assert middleware._timestamp_problem("١٧٠٠٠٠٠٠٠٠") == "bad_timestamp"
    assert middleware._timestamp_problem(str(int(time.time()))) == ""
