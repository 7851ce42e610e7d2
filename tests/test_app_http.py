"""The app over real HTTP: signed requests in, the Slack stand-in recording what goes out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from handlers.commands import SUBCOMMANDS
from tests.ports import unused_port
from tests.slack_requests import (
    BYSTANDER,
    RESPONDER,
    SECRET,
    BotApp,
    bot_app,
    drain_listeners,
    encode_form,
    eventually,
    post,
    sign,
    slash_body,
)
from tests.slack_standin import SlackStandin, slack_standin

# pytest fixtures used by parameter name in this module
FIXTURES = (bot_app, slack_standin)


def test_help_lists_every_subcommand(bot_app: BotApp) -> None:
    reply = bot_app.slash("help")
    assert reply.status == 200
    text = reply.json()["text"]
    for name in SUBCOMMANDS:
        assert f"/bucketwatch {name}" in text


def test_unknown_and_malformed_input_get_help_not_an_error(bot_app: BotApp) -> None:
    for text in ("frobnicate now", "", "ack twelve", "who-changed", "allow b 30d", "who-changed b;rm 3"):
        answer = bot_app.answer(text)["text"]
        assert "who-changed" in answer and "allowlist" in answer, text
        assert "Traceback" not in answer and "Error" not in answer


def test_ack_button_updates_the_card_in_place(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("ack-me")
    card = bot_app.standin.message(alert.ts)
    reply = bot_app.press("ack", str(alert.id), user=BYSTANDER)
    assert reply.status == 200
    bot_app.standin.wait_for("chat.update")
    update = bot_app.standin.accepted("chat.update")[-1].params
    assert update["ts"] == alert.ts and update["channel"] == "C0ALERTS"
    assert f"Acknowledged* by <@{BYSTANDER}>" in str(update["blocks"])
    assert bot_app.services.alerts.get(alert.id).status == "acknowledged"
    # One card, edited: no second top-level message; the press is in the thread and the audit.
    assert len(bot_app.standin.top_level("C0ALERTS")) == 1 and card is not None
    assert eventually(lambda: any(BYSTANDER in m.text for m in bot_app.standin.replies(alert.ts)))
    assert [(r.user, r.action, r.outcome) for r in bot_app.services.audit.for_alert(alert.id)] == [
        (BYSTANDER, "ack", "acknowledged")
    ]


def _ack_request(bot_app: BotApp, alert_id: int) -> str:
    fields = slash_body(f"ack {alert_id}", user=RESPONDER)
    fields["response_url"] = bot_app.standin.response_url("slash")
    return encode_form(fields)


def test_forged_unsigned_and_stale_requests_get_401_and_run_nothing(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("guarded")
    body = _ack_request(bot_app, alert.id)
    bot_app.standin.clear()
    forged = post(bot_app.url, body, secret="not-the-secret")
    unsigned = post(bot_app.url, body, signed=False)
    stale = post(bot_app.url, body, timestamp=int(time.time()) - 6 * 60)
    tampered_headers = sign(body)
    tampered = post(bot_app.url, body.replace("ack", "fix"), signed=False, headers=tampered_headers)
    assert [forged.status, unsigned.status, stale.status, tampered.status] == [401, 401, 401, 401]
    drain_listeners(bot_app.app)  # had any of them reached a listener, it has now finished
    assert bot_app.services.alerts.get(alert.id).status == "open"
    assert bot_app.services.audit.recent() == []
    assert bot_app.standin.calls == []


def test_other_paths_are_not_served(bot_app: BotApp) -> None:
    reply = post(bot_app.url.replace("/slack/events", "/admin"), "x=1")
    assert reply.status == 404


def _event(bot: BotApp, event: dict) -> int:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0TEST",
            "api_app_id": "A0TEST",
            "event": event,
            "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()),
        }
    )
    return post(bot.url, body, headers={"Content-Type": "application/json"}).status


def test_app_home_shows_open_alerts_with_buttons_and_refreshes(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("homely")
    assert _event(bot_app, {"type": "app_home_opened", "user": BYSTANDER, "tab": "home", "channel": "D0"}) == 200
    published = bot_app.standin.wait_for("views.publish")[0].params
    assert published["user_id"] == BYSTANDER and published["view"]["type"] == "home"
    view = json.dumps(published["view"])
    assert "homely" in view and '"action_id": "fix"' in view and '"action_id": "ack"' in view
    assert "lookup:123456789012:us-east-1" in view
    bot_app.press("ack", str(alert.id), user=BYSTANDER)
    again = bot_app.standin.wait_for("views.publish", count=2)[-1].params
    assert "Acknowledged" in json.dumps(again["view"])


def test_a_failing_listener_tells_the_user_briefly_and_logs(bot_app: BotApp, caplog: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    bot_app.services.alerts.open_alerts = broken
    bot_app.services.alerts.count_open = broken
    bot_app.services.alerts.get = broken
    assert "went wrong" in bot_app.answer("alerts")["text"]
    bot_app.press("ack", "1", user=BYSTANDER)
    told = eventually(lambda: bot_app.standin.accepted("chat.postEphemeral"))
    assert "went wrong" in told[0].params["text"] and "secret internals" not in json.dumps(told[0].params)
    assert eventually(lambda: "secret internals" in caplog.text)



def test_python_m_bot_run_serves_signed_requests_and_stops_on_sigterm(
    slack_standin: SlackStandin, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack_standin.url,
        "ALERT_CHANNEL": "C0ALERTS",
        "DB_PATH": str(tmp_path / "run.db"),
        "DIGEST_TIME": "23:59",
        # The checkout's packages, whatever an older editable install recorded.
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    body = encode_form(slash_body("help"))
    for attempt in range(3):
        # PORT must be a real port: a free one is picked and handed over. Another test process
        # (pytest-xdist) may bind it first; then the bot exits saying so, and another port is tried.
        port = unused_port()
        url = f"http://127.0.0.1:{port}/slack/events"
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env={**env, "PORT": str(port)},
            stderr=subprocess.PIPE, text=True,
        )

        def up() -> Any:
            if proc.poll() is not None:
                return "exited"
            try:
                return post(url, body)
            except OSError:
                return None

        try:
            reply = eventually(up, timeout=20)
            if reply != "exited":
                assert reply is not None and reply.status == 200 and "allowlist" in reply.json()["text"]
                assert post(url, body, signed=False).status == 401
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        if reply == "exited" and "Address already in use" in err and attempt < 2:
            continue
        break
    assert reply != "exited", f"python -m bot run exited at start: {err}"
    assert proc.returncode == 0, err
    assert "xoxb-run" not in err and SECRET not in err
