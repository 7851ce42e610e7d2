"""Asking the actor: its settings, doctor's scope checks, and one DM across a SIGKILL (the outbox's metadata)."""

from __future__ import annotations

import io
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from slack_sdk import WebClient

from bot.app import create_app
from bot.aws.clients import AwsClients
from bot.cli.doctor import run_doctor
from bot.cli.run import build_jobs
from bot.core.clock import utcnow
from bot.core.config import ConfigError, Settings, load_settings
from bot.slack.outbox import LEASE, Outbox
from bot.store.database import Store
from tests.killed import kill_once_slack_took_it
from tests.slack_requests import make_settings
from tests.slack_standin import SlackStandin, slack_standin

FIXTURES = (slack_standin,)


@pytest.mark.parametrize(("env", "asks"), [
    ({}, False),
    ({"ACTOR_EMAIL_DOMAIN": "example.com"}, True),
    ({"ACTOR_MAP": "arn:aws:iam::111122223333:user/brett=U0BRETT"}, True),
    ({"ACTOR_EMAIL_DOMAIN": "example.com", "ASK_ACTOR": "false"}, False),
    ({"ASK_ACTOR": "true"}, True),
])
def test_ask_actor_is_on_by_default_when_a_domain_or_a_map_is_set(env: dict[str, str], asks: bool) -> None:
    assert load_settings(env).asks_actor is asks


def test_ask_settings_are_read_and_bad_values_named() -> None:
    settings = load_settings({"ACTOR_MAP": "brett=U0BRETT, ci,runner@x=W0CI", "ACTOR_EMAIL_DOMAIN": "@Example.COM",
                              "ASK_TIMEOUT": "1h", "UNATTENDED_ROLES": "ci-*,terraform"})
    assert settings.actor_map == ("brett=U0BRETT", "ci,runner@x=W0CI")  # IAM names may hold commas
    assert settings.actor_email_domain == "example.com" and settings.ask_timeout == timedelta(hours=1)
    assert settings.unattended_roles == ("ci-*", "terraform")
    assert load_settings({}).ask_timeout == timedelta(minutes=30)
    with pytest.raises(ConfigError) as bad:
        load_settings({"ACTOR_MAP": "brett", "ASK_TIMEOUT": "soon", "ACTOR_EMAIL_DOMAIN": "not a domain",
                       "ASK_ACTOR": "maybe"})
    assert [p.split(":")[0] for p in bad.value.problems] == ["ASK_ACTOR", "ACTOR_EMAIL_DOMAIN", "ACTOR_MAP",
                                                             "ASK_TIMEOUT"]


def test_doctor_checks_the_scopes_asking_needs(slack_standin: SlackStandin, tmp_path: Path) -> None:
    slack_standin.scopes = "chat:write,commands,channels:read"
    settings = make_settings(slack_standin, tmp_path, actor_email_domain="example.com")
    out = io.StringIO()
    with mock_aws():
        run_doctor(settings, slack=WebClient(token="xoxb-test", base_url=slack_standin.url),
                   aws=AwsClients(settings), out=out)
    lines = out.getvalue().splitlines()
    text = "\n".join(lines)
    # Missing, each says what it is needed for, and neither stops the bot (asking degrades; alerts still flow).
    for scope, needed in (("users:read.email", "users.lookupByEmail"), ("im:write", "conversations.open")):
        (line,) = [line for line in lines if f"scope {scope}:" in line]
        assert line.strip().startswith(f"✗ scope {scope}: missing — needed for {needed}"), line
        assert "(not essential" in line
    assert "✓ ASK_ACTOR: on: the person behind a change is asked by DM (email domain example.com" in text


SENDER = textwrap.dedent(
    """
    import sys
    from slack_sdk import WebClient
    from bot.slack.outbox import Outbox
    from bot.store.database import Store
    store = Store(sys.argv[1])
    outbox = Outbox(store, WebClient(token="xoxb-test", base_url=sys.argv[2]), "C0ALERTS")
    outbox.enqueue_dm("DU0BRETT", "Did you make this change?", [],
                      {"event_type": "bucketwatch_ask", "event_payload": {"alert_id": 7}})
    outbox.flush()
    """
)


def test_killed_after_slack_took_the_dm_it_is_not_sent_twice(slack_standin: SlackStandin, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    kill_once_slack_took_it(slack_standin, SENDER, db, "DU0BRETT")
    store = Store(db)
    assert store.db.execute("SELECT sent_at FROM outbox").fetchone()[0] is None  # outcome unknown
    outbox = Outbox(store, WebClient(token="xoxb-test", base_url=slack_standin.url), "C0ALERTS",
                    clock=lambda: utcnow() + LEASE + timedelta(seconds=1))
    assert outbox.flush() == 1
    (dm,) = slack_standin.top_level("DU0BRETT")
    assert len(slack_standin.calls_to("chat.postMessage")) == 1
    assert store.db.execute("SELECT ts FROM outbox").fetchone()[0] == dm.ts


def test_run_schedules_the_ask_job_only_when_asking_is_on(tmp_path: Path) -> None:
    def jobs(**overrides: Any) -> set[str]:
        settings = Settings(db_path=tmp_path / "bot.db", **overrides)
        _, services = create_app(settings, slack_client=WebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"))
        return {job.id for job in build_jobs(settings, services).get_jobs()}

    assert "ask" in jobs(actor_email_domain="example.com")
    assert "ask" not in jobs()
