"""Listener callbacks are plain functions: called here with a mocked WebClient and a context dict, no HTTP.

The integration tests (test_actions, test_commands, test_app_http) send signed requests instead.
"""

from __future__ import annotations

from pathlib import Path
from unittest.mock import Mock

from slack_sdk import WebClient

from bot.app import build_services
from bot.aws.clients import AwsClients
from bot.core.config import Settings
from bot.services import Services
from bot.slack import messages as msg
from bot.store.database import Store
from handlers import actions, commands


def mock_client() -> Mock:
    """A WebClient whose every method is a Mock (no HTTP), with the attributes the outbox copies."""
    real = WebClient(token="xoxb-unit")
    client = Mock(spec=real)
    for name in ("token", "base_url", "timeout", "ssl", "proxy", "headers", "logger"):
        setattr(client, name, getattr(real, name))
    return client


def services(tmp_path: Path, client: WebClient) -> Services:
    settings = Settings(slack_bot_token="xoxb-unit", alert_channel="C0ALERTS", responders=("U0RESP",),
                        db_path=tmp_path / "bw.db")
    return build_services(settings, client, Store(settings.db_path), AwsClients(settings))


def test_a_button_whose_value_names_nothing_is_audited_and_told_privately(tmp_path: Path) -> None:
    client = mock_client()
    s = services(tmp_path, client)
    ack = Mock()
    body = {"user": {"id": "U0SOMEONE"}, "channel": {"id": "C0ALERTS"}, "actions": [{"value": "not-an-id"}]}
    actions.on_fix(ack=ack, body=body, client=client, context={"services": s})  # type: ignore[arg-type]
    ack.assert_called_once_with()
    client.chat_postEphemeral.assert_called_once()
    assert client.chat_postEphemeral.call_args.kwargs["text"] == msg.STALE_BUTTON
    assert [(r.user, r.action, r.outcome) for r in s.audit.recent()] == [("U0SOMEONE", "fix", "stale_button")]


def test_a_fast_subcommand_answers_in_the_ack(tmp_path: Path) -> None:
    client = mock_client()
    s = services(tmp_path, client)
    ack, respond = Mock(), Mock()
    body = {"user_id": "U0SOMEONE", "channel_id": "C0ALERTS", "text": "alerts"}
    commands.on_command(ack=ack, body=body, respond=respond, context={"services": s})  # type: ignore[arg-type]
    assert ack.call_args.kwargs["text"] == msg.NO_OPEN_ALERTS
    respond.assert_not_called()
    assert client.method_calls == []  # a store read: no Slack call at all
