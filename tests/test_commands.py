"""The slash command through the running app: the registry, answers, permissions, long lists, who-changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.stub import ANY, Stubber

from bot.core.record import Record
from bot.slack.mrkdwn import slack_date
from bot.sources.state import Quarantined, SourceResult, record_outcome
from bot.store.index import ingest
from handlers.commands import SUBCOMMANDS, help_text
from tests.slack_requests import (
    ACCOUNT,
    BYSTANDER,
    HOSTILE_AGENT,
    RESPONDER,
    BotApp,
    bot_app,
    bpa_record,
    encode_form,
    eventually,
    post,
    slash_body,
)
from tests.slack_standin import slack_standin

# pytest fixtures used by parameter name in this module
FIXTURES = (bot_app, slack_standin)


def test_every_subcommand_has_help_and_the_help_names_them_all() -> None:
    text = help_text("/bucketwatch")
    for name, sub in SUBCOMMANDS.items():
        assert sub.help.strip() and sub.name == name
        assert f"/bucketwatch {name}" in text
    assert set(SUBCOMMANDS) >= {
        "who-changed",
        "alerts",
        "ack",
        "fix",
        "undo",
        "allow",
        "allowlist",
        "status",
        "digest",
        "help",
        "revoke",
    }


def test_a_bare_command_gets_the_help_and_angle_brackets_are_escaped(bot_app: BotApp) -> None:
    for text in ("", "   "):
        said = bot_app.answer(text)["text"]
        assert said.startswith("*/bucketwatch* — public S3 buckets") and "did not understand" not in said
    help_lines = help_text("/bucketwatch").splitlines()
    undo = next(line for line in help_lines if "bucketwatch undo" in line)
    # Slack reads a bare <id> as a link or mention: every < in the help is an entity.
    assert "alert &lt;id&gt;'s fix" in undo and "<" not in "\n".join(help_lines)
    assert "did not understand `nonsense`" in bot_app.answer("nonsense")["text"]


def test_alerts_and_ack_by_id(bot_app: BotApp) -> None:
    assert "No open alerts" in bot_app.answer("alerts")["text"]
    alert = bot_app.open_alert("listed")
    listed = json.dumps(bot_app.answer("alerts"))
    assert f"#{alert.id}" in listed and "`listed`" in listed
    said = bot_app.answer(f"ack #{alert.id}", user=BYSTANDER)["text"]
    assert "acknowledged" in said
    assert bot_app.services.alerts.get(alert.id).acknowledged_by == BYSTANDER
    again = bot_app.answer(f"ack {alert.id}")["text"]
    assert f"already acknowledged by <@{BYSTANDER}>" in again


def test_fix_by_bucket_offers_the_same_confirmed_danger_button(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("prompted")
    answer = bot_app.answer("fix prompted")
    buttons = [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert len(buttons) == 1
    button = buttons[0]
    assert button["action_id"] == "fix" and button["value"] == str(alert.id) and button["style"] == "danger"
    assert "prompted" in json.dumps(button["confirm"])
    assert "BlockPublicAcls" in json.dumps(answer["blocks"])  # the plan names the flags
    assert bot_app.services.alerts.get(alert.id).status == "open"  # only a prompt: nothing changed
    refused = bot_app.answer("fix prompted", user=BYSTANDER)
    assert "Only responders" in refused["text"] and "blocks" not in json.dumps(refused).replace('"blocks": null', "")
    assert "No open alert" in bot_app.answer("fix no-such-bucket")["text"]


def test_undo_and_allow_are_for_responders_only(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("guarded-2")
    for text in (f"undo {alert.id}", "allow guarded-2 30d because"):
        assert "Only responders" in bot_app.answer(text, user=BYSTANDER)["text"]
    rows = bot_app.services.audit.recent()
    assert [(r.user, r.action, r.outcome) for r in rows] == [
        (BYSTANDER, "allow", "refused"),
        (BYSTANDER, "undo", "refused"),
    ]
    assert bot_app.services.exceptions.list_active() == []
    assert "no applied fix" in bot_app.answer(f"undo {alert.id}")["text"]


def test_allow_then_allowlist(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("public-site")
    said = bot_app.answer("allow public-site 2w static website <!channel>")["text"]
    assert "Exception #1" in said and f"alert #{alert.id}" in said
    assert bot_app.services.alerts.get(alert.id).status == "accepted"
    listed = json.dumps(bot_app.answer("allowlist"))
    assert "public-site" in listed and "&lt;!channel&gt;" in listed and "<!channel>" not in listed
    assert "is not a duration" in bot_app.answer("allow public-site soonish reason")["text"]


def answer_in(bot_app: BotApp, text: str, channel: str, *, user: str) -> dict[str, Any]:
    """What `user` sees after typing the command in `channel` (not the alert channel)."""
    before = len(bot_app.responses())
    fields = slash_body(text, user=user, command=bot_app.settings.slash_command, channel=channel)
    fields["response_url"] = bot_app.standin.response_url("slash")
    reply = post(bot_app.url, encode_form(fields))
    assert reply.status == 200
    if reply.body:
        return dict(reply.json())
    found = eventually(lambda: len(bot_app.responses()) > before and bot_app.responses()[-1])
    assert found, f"no answer to {text!r}"
    return dict(found)


def thread_texts(bot_app: BotApp, ts: str, wanted: str) -> str:
    """The card's thread once a line containing `wanted` arrived (sent after the answer)."""
    eventually(lambda: wanted in json.dumps([m.text for m in bot_app.standin.replies(ts)]))
    return json.dumps([m.text for m in bot_app.standin.replies(ts)])


def test_ack_typed_outside_the_alert_channel_is_for_responders_only(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("acked-elsewhere")
    refused = answer_in(bot_app, f"ack {alert.id}", "C0RANDOM", user=BYSTANDER)
    assert refused["response_type"] == "ephemeral"
    assert refused["text"].startswith(":no_entry: Acknowledge from the alert channel, <#C0ALERTS>")
    assert bot_app.services.alerts.get(alert.id).status == "open"
    # An alert that does not exist gets the same answer: the refusal tells an outsider nothing.
    assert answer_in(bot_app, "ack 999", "C0RANDOM", user=BYSTANDER)["text"] == refused["text"]
    rows = [(r.user, r.action, r.alert_id, r.outcome) for r in bot_app.services.audit.recent()]
    assert rows == [(BYSTANDER, "ack", None, "refused"), (BYSTANDER, "ack", alert.id, "refused")]
    thread = thread_texts(bot_app, alert.ts, "refused")
    assert f"<@{BYSTANDER}> pressed *Acknowledge*: refused (typed outside the alert channel" in thread
    # A responder may acknowledge from anywhere, a direct message included.
    answer_in(bot_app, f"ack {alert.id}", "D0DIRECT", user=RESPONDER)
    assert bot_app.services.alerts.get(alert.id).acknowledged_by == RESPONDER


def test_revoke_ends_an_exception_and_leaves_its_alerts_closed(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("site-x")
    assert "Exception #1" in bot_app.answer("allow site-x 30d public website")["text"]
    assert bot_app.services.alerts.get(alert.id).status == "accepted"
    assert "Only responders may revoke" in bot_app.answer("revoke 1", user=BYSTANDER)["text"]
    assert [r.id for r in bot_app.services.exceptions.list_active()] == [1]

    said = bot_app.answer("revoke #1")["text"]
    assert said.startswith(":wastebasket: Exception #1 revoked: changes making `site-x` public alert again")
    assert f"Alerts it closed as accepted (#{alert.id}) stay closed: they are not reopened automatically." in said
    assert bot_app.services.exceptions.list_active() == []
    revoked = bot_app.services.store.db.execute("select revoked_by from exceptions where id = 1").fetchone()
    assert revoked == (RESPONDER,)
    assert bot_app.services.alerts.get(alert.id).status == "accepted"
    assert f"<@{RESPONDER}> revoked exception #1" in thread_texts(bot_app, alert.ts, "revoked exception")
    assert "already revoked" in bot_app.answer("revoke 1")["text"]
    assert "There is no exception #99" in bot_app.answer("revoke 99")["text"]
    assert "Give the exception id as a number" in bot_app.answer("revoke everything")["text"]
    audit = [(r.user, r.action, r.alert_id, r.outcome) for r in reversed(bot_app.services.audit.recent())]
    assert [row for row in audit if row[1] == "revoke"] == [
        (BYSTANDER, "revoke", None, "refused"),
        (RESPONDER, "revoke", None, "revoked"),
        (RESPONDER, "revoke", alert.id, "revoked"),
        (RESPONDER, "revoke", None, "already_revoked"),
        (RESPONDER, "revoke", None, "not_found"),
    ]
    # No exception covers the bucket any more: its next public change opens a new alert.
    [change] = bot_app.services.alerts.process([Record(bpa_record("site-x", event_id="ev-after-revoke"))])
    assert change.alert_id != alert.id and bot_app.services.alerts.get(change.alert_id).status == "open"


def test_status_and_digest(bot_app: BotApp) -> None:
    services = bot_app.services
    alert = bot_app.open_alert("shown-in-status")
    now = datetime.now(UTC)
    source = f"lookup:{ACCOUNT}:us-east-1"
    bad = [Quarantined("LookupEvents entry: CloudTrailEvent is not JSON", f'{{"EventId": "bad-{n}"}}') for n in (1, 2)]
    with services.store.atomic() as db:  # what a poll at `now` records: newest event read 7 minutes before
        record_outcome(db, SourceResult(source, "lookup", watermark=now, newest_event=now - timedelta(minutes=7),
                                        quarantine=bad), now)
    services.clock = services.poller.clock = lambda: now

    status = bot_app.answer("status")
    assert status["text"] == "\n".join([
        "*bucketwatch status* · 1 open alert · HTTP",
        "Fixes change AWS.",
        "Slack messages waiting to be sent: 0",
        f"Only responders may fix, undo and allow: <@{RESPONDER}>",
    ])
    assert [b["text"]["text"] for b in status["blocks"]][1:] == [
        f":white_check_mark: `{source}` · last success {slack_date(now)} · lag 7 minutes\n"
        f":warning: 2 malformed entries quarantined (table `quarantine`): `{source}` 2"
    ]

    digest = bot_app.answer("digest")
    assert digest["text"] == (
        f"bucketwatch digest for {now:%a %d %b}: new 1, open 1, acknowledged 0, fixed 0, accepted 0,"
        " resolved 0, accepted by tag 0; 0 still public."
    )
    blocks = digest["blocks"]
    assert blocks[0]["text"]["text"] == f"Daily digest · {now:%a %d %b %Y}"
    # What was watched comes first, before the figures.
    watched = f"Watched: 1 source(s) polled successfully within the last 5 minutes: {source}."
    assert blocks[1]["text"]["text"] == watched
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[:3] == ["*New (24 h)*\n1", "*Open*\n1", "*Acknowledged*\n0"]
    sections = {b["text"]["text"].split("\n")[0]: b["text"]["text"] for b in blocks if "text" in b}
    assert sections["*Still open (1)*"] == (
        f"*Still open (1)*\n• #{alert.id} `shown-in-status` ({ACCOUNT} us-east-1) · open · for less than a minute"
    )
    pollers = sections["*Pollers (1 healthy, 0 failing or late)*"]
    assert pollers.startswith(f"*Pollers (1 healthy, 0 failing or late)*\n✅ {source} · last success <!date^")
    assert pollers.endswith(" · lag 7 minutes")


def test_long_lists_are_cut_with_a_note_within_slack_limits(bot_app: BotApp) -> None:
    for n in range(120):
        bot_app.services.alerts.process([Record(bpa_record(f"bucket-{n:03d}-{'x' * 40}", event_id=f"bulk-{n}"))])
    answer = bot_app.answer("alerts")
    blocks = answer["blocks"]
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    shown = json.dumps(blocks).count("bucket-")
    assert 0 < shown < 120 and "of 120" in json.dumps(blocks)


def test_who_changed_from_the_index_newest_first(bot_app: BotApp) -> None:
    older = bpa_record("timeline", event_id="ev-old", agent=HOSTILE_AGENT)
    older["eventTime"] = "2026-01-01T10:00:00Z"
    newer = bpa_record("timeline", event_id="ev-new")
    ingest(bot_app.services.store, [Record(older), Record(newer)])
    answer = json.dumps(bot_app.answer("who-changed timeline 365", user=BYSTANDER), ensure_ascii=False)
    assert "from the local index" in answer
    assert answer.index("198.51.100.2") > 0 and answer.index("2026-01-01") > answer.index("mallory")
    assert "<!channel>" not in answer
    assert "bad" not in answer and "Days is a whole number" in bot_app.answer("who-changed timeline many")["text"]


def test_who_changed_asks_lookup_events_when_the_index_has_nothing(bot_app: BotApp) -> None:
    record = bpa_record("elsewhere", event_id="ev-lookup")
    client = bot_app.services.aws.client("cloudtrail", ACCOUNT, "us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "lookup_events",
            {
                "Events": [
                    {
                        "EventId": "ev-lookup",
                        "EventName": "PutBucketPublicAccessBlock",
                        "EventTime": datetime.now(UTC),
                        "CloudTrailEvent": json.dumps(record),
                    }
                ]
            },
            {
                "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": "elsewhere"}],
                "StartTime": ANY,
                "EndTime": ANY,
                "MaxResults": 50,
            },
        )
        answer = json.dumps(bot_app.answer("who-changed elsewhere 7"))
        stub.assert_no_pending_responses()
    assert "CloudTrail LookupEvents" in answer and "mallory" in answer
    # What LookupEvents returned is in the index now: the next answer comes from there.
    assert "from the local index" in json.dumps(bot_app.answer("who-changed elsewhere 7"))


def test_alerts_lists_what_fits_and_counts_the_rest(bot_app: BotApp) -> None:
    records = [Record(bpa_record(f"many-{i:03d}", event_id=f"ev-many-{i:03d}")) for i in range(75)]
    bot_app.services.alerts.process(records)
    answer = bot_app.answer("alerts")
    listed = json.dumps(answer)
    assert "Open alerts (75)" in answer["text"]
    assert "many-074" in listed  # newest first
    assert "of 75" in listed  # the note says how many were left out
    assert len(answer["blocks"]) <= 50


def test_who_changed_lookup_fallback_is_bounded_and_remembers_nothing_found(bot_app: BotApp) -> None:
    from bot.sources.who_changed import LookupGuard

    guard = LookupGuard(max_running=1, wait=0)
    bot_app.services.who_changed_guard = guard
    now = datetime.now(UTC)
    bot_app.services.clock = lambda: now
    client = bot_app.services.aws.client("cloudtrail", ACCOUNT, "us-east-1")
    params = {
        "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": "nobody-knows"}],
        "StartTime": ANY,
        "EndTime": ANY,
        "MaxResults": 50,
    }
    with Stubber(client) as stub:  # a LookupEvents call with no response queued fails and shows "Could not ask"
        assert guard.slots.acquire()  # another fan-out is running
        busy = bot_app.answer("who-changed nobody-knows 7", user=BYSTANDER)["text"]
        guard.slots.release()
        assert "busy" in json.dumps(bot_app.responses()[-1])
        assert "No configuration changes" in busy

        stub.add_response("lookup_events", {"Events": []}, params)
        first = json.dumps(bot_app.answer("who-changed nobody-knows 7", user=BYSTANDER))
        stub.assert_no_pending_responses()
        assert "No configuration changes" in first and "Could not ask" not in first
        # Asked again at once: remembered, CloudTrail is not asked (the stub has nothing left to answer).
        again = json.dumps(bot_app.answer("who-changed nobody-knows 7", user=BYSTANDER))
        assert again == first

        bot_app.services.clock = lambda: now + timedelta(minutes=6)  # the memory is brief
        stub.add_response("lookup_events", {"Events": []}, params)
        later = json.dumps(bot_app.answer("who-changed nobody-knows 7", user=BYSTANDER))
        stub.assert_no_pending_responses()
        assert "Could not ask" not in later


def test_status_warns_about_slack_messages_given_up(bot_app: BotApp) -> None:
    assert "given up" not in bot_app.answer("status")["text"]
    bot_app.services.store.db.table("outbox").insert(
        {"alert_id": None, "kind": "message", "payload": "{}", "created_at": "2026-01-01T00:00:00Z",
         "attempts": 20, "last_error": "channel_not_found", "failed_at": "2026-01-01T01:00:00Z"}
    )
    assert "Slack messages given up after repeated errors: 1" in bot_app.answer("status")["text"]


def test_status_counts_queue_messages_set_aside_apart_from_malformed_input(bot_app: BotApp) -> None:
    now = datetime.now(UTC)
    kept = [
        Quarantined("set aside after 6 receives (message m-1); last error: alert engine down", '{"detail-type": 1}'),
        Quarantined("message m-2: invalid JSON (unexpected character)", "not json"),
    ]
    with bot_app.services.store.atomic() as db:
        record_outcome(db, SourceResult("sqs:events", "queue", quarantine=kept), now)
    text = json.dumps(bot_app.answer("status")["blocks"])
    assert "1 queue message set aside after repeated failed deliveries" in text and "`sqs:events` 1" in text
    assert "1 malformed entry quarantined" in text
