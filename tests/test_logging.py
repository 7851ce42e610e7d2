"""Logs a team can live with: no credentials or request bodies even at DEBUG, the scheduler's per-run
lines only at DEBUG, a refused Slack call as one line with its error code, LOG_FORMAT=json one
object per line with `alert_id` where there is one."""

import io
import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from slack_sdk import WebClient

from bot.cli.common import configure_logging
from bot.core.config import Settings
from bot.services.digest import DigestService
from bot.services.scheduler import build_scheduler, guarded
from bot.slack.outbox import Outbox
from bot.store.database import Store
from tests.slack_requests import RESPONDER, BotApp, bot_app, eventually  # noqa: F401
from tests.slack_standin import SlackStandin, slack_standin  # noqa: F401
from tests.test_alerts import ALL_OFF, bpa
from tests.wiring import alert_service

TOKEN = "xoxb-never-log-me-42"


@pytest.fixture
def restore_levels() -> None:
    """conftest's _restore_logging undoes configure_logging after every test; named here for the reader."""


def test_debug_logging_keeps_assumed_role_credentials_out(
    restore_levels: None, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("DEBUG", stream=io.StringIO())
    caplog.set_level(logging.DEBUG)
    with mock_aws():
        sts = boto3.client("sts", region_name="us-east-1")
        role = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="bucketwatch")
        credentials = role["Credentials"]
        client = boto3.client(
            "s3",
            region_name="us-east-1",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        client.list_buckets()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logging.getLogger().level == logging.DEBUG  # the bot's own loggers do log at DEBUG
    for secret in (credentials["SecretAccessKey"], credentials["SessionToken"]):
        assert secret not in logged


def test_debug_logging_shows_no_request_body(restore_levels: None, bot_app: BotApp) -> None:  # noqa: F811
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    reply = bot_app.slash("who-changed needle-bucket-7f3a 3")
    assert reply.status == 200
    eventually(lambda: bot_app.responses())
    logged = out.getvalue()
    assert logging.getLogger("bot").isEnabledFor(logging.DEBUG)
    # With the libraries let down to DEBUG, slack-sdk and bolt would log the slash command's body here.
    assert "needle-bucket-7f3a" not in logged and "response_url" not in logged and RESPONDER not in logged


def _scheduler_lines(level: str) -> str:
    out = io.StringIO()
    configure_logging(level, stream=out)
    ran = threading.Event()
    sched = build_scheduler(Settings(), poll=ran.set, flush=lambda: None, digest_due=lambda: None,
                            expire=lambda: None)
    sched.start()
    try:
        assert ran.wait(10)
    finally:
        sched.shutdown(wait=True)
    return out.getvalue()


def test_scheduler_job_lines_only_at_debug(restore_levels: None) -> None:
    quiet = _scheduler_lines("INFO")
    assert "Running job" not in quiet and "executed successfully" not in quiet
    chatty = _scheduler_lines("DEBUG")
    assert "Running job" in chatty and "executed successfully" in chatty


def test_a_refused_slack_post_in_a_job_is_one_line_with_the_code(
    restore_levels: None, store: Store, slack_standin: SlackStandin  # noqa: F811
) -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    slack_standin.fail_next("chat.postMessage", error="not_in_channel")
    digest = DigestService(store, tz="UTC", digest_time="09:00", clock=lambda: datetime(2026, 11, 26, 9, tzinfo=UTC))
    job = guarded("digest", lambda: digest.send_if_due(WebClient(token=TOKEN, base_url=slack_standin.url), "C0X"))
    job()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith(
        "ERROR bot.services.scheduler: scheduled job digest failed: Slack chat.postMessage: not_in_channel;"
        " it runs again at its next time"
    )
    assert slack_standin.calls_to("chat.postMessage")  # the post was tried


def test_a_job_that_hits_a_bug_keeps_its_traceback(restore_levels: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)

    def broken() -> None:
        raise KeyError("render bug")

    guarded("outbox", broken)()
    assert "Traceback" in out.getvalue() and "KeyError: 'render bug'" in out.getvalue()


def test_json_lines_carry_the_alert_id_and_no_token(
    restore_levels: None, store: Store, slack_standin: SlackStandin  # noqa: F811
) -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    outbox = Outbox(store, WebClient(token=TOKEN, base_url=slack_standin.url), "C0ALERTS")
    alert_id = alert_service(store, outbox=outbox).process([bpa(ALL_OFF)])[0].alert_id
    slack_standin.fail_next("chat.postMessage", error="channel_not_found")
    logging.getLogger("bot.test").warning("a token %s pasted in a message", TOKEN)
    outbox.flush()
    records: list[dict[str, Any]] = [json.loads(line) for line in out.getvalue().splitlines()]
    refused = [r for r in records if "channel_not_found" in r["message"]]
    assert len(refused) == 1
    assert refused[0]["alert_id"] == alert_id and refused[0]["level"] == "WARNING"
    assert refused[0]["logger"] == "bot.slack.outbox" and datetime.fromisoformat(refused[0]["time"])
    assert TOKEN not in out.getvalue() and "xoxb-…" in out.getvalue()  # masked, whoever logs it


def test_a_listener_refused_by_slack_logs_one_line(bot_app: BotApp, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    def refused(*args: Any, **kwargs: Any) -> Any:
        return bot_app.services.slack.chat_postMessage(channel="C0ALERTS", text="x")

    bot_app.standin.fail_next("chat.postMessage", error="not_in_channel")
    bot_app.services.alerts.get = refused
    bot_app.press("ack", "1")
    assert eventually(lambda: bot_app.standin.accepted("chat.postEphemeral"))  # the presser is told briefly
    (failed,) = eventually(lambda: [r for r in caplog.records if "listener failed" in r.getMessage()])
    assert failed.getMessage() == "listener failed: Slack chat.postMessage: not_in_channel"
    assert failed.exc_info is None
