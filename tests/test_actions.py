"""Buttons through the running app: fix with consent and undo, refusals, races, dry run, the modal."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from moto import mock_aws

from bot.core.record import Record
from tests.slack_requests import (
    ACCOUNT,
    BYSTANDER,
    HOSTILE_AGENT,
    RESPONDER,
    BotApp,
    bot_app,
    bpa_record,
    encode_payload,
    eventually,
    post,
    start_bot,
    view_submission,
)
from tests.slack_standin import SlackStandin, slack_standin

# pytest fixtures used by parameter name in this module
FIXTURES = (bot_app, slack_standin)

ALL_ON = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)


def _ephemerals(bot: BotApp, user: str) -> list[str]:
    return [
        str(c.params.get("text")) for c in bot.standin.accepted("chat.postEphemeral") if c.params.get("user") == user
    ]


def _thread(bot: BotApp, ts: str) -> str:
    return json.dumps([(m.text, m.blocks) for m in bot.standin.replies(ts)], ensure_ascii=False)


def _count_puts(bot: BotApp) -> list[int]:
    puts = [0]
    client = bot.services.aws.client("s3", ACCOUNT, "us-east-1", write=True)

    def count(**_: Any) -> None:
        puts[0] += 1

    client.meta.events.register("before-call.s3.PutPublicAccessBlock", count)
    return puts


def test_fix_by_a_non_responder_is_refused_privately_and_audited(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("not-yours")
    before = bot_app.bpa("not-yours")
    assert bot_app.press("fix", str(alert.id), user=BYSTANDER).status == 200
    told = eventually(lambda: _ephemerals(bot_app, BYSTANDER))
    assert told and "Only responders" in told[0] and f"<@{RESPONDER}>" in told[0]
    assert bot_app.bpa("not-yours") == before
    assert eventually(lambda: "refused" in _thread(bot_app, alert.ts))
    rows = bot_app.services.audit.for_alert(alert.id)
    assert [(r.user, r.action, r.outcome) for r in rows] == [(BYSTANDER, "fix", "refused")]
    assert bot_app.services.alerts.get(alert.id).status == "open"


def test_fix_turns_on_only_the_weakened_flags_then_undo_restores_the_snapshot(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("leaky", off=("BlockPublicAcls", "BlockPublicPolicy"))
    snapshot = bot_app.bpa("leaky")
    puts = _count_puts(bot_app)
    bot_app.press("fix", str(alert.id))
    assert eventually(lambda: bot_app.services.alerts.get(alert.id).status == "fixed")
    assert bot_app.bpa("leaky") == ALL_ON and puts[0] == 1
    thread = eventually(lambda: "Undo" in _thread(bot_app, alert.ts) and _thread(bot_app, alert.ts))
    assert "`BlockPublicAcls`: off → *on*" in thread and "`IgnorePublicAcls`: on (unchanged)" in thread
    assert "Live check now" in thread
    undo = next(
        e for m in bot_app.standin.replies(alert.ts) for b in m.blocks if b["type"] == "actions" for e in b["elements"]
    )
    assert undo["action_id"] == "undo" and "confirm" in undo
    card = bot_app.standin.message(alert.ts)
    assert card is not None
    assert eventually(lambda: f"Fixed* by <@{RESPONDER}>" in json.dumps(card.blocks))
    audit = bot_app.services.audit.for_alert(alert.id)
    assert [(r.action, r.outcome) for r in audit] == [("fix", "applied")]

    bot_app.press("undo", undo["value"])
    assert eventually(lambda: bot_app.bpa("leaky") == snapshot)
    assert eventually(lambda: "undid the fix" in _thread(bot_app, alert.ts))
    assert eventually(lambda: bot_app.services.alerts.get(alert.id).status == "open")
    # A second Undo changes nothing and says so.
    bot_app.press("undo", undo["value"])
    assert eventually(lambda: any("Already undone" in t for t in _ephemerals(bot_app, RESPONDER)))
    assert bot_app.bpa("leaky") == snapshot


def test_two_concurrent_presses_change_aws_once_and_both_are_told(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("raced")
    other = "U0RESP2"
    bot_app.services.permissions.users = (RESPONDER, other)
    puts = _count_puts(bot_app)
    presses = [
        threading.Thread(target=bot_app.press, args=("fix", str(alert.id)), kwargs={"user": u})
        for u in (RESPONDER, other)
    ]
    for t in presses:
        t.start()
    for t in presses:
        t.join()
    told = eventually(lambda: len(_ephemerals(bot_app, RESPONDER) + _ephemerals(bot_app, other)) == 2)
    assert told
    answers = _ephemerals(bot_app, RESPONDER) + _ephemerals(bot_app, other)
    assert puts[0] == 1 and sum("Already fixed" in a for a in answers) == 1
    # A third press, after the fact, is told too and changes nothing.
    bot_app.press("fix", str(alert.id))
    assert eventually(lambda: len(_ephemerals(bot_app, RESPONDER) + _ephemerals(bot_app, other)) == 3)
    assert puts[0] == 1
    rows = bot_app.services.store.db.execute("select count(*) from remediations where status = 'applied'").fetchone()
    assert rows[0] == 1


def test_dry_run_changes_nothing_and_says_what_it_would_do(slack_standin: SlackStandin, tmp_path: Path) -> None:
    with mock_aws():
        bot = start_bot(slack_standin, tmp_path, dry_run=True)
        try:
            alert = bot.open_alert("dry")
            before = bot.bpa("dry")
            bot.press("fix", str(alert.id))
            told = eventually(lambda: _ephemerals(bot, RESPONDER))
            assert "Dry run: would turn on BlockPublicAcls, BlockPublicPolicy" in told[0]
            assert bot.bpa("dry") == before
            assert bot.services.alerts.get(alert.id).status == "open"
            assert eventually(lambda: "dry run" in _thread(bot, alert.ts))
        finally:
            for stop in bot.stops:
                stop()


def test_aws_refusal_names_the_missing_permission_in_the_thread(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("denied")
    client = bot_app.services.aws.client("s3", ACCOUNT, "us-east-1", write=True)

    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutPublicAccessBlock")

    client.meta.events.register("before-call.s3.PutPublicAccessBlock", deny)
    bot_app.press("fix", str(alert.id))
    thread = eventually(lambda: "AccessDenied" in _thread(bot_app, alert.ts) and _thread(bot_app, alert.ts))
    assert "s3:PutBucketPublicAccessBlock" in thread and "Traceback" not in thread
    assert bot_app.services.alerts.get(alert.id).status == "open"
    assert [r.outcome for r in bot_app.services.audit.for_alert(alert.id)] == ["failed"]


def test_a_press_on_a_resolved_alert_says_so(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("gone")
    bot_app.services.alerts.transition(alert.id, "resolved", "someone", "re-enabled in the console")
    bot_app.press("ack", str(alert.id), user=BYSTANDER)
    bot_app.press("fix", str(alert.id))
    assert eventually(lambda: any("already resolved" in t for t in _ephemerals(bot_app, BYSTANDER)))
    assert eventually(lambda: any("already resolved" in t for t in _ephemerals(bot_app, RESPONDER)))


def test_mark_as_expected_opens_a_modal_and_the_submission_accepts_the_alert(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("website")
    bot_app.press("allow", str(alert.id))
    opened = bot_app.standin.wait_for("views.open")[0].params
    view = opened["view"]
    assert view["callback_id"] == "allow_modal" and view["private_metadata"] == str(alert.id)
    assert "30d" in json.dumps(view)

    def submit(reason: str, expiry: str) -> Any:
        values = {
            "reason": {"reason": {"type": "plain_text_input", "value": reason}},
            "expiry": {"expiry": {"type": "plain_text_input", "value": expiry}},
        }
        payload = view_submission("allow_modal", values, str(alert.id), user=RESPONDER)
        return post(bot_app.url, encode_payload(payload))

    bad = submit("", "soon")
    assert bad.status == 200 and bad.json()["response_action"] == "errors"
    assert set(bad.json()["errors"]) == {"reason", "expiry"}
    assert bot_app.services.exceptions.list_active() == []

    assert submit("static website <!here>", "14d").status == 200
    assert eventually(lambda: bot_app.services.alerts.get(alert.id).status == "accepted")
    (row,) = bot_app.services.exceptions.list_active()
    assert row.bucket == "website" and row.owner == RESPONDER and row.account == ACCOUNT
    card = lambda: json.dumps(getattr(bot_app.standin.message(alert.ts), "blocks", None))  # noqa: E731
    assert eventually(lambda: "Accepted as expected" in card())
    assert eventually(lambda: "&lt;!here&gt;" in _thread(bot_app, alert.ts))
    assert "<!here>" not in _thread(bot_app, alert.ts)
    assert [(r.action, r.outcome) for r in bot_app.services.audit.for_alert(alert.id)] == [("allow", "accepted")]


def test_the_modal_is_refused_to_non_responders(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("nope")
    bot_app.press("allow", str(alert.id), user=BYSTANDER)
    assert eventually(lambda: _ephemerals(bot_app, BYSTANDER))
    assert bot_app.standin.calls_to("views.open") == []


def test_hostile_user_agent_is_plain_text_in_every_message(bot_app: BotApp) -> None:
    from bot.core.record import Record
    from bot.store.index import ingest
    from tests.slack_requests import bpa_record

    ingest(bot_app.services.store, [Record(bpa_record("evil", event_id="ev-evil-0", agent=HOSTILE_AGENT))])
    alert = bot_app.open_alert("evil", agent=HOSTILE_AGENT, event_id="ev-evil-1")
    bot_app.press("who_changed", str(alert.id), user=BYSTANDER)
    bot_app.press("ack", str(alert.id), user=BYSTANDER)
    bot_app.press("fix", str(alert.id))
    assert eventually(lambda: bot_app.services.alerts.get(alert.id).status == "fixed")
    assert eventually(lambda: len(bot_app.standin.replies(alert.ts)) >= 3)
    sent = json.dumps([c.params for c in bot_app.standin.calls])
    assert "&lt;!channel&gt;" in sent
    assert "<!channel>" not in sent and "<https://evil.example" not in sent


def test_button_values_are_only_ids(bot_app: BotApp) -> None:
    bot_app.press("ack", "1; drop table alerts", user=BYSTANDER)
    bot_app.press("ack", "999", user=BYSTANDER)
    told = eventually(lambda: len(_ephemerals(bot_app, BYSTANDER)) == 2 and _ephemerals(bot_app, BYSTANDER))
    # The two presses are handled in parallel: their answers may arrive in either order.
    assert any("no longer" in t or "does not point" in t for t in told)
    assert any("no alert #999" in t for t in told)


def test_acknowledge_from_app_home_is_for_responders(bot_app: BotApp) -> None:
    """App Home is open to the whole workspace; acknowledging there needs a responder."""
    from standins.requests import block_action

    alert = bot_app.open_alert("home-acked")

    def press_from_home(user: str) -> int:
        payload = block_action("ack", str(alert.id), user=user)
        payload.pop("channel")
        payload.pop("message")
        payload["container"] = {"type": "view", "view_id": "V0HOME"}
        payload["view"] = {"id": "V0HOME", "type": "home"}
        return post(bot_app.url, encode_payload(payload)).status

    assert press_from_home(BYSTANDER) == 200
    assert eventually(lambda: any(r.outcome == "refused" for r in bot_app.services.audit.for_alert(alert.id)))
    assert bot_app.services.alerts.get(alert.id).status == "open"
    assert press_from_home(RESPONDER) == 200
    assert eventually(lambda: bot_app.services.alerts.get(alert.id).status == "acknowledged")


def _dms(bot: BotApp, user: str) -> list[str]:
    return [
        str(c.params.get("text")) for c in bot.standin.accepted("chat.postMessage") if c.params.get("channel") == user
    ]


def test_a_stale_modal_on_a_fixed_alert_creates_no_exception(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("fixed-meanwhile")
    bot_app.press("allow", str(alert.id))
    view = bot_app.standin.wait_for("views.open")[0].params["view"]
    # While the modal is open, someone else fixes the alert.
    bot_app.services.alerts.transition(alert.id, "fixed", "U0OTHER", "BPA re-enabled", slack_user=True)
    values = {
        "reason": {"reason": {"type": "plain_text_input", "value": "static site"}},
        "expiry": {"expiry": {"type": "plain_text_input", "value": "30d"}},
    }
    payload = view_submission("allow_modal", values, view["private_metadata"], user=RESPONDER)
    assert post(bot_app.url, encode_payload(payload)).status == 200
    told = eventually(lambda: [t for t in _dms(bot_app, RESPONDER) if "already fixed" in t])
    assert told and "<@U0OTHER>" in told[0]
    assert bot_app.services.alerts.get(alert.id).status == "fixed"
    assert bot_app.services.exceptions.list_active() == []  # nothing silences the next change to the bucket
    assert ("allow", "already_fixed") in [(r.action, r.outcome) for r in bot_app.services.audit.for_alert(alert.id)]


def test_undo_with_a_newer_open_alert_reopens_nothing_and_tells_the_newer_one(bot_app: BotApp) -> None:
    old = bot_app.open_alert("twice", off=("BlockPublicAcls",))
    bot_app.press("fix", str(old.id))
    assert eventually(lambda: bot_app.services.alerts.get(old.id).status == "fixed")
    undo = eventually(
        lambda: next(
            (
                e
                for m in bot_app.standin.replies(old.ts)
                for b in m.blocks
                if b["type"] == "actions"
                for e in b["elements"]
            ),
            None,
        )
    )
    # The bucket is opened again by another change: a new alert, open.
    changes = bot_app.services.alerts.process([Record(bpa_record("twice", event_id="ev-0002"))])
    bot_app.services.outbox.flush()
    newer = bot_app.services.alerts.get(changes[0].alert_id)
    assert newer.id != old.id and newer.status == "open" and newer.ts

    bot_app.press("undo", undo["value"])
    assert eventually(lambda: "undid the fix made on alert" in _thread(bot_app, newer.ts))
    assert eventually(
        lambda: f"alert #{newer.id}" in _thread(bot_app, old.ts) and "stays closed" in _thread(bot_app, old.ts)
    )
    assert bot_app.services.alerts.get(old.id).status == "fixed"
    assert [a.id for a in bot_app.services.alerts.alerts_for("twice")] == [newer.id]  # one open alert per bucket


def test_stale_and_pointless_presses_are_audited(bot_app: BotApp) -> None:
    closed = bot_app.open_alert("closed-already")
    bot_app.services.alerts.transition(closed.id, "resolved", "someone", "re-enabled in the console")
    bot_app.press("ack", "not-a-number", user=BYSTANDER)
    bot_app.press("undo", "", user=BYSTANDER)
    bot_app.press("who_changed", "999", user=BYSTANDER)
    bot_app.press("allow", str(closed.id))
    expected = {
        ("ack", "stale_button", None),
        ("undo", "stale_button", None),
        ("who_changed", "not_found", 999),
        ("allow", "already_resolved", closed.id),
    }

    def audited() -> set[tuple[str, str, int | None]]:
        return {(r.action, r.outcome, r.alert_id) for r in bot_app.services.audit.recent()}

    assert eventually(lambda: expected <= audited()), audited()
    assert eventually(lambda: any("already resolved" in t for t in _ephemerals(bot_app, RESPONDER)))
    assert eventually(lambda: len(_ephemerals(bot_app, BYSTANDER)) == 3)  # each stale press is told too
    assert bot_app.standin.calls_to("views.open") == []
