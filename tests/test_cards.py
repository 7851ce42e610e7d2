"""The card within Slack's limits, buttons by status, escaping, and the mrkdwn helpers."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.engine import AlertService
from bot.alerts.lifecycle import Alert
from bot.core.record import Record
from bot.slack.blocks import validate_blocks
from bot.slack.cards import alert_card, finding_reply
from bot.slack.mrkdwn import code, escape, slack_date, truncate
from bot.store.database import Store
from detections import evaluate
from detections.base import Change
from tests.test_alerts import ALL_OFF, PUBLIC_POLICY, bpa, make_record, verdict
from tests.wiring import alert_service, render_card

EVIL = "<!channel> <https://evil.example|click> & `tick`"


def dicts(blocks: list[Any]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


def open_alert(store: Store, *records: Record) -> tuple[AlertService, Alert]:
    service = alert_service(store, verdict_fn=lambda a, b, r, k: verdict())
    alert_id = service.process(list(records))[0].alert_id
    alert = service.get(alert_id)
    assert alert is not None
    return service, alert


def test_card_content_links_and_buttons(store: Store) -> None:
    service, alert = open_alert(store, bpa(ALL_OFF, user_agent="aws-cli/2.15.0 Python/3.11"))
    text, blocks = render_card(service, alert.id)
    assert validate_blocks(blocks) == []
    body = json.dumps(dicts(blocks), ensure_ascii=False)
    assert "bw-data-prod" in text and "sam@example.com" in text
    for expected in ("SSO · MFA yes", "CLI `aws-cli/2.15.0 Python/3.11`", "`203.0.113.7`", "<!date^",
                     "`111122223333`", "us-east-1", "`BlockPublicAcls`: unknown → off",
                     "https://s3.console.aws.amazon.com/s3/buckets/bw-data-prod?region=us-east-1&tab=permissions",
                     "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/evt-"):
        assert expected in body, expected
    actions = dicts(blocks)[-1]["elements"]
    fix = next(e for e in actions if e["action_id"] == "fix")
    assert fix["style"] == "danger" and fix["confirm"]["style"] == "danger"
    confirm = fix["confirm"]["text"]["text"]
    assert "`bw-data-prod`" in confirm
    assert "BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets" in confirm
    assert all(e["value"] == str(alert.id) for e in actions)


def test_fix_confirm_names_only_the_flags_that_will_change(store: Store) -> None:
    service, alert = open_alert(store, bpa(ALL_OFF))
    partly = dict(ALL_OFF, BlockPublicAcls=True, IgnorePublicAcls=True)
    v = dataclasses.replace(verdict(), bucket_bpa=partly)
    _, blocks = alert_card(alert, service.finding_objects(alert.id), v)
    confirm = dicts(blocks)[-1]["elements"][1]["confirm"]["text"]["text"]
    assert "Flags off as of 2026-11-26 09:45 UTC: BlockPublicPolicy, RestrictPublicBuckets." in confirm
    assert "Turns on those still off for bucket `bw-data-prod`" in confirm


@pytest.mark.parametrize(("status", "expected_actions", "status_text"), [
    ("open", ["ack", "fix", "who_changed", "allow"], "*Open*"),
    ("acknowledged", ["fix", "who_changed", "allow"], "*Acknowledged* by <@U0ALICE>"),
    ("fixed", ["who_changed"], "*Fixed* by <@U0ALICE>"),
    ("accepted", ["who_changed"], "*Accepted as expected* by <@U0ALICE>"),
    ("resolved", ["who_changed"], "*Resolved* because"),
])
def test_buttons_give_way_as_the_status_moves(store: Store, status: str, expected_actions: list[str],
                                              status_text: str) -> None:
    service, alert = open_alert(store, bpa(ALL_OFF))
    when = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    moved = dataclasses.replace(alert, status=status, acknowledged_by="U0ALICE", acknowledged_at=when,
                                closed_by="U0ALICE", closed_by_slack=True, closed_at=when, close_reason="done")
    _, blocks = alert_card(moved, service.finding_objects(alert.id), moved.exposure)
    assert [e["action_id"] for e in dicts(blocks)[-1]["elements"]] == expected_actions
    assert status_text in dicts(blocks)[1]["text"]["text"]


@pytest.mark.parametrize(("public_now", "flags", "offered"), [
    (False, ALL_OFF, False),  # a precursor on a bucket not public now: Block Public Access closes nothing
    (True, ALL_OFF, True),  # public now through something older, with flags off: the fix helps
    (True, dict.fromkeys(ALL_OFF, True), False),  # public now, but every flag is on already
])
def test_a_precursor_offers_the_fix_only_when_the_live_check_calls_for_it(
        store: Store, public_now: bool, flags: dict[str, bool], offered: bool) -> None:
    service, alert = open_alert(store, make_record("PutBucketWebsite", {"WebsiteConfiguration": {}}))
    assert alert.detection == "website_enabled"
    v = dataclasses.replace(verdict(public=public_now), bucket_bpa=flags)
    _, blocks = alert_card(alert, service.finding_objects(alert.id), v)
    assert ("fix" in [e["action_id"] for e in dicts(blocks)[-1]["elements"]]) is offered


def test_oversized_content_is_cut_with_a_note_not_rejected(store: Store) -> None:
    long_agent = "aws-sdk-go/1.0 " + "x" * 12000
    records = [make_record("PutBucketPolicy", {"bucketPolicy": {"Version": "2012-10-17", "Statement": [
        {"Sid": f"S{i}-" + "y" * 300, "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "*"} for i in range(40)]}}, minutes=i, user_agent=long_agent,
        identity={"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/" + "n" * 3000,
                  "userName": "n" * 3000, "accountId": "111122223333"}) for i in range(30)]
    service, alert = open_alert(store, *records)
    text, blocks = render_card(service, alert.id)
    assert validate_blocks(blocks) == []
    body = json.dumps(dicts(blocks), ensure_ascii=False)
    assert "(truncated)" in body and "more findings in the thread" in body
    assert len(text) <= 3000
    _, reply = finding_reply(alert, service.finding_objects(alert.id)[-1])
    assert validate_blocks(reply) == []


def test_validate_blocks_catches_what_slack_would_reject() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    too_many = [{"type": "divider"}] * 51
    button = {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76},
                                               "action_id": "a" * 256, "value": "1"}]}
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}
    problems = validate_blocks([section, button, fields]) + validate_blocks(too_many)
    assert any("text over 3000" in p for p in problems)
    assert any("button text over 75" in p for p in problems)
    assert any("action_id over 255" in p for p in problems)
    assert any("11 fields" in p for p in problems)
    assert any("51 blocks" in p for p in problems)


def test_hostile_strings_are_escaped_everywhere(store: Store) -> None:
    record = make_record("PutBucketAcl", {"x-amz-acl": "public-read"}, user_agent=EVIL,
                         identity={"type": "IAMUser", "arn": f"arn:aws:iam::111122223333:user/{EVIL}",
                                   "userName": EVIL, "accountId": "111122223333"})
    service, alert = open_alert(store, record)
    text, blocks = render_card(service, alert.id)
    reply_text, reply = finding_reply(alert, evaluate(record)[0])
    sent = json.dumps([text, dicts(blocks), reply_text, dicts(reply)], ensure_ascii=False)
    assert "<!channel>" not in sent and "<https://evil.example" not in sent
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; ˋtickˋ" in sent
    # Only our own control sequences remain: dates and links to AWS consoles.
    everything = "".join(json.loads(sent)[0::2]) + json.dumps(dicts(blocks), ensure_ascii=False)
    for sequence in re.findall(r"<[^>]*>", everything):
        assert sequence.startswith(("<!date^", "<https://s3.console.aws.amazon.com/", "<https://us-east-1.console"))


def test_change_text_from_policies_is_escaped(store: Store) -> None:
    service, alert = open_alert(store, make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}))
    finding = dataclasses.replace(service.finding_objects(alert.id)[0],
                                  changes=(Change("<!everyone>", "<b>", "<@U1>"),))
    _, blocks = alert_card(alert, [finding], None)
    body = json.dumps(dicts(blocks), ensure_ascii=False)
    assert "&lt;!everyone&gt;" in body and "<!everyone>" not in body and "<@U1>" not in body


def test_mrkdwn_helpers() -> None:
    assert escape("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"
    assert escape("line\nbreak\x00") == "line break "
    assert code("") == "_(none)_" and code("a`b") == "`aˋb`"
    moment = datetime(2026, 11, 26, 9, 45, tzinfo=UTC)
    epoch = int(moment.timestamp())
    assert slack_date(moment) == f"<!date^{epoch}^{{date_short_pretty}} {{time}}|2026-11-26 09:45 UTC>"
    assert slack_date(None) == "unknown time"
    cut = truncate("abc &amp; def", 9, note="…")
    assert cut == "abc …"  # never half an entity
    assert truncate("see <https://x.example|x> now", 14, note="…") == "see …"
    assert len(truncate("x" * 5000, 3000)) == 3000


def test_corpus_records_render_within_limits(store: Store, corpus: Path) -> None:
    records = [Record(json.loads(line)["record"]) for line in (corpus / "events.jsonl").read_text().splitlines()]
    service = alert_service(store)
    changes = service.process([r for r in records if evaluate(r)])
    assert changes
    for alert_id in {c.alert_id for c in changes}:
        _, blocks = render_card(service, alert_id)
        assert validate_blocks(blocks) == []
