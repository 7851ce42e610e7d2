"""A card never says more than it checked: not "public now" under "Resolved", not an old verdict under a
worse change without saying so, and it names the person whose change its header reports.

Each case was found by a review of the cards (round 4) and failed before its fix.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from slack_sdk import WebClient

from bot.core.clock import utcnow
from bot.core.exposure import ExposureVerdict
from bot.slack.outbox import Outbox
from bot.store.database import Store
from tests.test_alerts import ACCOUNT, ALL_ON, CHANNEL, PUBLIC_POLICY, bpa, make_record, sso, verdict
from tests.wiring import alert_service, render_card


def mallory() -> dict[str, Any]:
    return {"type": "IAMUser", "principalId": "AIDAMALLORY", "accountId": ACCOUNT,
            "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory", "userName": "mallory"}


def card(service: Any, alert_id: int) -> tuple[str, list[dict[str, Any]]]:
    text, blocks = render_card(service, alert_id)
    return text, [b.to_dict() if hasattr(b, "to_dict") else b for b in blocks]


def headline_of(blocks: list[dict[str, Any]]) -> str:
    return str(blocks[1]["text"]["text"]).split("\n")[0]


def test_a_resolved_card_says_what_the_re_check_after_the_restore_found(store: Store) -> None:
    after = verdict("Not public now: Block Public Access blocks it.", False)
    checks: list[ExposureVerdict] = [verdict(), after]
    # Read when asked: the re-check after the restore is newer than the close.
    service = alert_service(store, verdict_fn=lambda *_: replace(checks.pop(0), checked_at=utcnow()))
    alert_id = service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY})])[0].alert_id
    service.process([bpa(ALL_ON, minutes=20, identity=sso("kim@example.com"))])
    assert service.get(alert_id).status == "resolved" and checks == []  # read again after the restore
    _, blocks = card(service, alert_id)
    assert headline_of(blocks).endswith(":lock: not public now")
    assert "Checked before" not in json.dumps(blocks)


def test_a_resolved_card_whose_re_check_failed_does_not_say_public_now(store: Store) -> None:
    def live(*_: Any) -> ExposureVerdict:
        if service.get(1) is not None and service.get(1).status == "resolved":  # type: ignore[union-attr]
            raise RuntimeError("Throttling")
        return verdict()

    service = alert_service(store, verdict_fn=live)
    alert_id = service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY})])[0].alert_id
    assert alert_id == 1
    service.process([bpa(ALL_ON, minutes=20, identity=sso("kim@example.com"))])
    _, blocks = card(service, alert_id)
    shown = json.dumps(blocks)
    assert "*Resolved*" in shown and "public now" not in headline_of(blocks)
    assert "public when last checked, before the latest change" in headline_of(blocks)
    assert "Checked before the latest change" in shown


def test_a_worse_change_whose_re_check_failed_says_its_verdict_is_older(store: Store) -> None:
    calls: list[int] = []

    def live(*_: Any) -> ExposureVerdict:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("Throttling")
        return replace(verdict("Not public now: no public policy or ACL.", False), bucket_bpa_state="absent")

    outbox = Outbox(store, WebClient(token="xoxb-unused"), CHANNEL)  # never flushed: what would be sent
    service = alert_service(store, outbox=outbox, verdict_fn=live)
    alert_id = service.process([make_record("PutBucketWebsite", {"WebsiteConfiguration": {}})])[0].alert_id
    service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=5, identity=mallory())])
    _, blocks = card(service, alert_id)
    assert "not public when last checked, before the latest change" in headline_of(blocks)
    assert ":lock: not public now" not in json.dumps(blocks)
    [reply] = [json.loads(r["payload"]) for r in store.db.query("SELECT payload FROM outbox WHERE kind = 'thread'")]
    assert reply["reply_broadcast"] is True  # worse news goes to the channel…
    assert "Checked before the latest change" in json.dumps(reply)  # …saying its verdict is the older one


def test_the_card_names_the_person_whose_change_its_header_reports(store: Store) -> None:
    service = alert_service(store, verdict_fn=lambda *_: verdict())
    alert_id = service.process([make_record("PutBucketWebsite", {"WebsiteConfiguration": {}},
                                            identity=sso("sam@example.com"))])[0].alert_id
    service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=5, identity=mallory())])
    text, blocks = card(service, alert_id)
    assert "policy made public" in blocks[0]["text"]["text"]
    assert headline_of(blocks).startswith("*mallory*: Bucket") and "changed by mallory" in text
    changed = json.dumps(blocks[3], ensure_ascii=False)  # What changed: each change and whose it was
    assert "Static website hosting enabled" in changed and "by sam@example.com" in changed
    assert "policy made public — by mallory" in changed
