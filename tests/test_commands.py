"""The slash command through the running app: the registry, answers, permissions, long lists, who-changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from botocore.stub import ANY, Stubber

from bot.events import Record
from bot.index import ingest
from handlers.commands import SUBCOMMANDS, help_text
from tests.slack_requests import (
    ACCOUNT,
    BYSTANDER,
    HOSTILE_AGENT,
    RESPONDER,
    BotApp,
    bot_app,
    bpa_record,
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
    }


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


def test_status_and_digest(bot_app: BotApp) -> None:
    status = json.dumps(bot_app.answer("status"))
    assert "lookup:123456789012:us-east-1" in status and "HTTP" in status and f"<@{RESPONDER}>" in status
    digest = bot_app.answer("digest")
    assert digest["text"] and digest["blocks"]


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
