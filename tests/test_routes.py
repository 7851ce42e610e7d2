"""ROUTES and MIN_SEVERITY through the running app: a routed card keeps its thread, updates and buttons in
its channel, responders alone may fix there; a muted alert posts no card but is counted; bad values are
one clear line each; doctor checks the route channels."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from slack_sdk import WebClient

from bot.cli.doctor import check_settings, check_slack
from bot.cli.run import build_jobs
from bot.core.config import SEVERITIES as SETTING_SEVERITIES
from bot.core.config import Route, read_settings
from bot.core.problems import all_problems
from bot.core.record import Record
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox import LEASE, Outbox
from bot.store.database import Store
from detections.base import SEVERITIES
from standins.handoff import HandoffReceiver
from standins.requests import block_action
from tests.slack_requests import (
    ACCOUNT,
    BYSTANDER,
    RESPONDER,
    BotApp,
    bpa_record,
    encode_payload,
    eventually,
    make_settings,
    post,
    start_bot,
)
from tests.slack_standin import SlackStandin, slack_standin  # noqa: F401
from tests.test_alerts import ALL_OFF, bpa
from tests.test_outbox import Clock
from tests.wiring import alert_service

PROD, PAGERS = "C0PROD", "C0PAGERS"
POLICY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",'
          '"Resource":"arn:aws:s3:::%s/*"}]}')


@pytest.fixture
def routed(slack_standin: SlackStandin, tmp_path: Path) -> Iterator[BotApp]:  # noqa: F811
    with mock_aws():
        bot = start_bot(slack_standin, tmp_path, routes=(Route("severity", "critical", PAGERS),
                                                        Route("account", ACCOUNT, PROD)))
        try:
            yield bot
        finally:
            for stop in bot.stops:
                stop()


def _press(bot: BotApp, action: str, alert: Any, user: str) -> None:
    payload = block_action(action, str(alert.id), user=user, channel=alert.channel, message_ts=alert.ts,
                           response_url=bot.standin.response_url("press"))
    assert post(bot.url, encode_payload(payload)).status == 200


def _public_policy(bucket: str, event_id: str) -> Record:
    raw = bpa_record(bucket, event_id=event_id)
    raw.update(eventName="PutBucketPolicy", requestParameters={"bucketName": bucket, "bucketPolicy": POLICY % bucket})
    return Record(raw)


def test_a_routed_card_keeps_its_thread_updates_and_buttons_in_its_channel(routed: BotApp) -> None:
    alert = routed.open_alert("prod-exports")  # high, account 123456789012 → C0PROD
    assert alert.channel == PROD
    assert routed.standin.top_level("C0ALERTS") == [] and len(routed.standin.top_level(PROD)) == 1

    # Anyone in the card's channel may acknowledge; the card changes in place, in that channel.
    _press(routed, "ack", alert, BYSTANDER)
    assert eventually(lambda: routed.services.alerts.get(alert.id).status == "acknowledged")
    assert eventually(lambda: routed.standin.accepted("chat.update"))
    assert {c.params["channel"] for c in routed.standin.accepted("chat.update")} == {PROD}

    # Fix is still for responders only, in a routed channel as in ALERT_CHANNEL.
    _press(routed, "fix", alert, BYSTANDER)
    assert eventually(lambda: any(r.outcome == "refused" for r in routed.services.audit.for_alert(alert.id)))
    assert routed.services.alerts.get(alert.id).status == "acknowledged"
    _press(routed, "fix", alert, RESPONDER)
    assert eventually(lambda: routed.services.alerts.get(alert.id).status == "fixed")
    replies = eventually(lambda: len(routed.standin.replies(alert.ts)) >= 3 and routed.standin.replies(alert.ts))
    assert replies and {m.channel for m in replies} == {PROD}
    assert routed.standin.top_level("C0ALERTS") == []  # nothing about it leaked to the default channel


def test_the_first_matching_rule_wins_and_escalation_does_not_move_a_card(routed: BotApp) -> None:
    alert = routed.open_alert("shared-assets")  # high → the account rule
    routed.services.alerts.process([_public_policy("shared-assets", "ev-0002")])  # now critical
    routed.services.outbox.flush()
    assert routed.services.alerts.get(alert.id).severity == "critical"
    assert routed.standin.top_level(PAGERS) == []  # the card stays where it went; the news goes to its thread
    assert [m.channel for m in routed.standin.replies(alert.ts)] == [PROD]

    routed.bucket("fresh-leak")
    changes = routed.services.alerts.process([_public_policy("fresh-leak", "ev-0003")])  # critical at once
    routed.services.outbox.flush()
    assert routed.services.alerts.get(changes[0].alert_id).channel == PAGERS


def test_a_card_of_unknown_outcome_is_looked_for_in_its_routed_channel(store: Store,
                                                                       slack_standin: SlackStandin) -> None:  # noqa: F811
    clock = Clock()
    outbox = Outbox(store, WebClient(token="xoxb-t", base_url=slack_standin.url), "C0ALERTS", clock=clock)
    service = alert_service(store, clock=clock)
    service.notify = SlackNotifier(service, outbox, route=lambda account, severity: PROD)
    alert_id = service.process([bpa(ALL_OFF)])[0].alert_id
    slack_standin.fail_next("chat.postMessage", status=500)
    outbox.flush()  # Slack may have posted it: the next attempt looks first
    clock.now += LEASE + timedelta(minutes=5)
    assert outbox.flush() == 1
    assert [c.params["channel"] for c in slack_standin.accepted("conversations.history")] == [PROD]
    assert service.get(alert_id).channel == PROD and len(slack_standin.top_level(PROD)) == 1


def test_a_muted_alert_posts_no_card_but_is_stored_counted_and_shown_in_status(
    slack_standin: SlackStandin, tmp_path: Path  # noqa: F811
) -> None:
    with mock_aws():
        bot = start_bot(slack_standin, tmp_path, min_severity="critical")
        try:
            bot.bucket("quiet-bucket")
            changes = bot.services.alerts.process([Record(bpa_record("quiet-bucket"))])  # high < critical
            bot.services.outbox.flush()
            alert = bot.services.alerts.get(changes[0].alert_id)
            assert alert.status == "open" and alert.ts is None
            assert slack_standin.accepted("chat.postMessage") == [] and bot.services.outbox.pending() == []
            digest = bot.services.digest.build()
            assert "1 muted below MIN_SEVERITY" in digest.text and "1 muted below MIN_SEVERITY" in digest.plain
            status = bot.answer("status")
            assert "1 open alert muted below MIN_SEVERITY (critical)" in str(status)
            assert "quiet-bucket" in str(bot.answer("alerts"))

            bot.services.alerts.process([_public_policy("quiet-bucket", "ev-0009")])  # escalates to critical
            bot.services.outbox.flush()
            (card,) = slack_standin.top_level("C0ALERTS")
            assert "quiet-bucket" in card.text and bot.services.alerts.get(alert.id).ts == card.ts
        finally:
            for stop in bot.stops:
                stop()


def test_bad_routes_and_hand_off_settings_are_one_line_each() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "ALERT_CHANNEL": "C0ALERTS",
           "ROUTES": "severity:urgent=C0PAGERS,account:12345=C0PROD,account:111122223333=#prod,team=C0X",
           "MIN_SEVERITY": "loud", "WEBHOOK_URL": "https://hooks.example.com/x", "WEBHOOK_SECRET": "short",
           "PAGERDUTY_ROUTING_KEY": "not-a-key-secret-value"}
    _, problems = all_problems(env, dotenv=None)
    assert problems == [
        "ROUTES: 'severity:urgent=C0PAGERS': severity must be one of critical, high, medium, low",
        "ROUTES: 'account:12345=C0PROD': '12345' is not a 12-digit account id",
        "ROUTES: 'account:111122223333=#prod': '#prod' is not a channel id (C… or G…)",
        "ROUTES: 'team=C0X' is not account:<id>=<channel> or severity:<severity>=<channel>",
        "MIN_SEVERITY: expected one of critical, high, medium, low, got 'loud'",
        "PAGERDUTY_ROUTING_KEY: not an Events API v2 integration key (32 letters and digits; the value is not shown)",
        "WEBHOOK_SECRET: shorter than 16 characters; required with WEBHOOK_URL (the receiver verifies the"
        " signature with it)",
    ]
    settings, _ = read_settings({"ROUTES": " Severity:CRITICAL=C0PAGERS , account:111122223333=C0PROD"})
    assert settings.channel_for("111122223333", "critical") == "C0PAGERS"
    assert settings.channel_for("111122223333", "high") == "C0PROD"
    assert settings.channel_for("999999999999", "low") == ""  # ALERT_CHANNEL, unset here


def test_the_settings_severities_are_the_detections() -> None:
    assert SETTING_SEVERITIES == SEVERITIES  # bot.core cannot import detections: the two lists must agree


def test_doctor_says_what_is_configured_and_checks_each_route_channel(slack_standin: SlackStandin,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    slack_standin.channels[PAGERS] = {"id": PAGERS, "name": "pagers", "is_member": False}
    settings = make_settings(slack_standin, tmp_path, routes=(Route("severity", "critical", PAGERS),
                                                              Route("account", ACCOUNT, PROD)),
                             min_severity="medium", pagerduty_routing_key="K" * 32,
                             webhook_url="https://hooks.example.com/bw", webhook_secret="s" * 20)
    lines = [c.line() for c in check_settings(settings)]
    lines += [c.line() for c in check_slack(settings, WebClient(token="xoxb-t", base_url=slack_standin.url))]
    out = "\n".join(lines)
    assert f"✓ ROUTES: severity critical → {PAGERS}, account {ACCOUNT} → {PROD}" in out
    assert "✓ MIN_SEVERITY: alerts below medium are muted" in out
    assert "✓ PagerDuty: alerts handed off to events.pagerduty.com" in out
    assert "✓ webhook: signed alerts POSTed to hooks.example.com" in out
    assert f"✗ route channel {PAGERS}: #pagers ({PAGERS}): the bot is not a member; /invite it" in out
    assert f"✓ route channel {PROD}" in out
    assert "K" * 32 not in out and "s" * 20 not in out


def test_the_running_app_hands_off_and_status_shows_what_waits(slack_standin: SlackStandin,  # noqa: F811
                                                               tmp_path: Path) -> None:
    with mock_aws(), HandoffReceiver("webhook") as hook:
        bot = start_bot(slack_standin, tmp_path, webhook_url=hook.url, webhook_secret="s" * 20)
        try:
            assert "handoff" in {job.id for job in build_jobs(bot.settings, bot.services).get_jobs()}
            hook.fail_next(1, status=502)
            alert = bot.open_alert("handed-off")
            assert bot.services.handoff.flush() == 0
            assert "Hand-off to webhook: 1 waiting" in str(bot.answer("status"))
            bot.services.handoff.clock = lambda: datetime.now(UTC) + timedelta(minutes=1)
            bot.services.handoff.queue.clock = bot.services.handoff.clock
            assert bot.services.handoff.flush() == 1
            assert [b["alert"]["id"] for b in hook.bodies()] == [alert.id]
            assert "Hand-off to webhook: 0 waiting" in str(bot.answer("status"))
        finally:
            for stop in bot.stops:
                stop()
