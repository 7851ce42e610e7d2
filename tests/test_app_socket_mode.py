"""The same slash command and button through Socket Mode, against a local WebSocket stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from bot.app import create_app
from bot.slack.transport import socket_mode_handler
from standins.socket_mode import SocketModeStandin
from tests.slack_requests import (
    BYSTANDER,
    HOSTILE_AGENT,
    RESPONDER,
    BotApp,
    block_action,
    drain_listeners,
    eventually,
    make_settings,
    slash_body,
    view_submission,
)
from tests.slack_standin import SlackStandin, slack_standin

# pytest fixtures used by parameter name in this module
FIXTURES = (slack_standin,)


@pytest.fixture
def socket_bot(slack_standin: SlackStandin, tmp_path: Path) -> Iterator[tuple[BotApp, SocketModeStandin]]:
    """The app connected over Socket Mode; no HTTP server and no signing secret."""
    socket = SocketModeStandin().start()
    slack_standin.respond("apps.connections.open", {"ok": True, "url": socket.url})
    with mock_aws():
        settings = make_settings(slack_standin, tmp_path, slack_app_token="xapp-1-test", slack_signing_secret="")
        app, services = create_app(settings)
        handler = socket_mode_handler(app, settings)
        handler.connect()
        try:
            yield BotApp(settings, app, services, slack_standin, url=""), socket
        finally:
            # Server side first: the client's blocking read then returns at once instead of timing out.
            handler.client.auto_reconnect_enabled = False
            socket.stop()
            # Let the client's reader finish its own disconnect first: slack-sdk's disconnect() checks the
            # socket outside its locks, so closing from here at the same moment can raise in a thread.
            eventually(lambda: not handler.client.is_connected())
            handler.close()
            drain_listeners(app)


def test_slash_command_is_answered_in_the_envelope_ack(socket_bot: tuple[BotApp, SocketModeStandin]) -> None:
    bot, socket = socket_bot
    opened = bot.standin.calls_to("apps.connections.open")
    assert opened and opened[0].token == "xapp-1-test"
    envelope = socket.send("slash_commands", slash_body("nonsense", command=bot.settings.slash_command))
    ack = socket.wait_ack(envelope)
    text = ack["payload"]["text"]
    assert "I did not understand" in text and "who-changed" in text and "allowlist" in text


def test_button_press_updates_the_card(socket_bot: tuple[BotApp, SocketModeStandin]) -> None:
    bot, socket = socket_bot
    alert = bot.open_alert("socket-card", agent=HOSTILE_AGENT)
    envelope = socket.send("interactive", block_action("ack", str(alert.id), user=BYSTANDER, message_ts=alert.ts))
    socket.wait_ack(envelope)
    bot.standin.wait_for("chat.update")
    assert eventually(lambda: bot.services.alerts.get(alert.id).status == "acknowledged")
    card = bot.standin.message(alert.ts)
    assert eventually(lambda: f"<@{BYSTANDER}>" in json.dumps(card.blocks))
    sent = json.dumps([c.params for c in bot.standin.calls])
    assert "<!channel>" not in sent and "&lt;!channel&gt;" in sent


def test_allow_modal_is_opened_and_submitted_over_the_socket(socket_bot: tuple[BotApp, SocketModeStandin]) -> None:
    bot, socket = socket_bot
    alert = bot.open_alert("socket-site")
    socket.wait_ack(socket.send("interactive", block_action("allow", str(alert.id), user=RESPONDER)))
    [opened] = bot.standin.wait_for("views.open")
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "allow_modal" and view["private_metadata"] == str(alert.id)

    def submit(reason: str, expiry: str, user: str = RESPONDER) -> dict[str, Any]:
        values = {
            "reason": {"reason": {"type": "plain_text_input", "value": reason}},
            "expiry": {"expiry": {"type": "plain_text_input", "value": expiry}},
        }
        payload = view_submission(view["callback_id"], values, view["private_metadata"], user=user)
        return socket.wait_ack(socket.send("interactive", payload))

    # Invalid input: the errors travel back in the envelope's ack, under the fields, and nothing changes.
    refused = submit("", "soonish")
    assert refused["payload"]["response_action"] == "errors"
    assert set(refused["payload"]["errors"]) == {"reason", "expiry"}
    assert bot.services.alerts.get(alert.id).status == "open"
    # Someone outside RESPONDERS who kept the modal open: the modal closes, the refusal is a direct message.
    assert not submit("looks fine", "7d", user=BYSTANDER).get("payload")
    assert eventually(lambda: any(
        c.params.get("channel") == BYSTANDER and "Only responders" in str(c.params.get("text"))
        for c in bot.standin.calls_to("chat.postMessage")
    ))
    assert bot.services.exceptions.list_active() == []
    # A valid submission: an empty ack closes the modal; the exception exists and the card says accepted.
    accepted = submit("<!channel> public website", "2w")
    assert not accepted.get("payload")
    assert eventually(lambda: bot.services.alerts.get(alert.id).status == "accepted")
    [row] = bot.services.exceptions.list_active()
    assert (row.bucket, row.owner, row.reason) == ("socket-site", RESPONDER, "<!channel> public website")
    assert eventually(lambda: "Accepted as expected" in json.dumps(bot.standin.message(alert.ts).blocks))
    assert "<!channel>" not in json.dumps([c.params for c in bot.standin.calls_to("chat.update")])
