"""Asking the actor (issue 13) through the running app: the DM, "not me", "yes, intended" and approval,
strangers refused, robots skipped, people who cannot be asked named on the card, the reminder on silence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from bot.core.clock import utcnow
from bot.core.record import Record
from bot.slack.outbox import MAX_ATTEMPTS
from standins.requests import block_action
from tests.slack_requests import (
    BYSTANDER,
    RESPONDER,
    BotApp,
    bpa_record,
    encode_payload,
    eventually,
    post,
    start_bot,
    view_submission,
)
from tests.slack_standin import SlackStandin, slack_standin

FIXTURES = (slack_standin,)
ACTOR, GROUP, ON_CALL = "U0MALLORY", "S0RESP", "U0ONCALL"
DM = f"D{ACTOR}"


def _start(standin: SlackStandin, tmp_path: Path, **overrides: Any) -> BotApp:
    standin.emails["mallory@example.com"] = ACTOR
    standin.usergroups[GROUP] = [ON_CALL]
    settings: dict[str, Any] = {"actor_email_domain": "example.com", "responders": (RESPONDER, GROUP),
                                "unattended_roles": ("ci-*",), "remediation_role": "bucketwatch-fixer"}
    return start_bot(standin, tmp_path, **{**settings, **overrides})


@pytest.fixture
def ask_bot(slack_standin: SlackStandin, tmp_path: Path) -> Iterator[BotApp]:
    with mock_aws():
        bot = _start(slack_standin, tmp_path)
        try:
            yield bot
        finally:
            for stop in bot.stops:
                stop()


def _open(bot: BotApp, bucket: str, identity: dict[str, Any] | None = None) -> Any:
    """An alert on `bucket` by mallory (or `identity`), its card posted and the ask job run once."""
    bot.bucket(bucket)
    record = bpa_record(bucket, event_id=f"ev-{bucket}")
    if identity is not None:
        record["userIdentity"] = identity
    changes = bot.services.alerts.process([Record(record)])
    bot.services.outbox.flush()
    bot.services.ask.run()
    return bot.services.alerts.get(changes[0].alert_id)


def _card(bot: BotApp, alert: Any) -> str:
    message = bot.standin.message(alert.ts)
    return json.dumps(message.blocks if message else [], ensure_ascii=False)


def _thread(bot: BotApp, alert: Any) -> str:
    return json.dumps([(m.text, m.blocks) for m in bot.standin.replies(alert.ts)], ensure_ascii=False)


def _dm_press(bot: BotApp, action_id: str, value: str, user: str = ACTOR, channel: str = DM) -> None:
    payload = block_action(action_id, value, user=user, channel=channel, response_url=bot.standin.response_url("dm"))
    assert post(bot.url, encode_payload(payload)).status == 200


def _told(bot: BotApp, user: str) -> list[str]:
    return [str(c.params.get("text")) for c in bot.standin.accepted("chat.postEphemeral") if c.params["user"] == user]


def _role(role: str, session: str) -> dict[str, Any]:
    arn = f"arn:aws:sts::123456789012:assumed-role/{role}/{session}"
    issuer = {"type": "Role", "arn": f"arn:aws:iam::123456789012:role/{role}", "userName": role}
    return {"type": "AssumedRole", "arn": arn, "principalId": f"AROAX:{session}", "accountId": "123456789012",
            "sessionContext": {"sessionIssuer": issuer, "attributes": {"mfaAuthenticated": "false"}}}


def test_the_actor_is_found_by_email_and_asked_by_dm_with_both_buttons(ask_bot: BotApp) -> None:
    alert = _open(ask_bot, "mallorys-bucket")
    assert [c.params["email"] for c in ask_bot.standin.calls_to("users.lookupByEmail")] == ["mallory@example.com"]
    assert ask_bot.standin.accepted("conversations.open")[0].params["users"] == ACTOR
    (dm,) = ask_bot.standin.top_level(DM)
    shown = json.dumps(dm.blocks)
    assert "ask_intended" in shown and "ask_not_me" in shown and "Yes, intended" in shown and "Not me" in shown
    line = dm.blocks[0]["text"]["text"]  # bucket, what changed, when, from where, public now or not
    assert "`mallorys-bucket`" in line and "BlockPublicAcls" in line and "<!date^" in line
    assert "198.51.100.2" in line and "public now" in line
    assert f"Asked <@{ACTOR}> by DM" in _card(ask_bot, alert)
    ask_bot.services.ask.run()  # the job again: nobody is asked twice
    assert len(ask_bot.standin.top_level(DM)) == 1


def test_not_me_raises_the_severity_mentions_the_responders_and_marks_the_card(ask_bot: BotApp) -> None:
    alert = _open(ask_bot, "denied-bucket")
    assert alert.severity == "high"
    _dm_press(ask_bot, "ask_not_me", str(alert.id))
    assert eventually(lambda: ask_bot.services.alerts.get(alert.id).severity == "critical")
    assert eventually(lambda: "Actor denies" in _card(ask_bot, alert))
    thread = eventually(lambda: "not them" in _thread(ask_bot, alert) and _thread(ask_bot, alert))
    assert f"<!subteam^{GROUP}>" in thread
    (dm,) = ask_bot.standin.top_level(DM)
    assert eventually(lambda: "You said *not me*" in json.dumps(ask_bot.standin.message(dm.ts).blocks))
    assert "ask_not_me" not in json.dumps(ask_bot.standin.message(dm.ts).blocks)  # the buttons are gone
    rows = [(r.user, r.action, r.outcome) for r in ask_bot.services.audit.for_alert(alert.id)]
    assert (ACTOR, "not_me", "answered") in rows
    _dm_press(ask_bot, "ask_not_me", str(alert.id))  # a second press changes nothing
    assert eventually(lambda: ALREADY in " ".join(_told(ask_bot, ACTOR)))
    assert ask_bot.services.alerts.get(alert.id).severity == "critical"


ALREADY = "You already answered"


def test_yes_intended_is_a_requested_exception_until_a_responder_approves_it(ask_bot: BotApp) -> None:
    alert = _open(ask_bot, "intended-bucket")
    _dm_press(ask_bot, "ask_intended", str(alert.id))
    (opened,) = ask_bot.standin.wait_for("views.open")
    assert opened.params["view"]["callback_id"] == "ask_intended_modal"
    values = {"reason": {"reason": {"type": "plain_text_input", "value": "Public <!channel> docs site"}},
              "expiry": {"expiry": {"type": "plain_text_input", "value": "14d"}}}
    submit = view_submission("ask_intended_modal", values, str(alert.id), user=ACTOR)
    assert post(ask_bot.url, encode_payload(submit)).status == 200
    card = eventually(lambda: "awaiting a responder" in _card(ask_bot, alert) and _card(ask_bot, alert))
    assert "yes, intended" in card and "14 days" in card and "&lt;!channel&gt;" in card
    assert ask_bot.services.alerts.get(alert.id).status == "open"  # not accepted until approved
    thread = eventually(lambda: "approve_exception" in _thread(ask_bot, alert) and _thread(ask_bot, alert))
    request_id = ask_bot.services.ask.requests.for_alert(alert.id).id
    assert f'"value": "{request_id}"' in thread

    # mallory, not a responder, can neither approve her own request nor fix her own alert.
    ask_bot.press("approve_exception", str(request_id), user=ACTOR)
    ask_bot.press("fix", str(alert.id), user=ACTOR)
    told = eventually(lambda: len(_told(ask_bot, ACTOR)) >= 2 and _told(ask_bot, ACTOR))
    assert any("You asked for this exception" in t for t in told) and any("Only responders" in t for t in told)
    assert ask_bot.services.alerts.get(alert.id).status == "open"

    ask_bot.press("approve_exception", str(request_id), user=RESPONDER)
    assert eventually(lambda: ask_bot.services.alerts.get(alert.id).status == "accepted")
    (row,) = ask_bot.services.exceptions.list_active()
    assert row.owner == ACTOR and row.bucket == "intended-bucket"
    assert timedelta(days=13) < row.expires_at - utcnow() <= timedelta(days=14)
    assert eventually(lambda: f"approved by <@{RESPONDER}>" in _card(ask_bot, alert))
    actions = [(r.user, r.action, r.outcome) for r in ask_bot.services.audit.for_alert(alert.id)]
    assert (ACTOR, "intended", "requested") in actions and (ACTOR, "approve", "refused") in actions
    assert (RESPONDER, "approve", "accepted") in actions


def test_a_stranger_pressing_the_actors_buttons_is_refused(ask_bot: BotApp) -> None:
    alert = _open(ask_bot, "strangers-bucket")
    _dm_press(ask_bot, "ask_not_me", str(alert.id), user=BYSTANDER)
    _dm_press(ask_bot, "ask_intended", str(alert.id), user=BYSTANDER)
    told = eventually(lambda: len(_told(ask_bot, BYSTANDER)) >= 2 and _told(ask_bot, BYSTANDER))
    assert all("Only the person who made this change" in t for t in told)
    assert not ask_bot.standin.calls_to("views.open")
    assert ask_bot.services.alerts.get(alert.id).severity == "high"
    assert ask_bot.services.ask.asks.get(alert.id).answer == ""
    rows = [(r.user, r.action, r.outcome) for r in ask_bot.services.audit.for_alert(alert.id)]
    assert rows == [(BYSTANDER, "not_me", "refused"), (BYSTANDER, "intended", "refused")]
    assert eventually(lambda: "only the person asked may answer" in _thread(ask_bot, alert))


def test_no_answer_within_ask_timeout_tells_the_thread_and_mentions_the_responders(ask_bot: BotApp) -> None:
    alert = _open(ask_bot, "silent-bucket")
    ask = ask_bot.services.ask
    sent = ask.asks.get(alert.id).asked_at
    assert sent is not None
    ask.clock = lambda: sent + timedelta(minutes=29)
    assert ask.escalate_due() == 0
    ask.clock = lambda: sent + timedelta(minutes=30, seconds=1)
    assert ask.escalate_due() == 1
    ask_bot.services.outbox.flush()
    thread = _thread(ask_bot, alert)
    assert f"No answer from <@{ACTOR}> in 30 minutes" in thread and f"<!subteam^{GROUP}>" in thread
    assert "responders told" in _card(ask_bot, alert)
    assert ask.escalate_due() == 0  # said once


def test_a_dm_slack_refuses_is_said_on_the_card_and_the_responders_are_told(ask_bot: BotApp) -> None:
    """Before, a DM that could not be posted left the card saying "Asking … by DM…" while the outbox
    retried it for hours, and ASK_TIMEOUT never fired (nothing was sent to time out)."""
    ask_bot.bucket("locked-dm-bucket")
    changes = ask_bot.services.alerts.process([Record(bpa_record("locked-dm-bucket", event_id="ev-locked"))])
    ask_bot.services.outbox.flush()  # the card
    ask_bot.standin.fail_next("chat.postMessage", status=200, error="restricted_action")  # the DM
    ask_bot.services.ask.run()
    alert = ask_bot.services.alerts.get(changes[0].alert_id)
    card = _card(ask_bot, alert)
    assert "Could not ask the actor: the DM to mallory" in card and "restricted_action" in card
    assert "Asking" not in card
    thread = _thread(ask_bot, alert)
    assert "could not be delivered" in thread and f"<!subteam^{GROUP}>" in thread
    assert not ask_bot.standin.top_level(DM)
    ask_bot.services.outbox.retry_failed()
    ask_bot.services.ask.run()  # withdrawn: no DM arrives late, and the thread is told once
    assert not ask_bot.standin.top_level(DM)
    assert sum("could not be delivered" in str(m.text) for m in ask_bot.standin.replies(alert.ts)) == 1


def test_a_dm_the_outbox_gave_up_on_is_said_on_the_card(ask_bot: BotApp) -> None:
    ask_bot.bucket("flaky-dm-bucket")
    changes = ask_bot.services.alerts.process([Record(bpa_record("flaky-dm-bucket", event_id="ev-flaky"))])
    outbox = ask_bot.services.outbox
    outbox.flush()  # the card
    ask_bot.standin.fail_next("chat.postMessage", times=MAX_ATTEMPTS, status=503)  # every try of the DM
    ask = ask_bot.services.ask
    ask.run()
    alert = ask_bot.services.alerts.get(changes[0].alert_id)
    assert "Asking <@" in _card(ask_bot, alert) and ask.settle_undelivered() == 0  # still being tried
    start = utcnow()
    for day in range(1, MAX_ATTEMPTS + 1):  # the back-off's hours, a day at a time
        outbox.clock = lambda day=day: start + timedelta(days=day)
        outbox.flush()
    assert outbox.failed() == 1 and not ask_bot.standin.top_level(DM)
    assert ask.settle_undelivered() == 1
    outbox.flush()
    assert "could not be delivered (Slack answered" in _card(ask_bot, alert)
    assert ask.settle_undelivered() == 0 and outbox.failed() == 0  # withdrawn, not left as a dead letter


@pytest.mark.parametrize(("identity", "why"), [
    ({"type": "AWSService", "invokedBy": "backup.amazonaws.com"}, "an AWS service made this change"),
    (_role("bucketwatch-fixer", "U0RESP"), "the bot's own role bucketwatch-fixer"),
    (_role("ci-deployer", "build-4411"), "ci-deployer is an unattended role"),
])
def test_robots_are_not_asked_and_the_card_says_why(ask_bot: BotApp, identity: dict[str, Any], why: str) -> None:
    alert = _open(ask_bot, "robots-bucket", identity)
    assert not ask_bot.standin.calls_to("users.lookupByEmail") and not ask_bot.standin.calls_to("conversations.open")
    card = _card(ask_bot, alert)
    assert "No person to ask" in card and why in card


def test_who_cannot_be_found_or_dmed_is_said_on_the_card_at_once(ask_bot: BotApp) -> None:
    unknown = _open(ask_bot, "unknown-bucket", _role("DataEngineer", "zoe@example.com"))
    assert "no Slack user has the email zoe@example.com" in _card(ask_bot, unknown)
    ask_bot.standin.emails["robo@example.com"] = "U0ROBO"
    ask_bot.standin.users["U0ROBO"] = {"id": "U0ROBO", "is_bot": False}
    ask_bot.standin.bots.add("U0ROBO")
    bot_user = _open(ask_bot, "bot-user-bucket", _role("DataEngineer", "robo@example.com"))
    assert "bots cannot be sent a DM" in _card(ask_bot, bot_user)
    assert not ask_bot.standin.top_level("DU0ROBO")


def test_no_email_is_said_on_the_card_without_asking_slack(slack_standin: SlackStandin, tmp_path: Path) -> None:
    with mock_aws():
        bot = _start(slack_standin, tmp_path, actor_email_domain="", ask_actor=True)
        try:
            alert = _open(bot, "nameless-bucket")
            assert "no email for mallory" in _card(bot, alert)
            assert not slack_standin.calls_to("users.lookupByEmail")
        finally:
            for stop in bot.stops:
                stop()


def test_actor_map_wins_over_the_email(slack_standin: SlackStandin, tmp_path: Path) -> None:
    with mock_aws():
        bot = _start(slack_standin, tmp_path, actor_map=("mallory=U0MAPPED",))
        try:
            _open(bot, "mapped-bucket")
            assert not slack_standin.calls_to("users.lookupByEmail")
            assert slack_standin.accepted("conversations.open")[0].params["users"] == "U0MAPPED"
            assert len(slack_standin.top_level("DU0MAPPED")) == 1
        finally:
            for stop in bot.stops:
                stop()


def test_without_a_domain_or_a_map_nobody_is_asked(slack_standin: SlackStandin, tmp_path: Path) -> None:
    with mock_aws():
        bot = _start(slack_standin, tmp_path, actor_email_domain="")
        try:
            alert = _open(bot, "quiet-bucket")
            assert "to ask" not in _card(bot, alert) and not slack_standin.calls_to("conversations.open")
        finally:
            for stop in bot.stops:
                stop()


def test_the_digest_shows_asked_answered_and_time_to_answer(ask_bot: BotApp) -> None:
    answered = _open(ask_bot, "answered-bucket")
    _open(ask_bot, "unanswered-bucket")
    _open(ask_bot, "service-bucket", {"type": "AWSService", "invokedBy": "backup.amazonaws.com"})
    _dm_press(ask_bot, "ask_not_me", str(answered.id))
    assert eventually(lambda: ask_bot.services.ask.asks.get(answered.id).answer == "not_me")
    plain = ask_bot.services.digest.build().plain
    assert "Asking the actor" in plain
    assert "Asked 2, answered 1 (yes, intended 0; not me 1), no answer yet 1" in plain
    assert "Time to answer: median" in plain and "Not asked: 1 robot(s)" in plain


def test_a_question_left_unanswered_when_the_alert_closes_is_said_to_be_moot(ask_bot: BotApp) -> None:
    """Before, a resolved card still said "Asked … by DM; no answer yet", as if an answer were awaited."""
    alert = _open(ask_bot, "closed-quickly")
    assert "no answer yet" in _card(ask_bot, alert)
    ask_bot.services.alerts.process([Record(bpa_record("closed-quickly", event_id="ev-closed-quickly-fix", off=()))])
    ask_bot.services.outbox.flush()
    card = _card(ask_bot, alert)
    assert ask_bot.services.alerts.get(alert.id).status == "resolved"
    assert "no answer, and none needed now: the alert is resolved" in card and "no answer yet" not in card
