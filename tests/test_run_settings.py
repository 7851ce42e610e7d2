"""`run` checks every setting before it acts: a bad configuration is one line per problem and exit 2,
with nothing posted, polled, scheduled or opened; `doctor` shows the same problems."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.aws.clients import AwsClients
from bot.cli import main
from bot.cli.doctor import run_doctor
from bot.core.problems import all_problems
from standins.cloudtrail import FakeCloudTrailServer
from tests.ports import unused_port
from tests.slack_requests import eventually
from tests.slack_standin import SlackStandin, slack_standin  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "111122223333"
BOT_TOKEN = "xoxp-1234-secret-user-token"


@pytest.fixture
def aws() -> Iterator[FakeCloudTrailServer]:
    """Every AWS call (CloudTrail, STS, S3) goes to the loopback stand-in, which records it."""
    with FakeCloudTrailServer() as server:
        server.fake.default_account = ACCOUNT
        yield server


def _env(standin: SlackStandin, aws: FakeCloudTrailServer, tmp_path: Path, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "SLACK_API_URL": standin.url,
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_ACCOUNTS": ACCOUNT,
        "DB_PATH": str(tmp_path / "state" / "bw.db"),
        "PORT": str(unused_port()),
        "PYTHONPATH": str(REPO),
        **settings,
    }


def _run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_bad_settings_are_all_reported_and_nothing_happens(
    slack_standin: SlackStandin, aws: FakeCloudTrailServer, tmp_path: Path  # noqa: F811
) -> None:
    env = _env(slack_standin, aws, tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN="garbage",
               ALERT_CHANNEL="#security", POLL_SECONDS="soon", AWS_REGIONS="us-east-1,Frankfurt")
    done = _run(env, tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "bucketwatch: configuration: SLACK_BOT_TOKEN: must start with xoxb- (this is a user token; the value is not"
        " shown)",
        "bucketwatch: configuration: SLACK_APP_TOKEN: must start with xapp- (this does not look like a Slack token;"
        " the value is not shown)",
        "bucketwatch: configuration: ALERT_CHANNEL: '#security' is not a channel id (C… or G…): that is a name; copy"
        " the id from the channel's details",
        "bucketwatch: configuration: AWS_REGIONS: 'Frankfurt' not a region name (like us-east-1)",
        "bucketwatch: configuration: POLL_SECONDS: expected a whole number, got 'soon'",
    ]
    assert slack_standin.calls == []  # nothing posted, no auth.test, no Socket Mode connection
    assert aws.fake.requests() == []  # nothing polled
    assert not (tmp_path / "state").exists()  # the database was not even opened


def test_http_mode_without_a_signing_secret_posts_and_polls_nothing(
    slack_standin: SlackStandin, aws: FakeCloudTrailServer, tmp_path: Path  # noqa: F811
) -> None:
    # Before: the scheduler started, the digest was posted and the accounts polled, then exit 2.
    env = _env(slack_standin, aws, tmp_path, SLACK_BOT_TOKEN="xoxb-1-good", ALERT_CHANNEL="C0ALERTS",
               DIGEST_TIME="00:00")
    done = _run(env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "bucketwatch: configuration: SLACK_SIGNING_SECRET: not set; required in HTTP mode (or set SLACK_APP_TOKEN"
        " for Socket Mode)"
    ]
    assert slack_standin.calls == [] and aws.fake.requests() == []


@pytest.mark.parametrize(
    "mode", [{"SLACK_SIGNING_SECRET": "0123456789abcdef"}, {"SLACK_APP_TOKEN": "xapp-1-socket"}], ids=["http", "socket"]
)
def test_a_port_another_process_holds_stops_run_before_slack_or_aws(
    slack_standin: SlackStandin, aws: FakeCloudTrailServer, tmp_path: Path, mode: dict[str, str]  # noqa: F811
) -> None:
    """Before, a held PORT was a traceback after Socket Mode had connected (and a platform's probe then
    reached whoever held the port). Now it is one line and exit 2, with nothing connected, posted or polled."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))  # the bot listens on every interface: hold them all
        holder.listen()
        port = holder.getsockname()[1]
        env = _env(slack_standin, aws, tmp_path, SLACK_BOT_TOKEN="xoxb-1-good", ALERT_CHANNEL="C0ALERTS",
                   DIGEST_TIME="00:00", PORT=str(port), **mode)
        done = _run(env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"bucketwatch: configuration: PORT {port}: cannot listen on 0.0.0.0:{port} (Address already in use);"
        " free it or set PORT"
    )
    assert "Traceback" not in done.stderr
    assert slack_standin.calls == [] and aws.fake.requests() == []  # not even auth.test


def test_the_same_harness_sees_a_good_configuration_post_and_poll(
    slack_standin: SlackStandin, aws: FakeCloudTrailServer, tmp_path: Path  # noqa: F811
) -> None:
    """The control: with good settings, `run` does poll and post, so the empty records above mean something."""
    env = _env(slack_standin, aws, tmp_path, SLACK_BOT_TOKEN="xoxb-1-good", ALERT_CHANNEL="C0ALERTS",
               SLACK_SIGNING_SECRET="0123456789abcdef", DIGEST_TIME="00:00")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                            text=True)
    try:
        # Any Slack call (auth.test at start) and a poll: the harness records what the tests above find empty.
        # (Not the digest: it waits for DIGEST_TIME, whatever the clock says when the suite runs.)
        assert eventually(lambda: aws.fake.requests() and slack_standin.calls, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    # `run` says where the database is, once, at start.
    (said,) = [line for line in err.splitlines() if " database " in line]
    assert said.endswith(f"INFO bot.cli.run: database {tmp_path}/state/bw.db")


def test_doctor_shows_the_problems_run_refuses_to_start_on(
    slack_standin: SlackStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack_standin.url, "ALERT_CHANNEL": "general",
           "RESPONDERS": "alice", "DB_PATH": str(tmp_path / "bw.db")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    refused = [line.removeprefix("bucketwatch: configuration: ") for line in capsys.readouterr().err.splitlines()]
    settings, problems = all_problems(env)
    assert refused == problems and len(problems) == 4
    out = io.StringIO()
    slack = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    assert run_doctor(settings, slack=slack, aws=AwsClients(settings), out=out, problems=problems) == 1
    shown = out.getvalue()
    for problem in problems:
        name, _, detail = problem.partition(": ")
        assert f"  ✗ {name}: {detail}\n" in shown
    assert BOT_TOKEN not in shown and slack_standin.calls == []  # a user token is not sent to auth.test either


def test_a_refused_app_token_stops_socket_mode_before_anything_is_scheduled(
    slack_standin: SlackStandin, aws: FakeCloudTrailServer, tmp_path: Path  # noqa: F811
) -> None:
    slack_standin.valid_tokens = {"xoxb-1-good"}  # the app-level token was revoked
    env = _env(slack_standin, aws, tmp_path, SLACK_BOT_TOKEN="xoxb-1-good", SLACK_APP_TOKEN="xapp-1-A0-revoked",
               ALERT_CHANNEL="C0ALERTS", DIGEST_TIME="00:00")
    done = _run(env, tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "xapp-1-A0-revoked" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "bucketwatch run: Socket Mode connection refused (Slack apps.connections.open: invalid_auth)"
    )
    assert slack_standin.methods() == ["apps.connections.open"] and aws.fake.requests() == []
