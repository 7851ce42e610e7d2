"""GET /healthz, /readyz and /metrics over real HTTP on 127.0.0.1, beside /slack/events and in Socket Mode."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_health, create_app
from bot.core.clock import utcnow
from bot.slack.health import Health
from bot.slack.messages import health_line
from bot.slack.outbox import MAX_ATTEMPTS
from bot.slack.transport import start_http_thread
from standins.cloudtrail import FakeCloudTrailServer
from standins.socket_mode import SocketModeStandin
from tests.ports import unused_port
from tests.slack_requests import (
    ACCOUNT,
    BotApp,
    encode_form,
    eventually,
    make_settings,
    post,
    slash_body,
)
from tests.slack_standin import SlackStandin, slack_standin

FIXTURES = (slack_standin,)
ROOT = Path(__file__).resolve().parents[1]
SOURCE = f"lookup:{ACCOUNT}:us-east-1"


def get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) → value."""
    status, text = get(base + "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(base: str, name: str, **labels: str) -> float:
    return samples(base).get((name, tuple(sorted(labels.items()))), 0.0)


@contextmanager
def serving(slack_standin: SlackStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            **overrides: Any) -> Iterator[tuple[BotApp, Health, str]]:
    """HTTP mode on a random port: /slack/events and the health paths on one server; moto and a
    CloudTrail LookupEvents stand-in behind it."""
    with FakeCloudTrailServer() as cloudtrail:
        cloudtrail.fake.default_account = ACCOUNT
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", cloudtrail.url)
        with mock_aws():
            settings = make_settings(slack_standin, tmp_path, **overrides)
            app, services = create_app(settings)
            health = build_health(services)
            server, stop = start_http_thread(app, settings, health=health)
            base = f"http://127.0.0.1:{server.effective_port}"
            try:
                yield BotApp(settings, app, services, slack_standin, base + "/slack/events"), health, base
            finally:
                stop()


@pytest.fixture
def served(
    slack_standin: SlackStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[BotApp, Health, str]]:
    with serving(slack_standin, tmp_path, monkeypatch) as found:
        yield found


def test_liveness_answers_and_readiness_waits_for_a_poll_and_slack_auth(
    served: tuple[BotApp, Health, str],
) -> None:
    bot, _health, base = served
    assert get(base + "/healthz") == (200, "ok\n")
    status, body = get(base + "/readyz")
    assert status == 503
    assert f"{SOURCE}: not polled successfully yet" in body
    bot.services.poller.poll_once()
    # The first /readyz started auth.test in the background; once it and the poll succeeded, ready.
    assert eventually(lambda: get(base + "/readyz") == (200, "ready\n"))
    assert bot.standin.calls_to("auth.test")
    # The health paths share the port with Slack's requests, which still need a signature.
    assert post(bot.url, encode_form(slash_body("help"))).status == 200
    assert post(bot.url, encode_form(slash_body("help")), signed=False).status == 401
    assert get(base + "/readyz", method="POST")[0] == 405
    assert get(base + "/nothing-here")[0] == 404


def test_readiness_says_why_when_the_database_is_locked_a_poll_is_late_or_the_token_is_revoked(
    served: tuple[BotApp, Health, str],
) -> None:
    bot, health, base = served
    bot.services.poller.poll_once()
    assert health.slack_auth.check() is None
    assert get(base + "/readyz") == (200, "ready\n")

    health.db_timeout = 0.05
    holder = sqlite3.connect(bot.settings.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock: this bot could not store an alert
    try:
        status, body = get(base + "/readyz")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 503 and "bot.db is not writable: database is locked" in body
    assert get(base + "/readyz")[0] == 200

    later = utcnow() + timedelta(minutes=10)
    health.clock = lambda: later
    status, body = get(base + "/readyz")
    assert status == 503 and f"{SOURCE}: last successful poll 6" in body
    health.clock = utcnow

    bot.standin.respond("auth.test", {"ok": False, "error": "token_revoked"})
    health.slack_auth.check()
    status, body = get(base + "/readyz")
    assert status == 503 and "Slack auth.test failed: token_revoked" in body
    assert "xoxb" not in body


def test_status_app_home_and_the_digest_call_a_source_late_when_readyz_does(
    slack_standin: SlackStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, /readyz said "last successful poll 20 minutes ago" (503) while `status`, App Home and the
    digest showed the same source with a green check for up to 30 minutes. One rule now: three missed
    POLL_SECONDS cycles (here 3 × 200 s), at least 5 minutes."""
    with serving(slack_standin, tmp_path, monkeypatch, poll_seconds=200) as (bot, health, base):
        services = bot.services
        services.poller.poll_once()
        health.slack_auth.check()
        for minutes, late in ((8, False), (12, True), (31, True)):
            later = utcnow() + timedelta(minutes=minutes)
            health.clock = services.poller.clock = lambda later=later: later
            assert (get(base + "/readyz")[0] == 503) is late
            [polled] = services.poller.health()
            assert polled.stale is late and health_line(polled).startswith(":warning:") is late
            [in_digest] = services.digest.figures(later).pollers
            assert in_digest.healthy is not late


def test_metrics_count_polls_fix_outcomes_and_open_alerts(served: tuple[BotApp, Health, str]) -> None:
    bot, _health, base = served
    polls = value(base, "bucketwatch_polls_total", source=SOURCE)
    bot.services.poller.poll_once()
    assert value(base, "bucketwatch_polls_total", source=SOURCE) == polls + 1
    assert value(base, "bucketwatch_source_last_success_timestamp_seconds", source=SOURCE) > 0

    alert = bot.open_alert("exposed-metrics")
    assert value(base, "bucketwatch_open_alerts", severity=alert.severity) == 1
    applied = value(base, "bucketwatch_remediation_outcomes_total", action="fix", outcome="applied")
    refused = value(base, "bucketwatch_remediation_outcomes_total", action="fix", outcome="refused")
    bot.press("fix", str(alert.id), user="U0BYSTANDER")
    bot.press("fix", str(alert.id))
    assert eventually(lambda: bot.services.alerts.get(alert.id).status == "fixed")
    assert eventually(
        lambda: value(base, "bucketwatch_remediation_outcomes_total", action="fix", outcome="applied") == applied + 1
    )
    assert eventually(
        lambda: value(base, "bucketwatch_remediation_outcomes_total", action="fix", outcome="refused") == refused + 1
    )
    assert value(base, "bucketwatch_open_alerts", severity=alert.severity) == 0


def test_metrics_show_the_outbox_depth_and_what_it_gave_up(served: tuple[BotApp, Health, str]) -> None:
    bot, _health, base = served
    outbox = bot.services.outbox
    assert value(base, "bucketwatch_outbox_depth") == 0
    item = outbox.enqueue_message("queued while Slack is away")
    assert value(base, "bucketwatch_outbox_depth") == 1
    bot.services.store.db.execute("UPDATE outbox SET attempts = ? WHERE id = ?", [MAX_ATTEMPTS - 1, item])
    bot.services.store.db.conn.commit()
    bot.standin.fail_next("chat.postMessage", error="channel_not_found")
    outbox.flush()
    assert value(base, "bucketwatch_outbox_depth") == 0
    assert value(base, "bucketwatch_outbox_given_up") == 1

    _status, text = get(base + "/metrics")
    # Declared for the transport's request verification, whoever increments it.
    assert "# TYPE bucketwatch_request_verification_failures_total counter" in text
    assert "process_resident_memory_bytes" in text


def test_socket_mode_serves_health_and_metrics_on_port(slack_standin: SlackStandin, tmp_path: Path) -> None:
    """`python -m bot run` in Socket Mode: nothing else listens, so $PORT answers the probes (a `web`
    dyno or a container HEALTHCHECK would otherwise kill it)."""
    socket_mode = SocketModeStandin().start()
    slack_standin.respond("apps.connections.open", {"ok": True, "url": socket_mode.url})
    port = unused_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-socket",
        "SLACK_APP_TOKEN": "xapp-1-socket",
        "SLACK_API_URL": slack_standin.url,
        "ALERT_CHANNEL": "C0ALERTS",
        "DB_PATH": str(tmp_path / "socket.db"),
        "PORT": str(port),
        "DIGEST_TIME": "23:59",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                            text=True)
    base = f"http://127.0.0.1:{port}"

    def answer(path: str) -> Any:
        try:
            return get(base + path)
        except OSError:
            return None

    try:
        assert eventually(lambda: answer("/healthz") or proc.poll() is not None, timeout=20) == (200, "ok\n")
        socket_mode.wait_connected(timeout=20)
        # No sources configured, the database writable, auth.test answered by the stand-in: ready.
        assert eventually(lambda: answer("/readyz") == (200, "ready\n"), timeout=10)
        status, text = get(base + "/metrics")
        assert status == 200 and "bucketwatch_outbox_depth 0.0" in text
        assert get(base + "/slack/events")[0] == 404  # no HTTP listener for Slack in Socket Mode
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        socket_mode.stop()
    assert proc.returncode == 0, err
    assert "xoxb-socket" not in err and "xapp-1-socket" not in err


def test_with_a_queue_readiness_allows_for_the_safety_nets_longer_interval(
    slack_standin: SlackStandin, tmp_path: Path
) -> None:
    queue = "https://sqs.us-east-1.amazonaws.com/111122223333/bucketwatch-s3-api-calls"
    with mock_aws():
        settings = make_settings(slack_standin, tmp_path, event_queue_urls=(queue,), safety_net_factor=5)
        _app, services = create_app(settings)
        health = build_health(services)
    # LookupEvents polls every 5 × POLL_SECONDS behind the queue: /readyz waits three of those, not three polls.
    assert health.deadline == timedelta(seconds=3 * 5 * settings.poll_seconds)
