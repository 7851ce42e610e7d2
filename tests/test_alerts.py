"""Alerts end to end through the outbox into a local Slack stand-in: one card per incident, threads, resolve."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from itertools import count
from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.alerts.lifecycle import AlertStateError
from bot.core.exposure import ExposureVerdict
from bot.core.record import Record
from bot.slack.outbox import Outbox
from bot.store import index
from bot.store.database import Store
from tests.slack_standin import SlackStandin, slack_standin  # noqa: F401
from tests.wiring import alert_service

CHANNEL = "C0ALERTS"
ACCOUNT = "111122223333"
BUCKET = "bw-data-prod"
T0 = datetime(2026, 11, 26, 9, 45, tzinfo=UTC)
_ids = count(1)
ALL_OFF = {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
           "RestrictPublicBuckets": False}
ALL_ON = dict.fromkeys(ALL_OFF, True)
PUBLIC_POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "Open", "Effect": "Allow", "Principal": "*",
                 "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}


def sso(person: str = "sam@example.com") -> dict[str, Any]:
    """An IAM Identity Center session: the person is the session name."""
    role = "AWSReservedSSO_Admin_0123456789abcdef"
    return {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{person}", "accountId": ACCOUNT,
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{person}",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": role,
                                                 "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}"},
                               "attributes": {"mfaAuthenticated": "true"}}}


def make_record(event_name: str, params: dict[str, Any] | None = None, *, bucket: str | None = BUCKET,
                minutes: float = 0, event_id: str | None = None, user_agent: str = "AWS Internal",
                identity: dict[str, Any] | None = None, region: str = "us-east-1") -> Record:
    """A CloudTrail S3 management event in today's shape."""
    request = dict(params or {})
    if bucket:
        request.setdefault("bucketName", bucket)
        request.setdefault("Host", f"{bucket}.s3.amazonaws.com")
    else:
        request.setdefault("Host", f"{ACCOUNT}.s3-control.{region}.amazonaws.com")
    return Record({
        "eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventName": event_name,
        "eventTime": (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventID": event_id or f"evt-{next(_ids):04d}", "awsRegion": region, "sourceIPAddress": "203.0.113.7",
        "userAgent": user_agent, "userIdentity": identity or sso(), "requestParameters": request,
        "responseElements": None, "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    })


def bpa(flags: dict[str, bool], **kw: Any) -> Record:
    return make_record("PutBucketPublicAccessBlock", {"PublicAccessBlockConfiguration": {
        "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", **flags}}, **kw)


def verdict(line: str = "Public now: anyone can read via the bucket policy.", public: bool | None = True,
            **kw: Any) -> ExposureVerdict:
    return ExposureVerdict(public, line, paths=["read via bucket policy"] if public else [], account=ACCOUNT,
                           bucket=BUCKET, bucket_bpa=ALL_OFF, bucket_bpa_state="present",
                           account_bpa_state="absent", checked_at=T0, **kw)


@pytest.fixture
def wired(store: Store, slack_standin: SlackStandin) -> SimpleNamespace:  # noqa: F811
    client = WebClient(token="xoxb-test-secret", base_url=slack_standin.url)
    outbox = Outbox(store, client, CHANNEL)
    seen: list[tuple[str, str | None, str]] = []

    def verdict_fn(account: str, bucket: str | None, region: str, keys: tuple[str, ...]) -> ExposureVerdict:
        seen.append((account, bucket, region))
        return verdict()

    service = alert_service(store, verdict_fn=verdict_fn, outbox=outbox)
    return SimpleNamespace(service=service, outbox=outbox, slack=slack_standin, store=store, verdicts=seen)


def test_public_event_becomes_exactly_one_card(wired: SimpleNamespace) -> None:
    changes = wired.service.process([bpa(ALL_OFF, user_agent="[S3Console/0.4]")])
    assert [c.kind for c in changes] == ["opened"]
    assert wired.outbox.flush() == 1
    cards = wired.slack.top_level(CHANNEL)
    assert len(cards) == 1
    assert BUCKET in cards[0].text and "sam@example.com" in cards[0].text
    alert = wired.service.get(changes[0].alert_id)
    assert (alert.channel, alert.ts, alert.status) == (CHANNEL, cards[0].ts, "open")
    actions = next(b for b in cards[0].blocks if b["type"] == "actions")["elements"]
    assert [e["action_id"] for e in actions] == ["ack", "fix", "who_changed", "allow"]
    assert {e["value"] for e in actions} == {str(alert.id)}
    assert wired.verdicts == [(ACCOUNT, BUCKET, "us-east-1")]
    assert "Public now: anyone can read via the bucket policy." in json.dumps(cards[0].blocks)
    assert wired.outbox.flush() == 0  # nothing posted twice


def test_second_event_on_same_bucket_is_a_thread_reply_and_an_update(wired: SimpleNamespace) -> None:
    first = wired.service.process([bpa(ALL_OFF)])[0]
    wired.outbox.flush()
    second = wired.service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=2)])
    assert [(c.kind, c.alert_id) for c in second] == [("added", first.alert_id)]
    wired.outbox.flush()
    card = wired.slack.top_level(CHANNEL)
    assert len(card) == 1
    replies = wired.slack.replies(card[0].ts)
    assert len(replies) == 1 and "policy made public" in replies[0].text
    updates = wired.slack.accepted("chat.update")
    assert [u.params["ts"] for u in updates] == [card[0].ts]
    # The incident got worse: the card now says critical, and both findings are listed.
    assert wired.service.get(first.alert_id).severity == "critical"
    assert card[0].blocks[0]["text"]["text"].startswith(":rotating_light: CRITICAL: ")
    assert len(wired.service.findings(first.alert_id)) == 2
    # Worse news re-runs the live check (the card never shows a verdict older than the change it lists)
    # and the thread reply is broadcast to the channel, with that fresh verdict in it.
    assert len(wired.verdicts) == 2
    posted = [c for c in wired.slack.accepted("chat.postMessage") if c.params.get("thread_ts")]
    assert [c.params.get("reply_broadcast") for c in posted] == [True]
    assert "Live check" in json.dumps(replies[0].blocks)


def test_duplicate_event_does_nothing(wired: SimpleNamespace) -> None:
    record = bpa(ALL_OFF, event_id="dup-1")
    assert len(wired.service.process([record, record])) == 1
    wired.outbox.flush()
    calls = len(wired.slack.calls)
    assert wired.service.process([bpa(ALL_OFF, event_id="dup-1")]) == []
    assert wired.outbox.flush() == 0
    assert len(wired.slack.calls) == calls


def test_reenable_resolves_and_the_card_says_by_whom(wired: SimpleNamespace) -> None:
    opened = wired.service.process([bpa(ALL_OFF)])[0]
    wired.outbox.flush()
    fixed = wired.service.process([bpa(ALL_ON, minutes=5, identity=sso("kim@example.com"),
                                       user_agent="[S3Console/0.4, aws-internal/3]")])
    assert [(c.kind, c.alert_id) for c in fixed] == [("resolved", opened.alert_id)]
    alert = wired.service.get(opened.alert_id)
    assert alert.status == "resolved" and alert.closed_by.startswith("kim@example.com")
    assert alert.close_reason.startswith("Block Public Access re-enabled by kim@example.com")
    assert alert.close_reason.endswith("in the console")
    wired.outbox.flush()
    card = wired.slack.top_level(CHANNEL)[0]
    status = json.dumps(card.blocks[1])
    assert "Resolved" in status and "kim@example.com" in status
    actions = next(b for b in card.blocks if b["type"] == "actions")["elements"]
    assert [e["action_id"] for e in actions] == ["who_changed"]  # nobody is asked to fix what is fixed
    assert "Resolved" in wired.slack.replies(card.ts)[-1].text
    assert [h["status_to"] for h in wired.service.history(alert.id)] == ["open", "resolved"]


def test_an_older_restore_does_not_resolve_a_newer_exposure(wired: SimpleNamespace) -> None:
    opened = wired.service.process([bpa(ALL_OFF, minutes=10)])[0]
    # Delivered late: a re-enable from before the weakening.
    assert wired.service.process([bpa(ALL_ON, minutes=1)]) == []
    assert wired.service.get(opened.alert_id).status == "open"


def test_alert_resolves_only_when_every_path_is_closed(wired: SimpleNamespace) -> None:
    opened = wired.service.process([
        make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}),
        make_record("PutBucketAcl", {"x-amz-acl": "public-read"}, minutes=1),
    ])
    assert [c.kind for c in opened] == ["opened", "added"]
    partial = wired.service.process([make_record("DeleteBucketPolicy", minutes=3)])
    assert [c.kind for c in partial] == ["partial"]
    assert wired.service.get(opened[0].alert_id).status == "open"
    done = wired.service.process([make_record("PutBucketAcl", {"x-amz-acl": "private"}, minutes=4)])
    assert [c.kind for c in done] == ["resolved"]
    wired.outbox.flush()
    replies = wired.slack.replies(wired.slack.top_level()[0].ts)
    assert any("Still open: bucket_acl_public" in r.text for r in replies)


def test_exception_records_the_finding_but_posts_no_card(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    outbox = Outbox(store, WebClient(token="xoxb-t", base_url=slack_standin.url), CHANNEL)
    exception = SimpleNamespace(id=7, bucket=BUCKET, account=None, reason="public website", owner="U0WEB",
                                expires_at=T0 + timedelta(days=30))
    asked: list[tuple[str | None, str | None]] = []
    service = alert_service(store, outbox=outbox,
                           exceptions_fn=lambda b, a, p: asked.append((b, a)) or exception)  # type: ignore[func-returns-value]
    first = service.process([bpa(ALL_OFF)])
    again = service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=1)])
    assert [c.kind for c in first + again] == ["suppressed", "suppressed"]
    assert first[0].alert_id == again[0].alert_id
    alert = service.get(first[0].alert_id)
    assert alert is not None and alert.status == "accepted" and alert.close_reason
    assert "exception #7" in alert.close_reason and "public website" in alert.close_reason
    assert len(service.findings(alert.id)) == 2
    assert asked[0] == (BUCKET, ACCOUNT)
    assert outbox.flush() == 0 and slack_standin.calls == []
    # The exception expired while the bucket is still public: the alert reopens and its card is posted.
    service.reopen(alert.id, "exception #7 expired and the bucket is still public")
    assert outbox.flush() == 1
    reopened = service.get(alert.id)
    assert reopened is not None and reopened.status == "open" and len(slack_standin.top_level()) == 1


def test_precursor_alone_is_a_low_alert_that_escalates_in_place(wired: SimpleNamespace) -> None:
    first = wired.service.process([make_record("PutBucketWebsite", {"WebsiteConfiguration": {}})])[0]
    alert = wired.service.get(first.alert_id)
    assert (alert.severity, alert.detection) == ("low", "website_enabled")
    wired.service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=1)])
    alert = wired.service.get(first.alert_id)
    assert (alert.severity, alert.detection) == ("critical", "bucket_policy_public")
    assert "policy made public" in alert.title


def test_account_level_alert_and_its_resolve(wired: SimpleNamespace) -> None:
    off = make_record("PutAccountPublicAccessBlock", {"PublicAccessBlockConfiguration": ALL_OFF}, bucket=None)
    opened = wired.service.process([off])[0]
    alert = wired.service.get(opened.alert_id)
    assert alert.resource_key == f"{ACCOUNT}/*" and alert.bucket is None
    assert wired.verdicts[-1] == (ACCOUNT, None, "us-east-1")
    on = make_record("PutAccountPublicAccessBlock", {"PublicAccessBlockConfiguration": ALL_ON}, bucket=None, minutes=1)
    assert [c.kind for c in wired.service.process([on])] == ["resolved"]
    wired.outbox.flush()
    assert ACCOUNT in wired.slack.top_level()[0].text


def test_late_event_already_fixed_in_the_index_is_posted_resolved(wired: SimpleNamespace) -> None:
    index.ingest(wired.store, [bpa(ALL_ON, minutes=20, identity=sso("kim@example.com"))])
    changes = wired.service.process([bpa(ALL_OFF, minutes=1)])
    assert [c.kind for c in changes] == ["resolved"]
    wired.outbox.flush()
    card = wired.slack.top_level()[0]
    assert "Resolved" in json.dumps(card.blocks[1]) and "kim@example.com" in json.dumps(card.blocks[1])


def test_transition_is_compare_and_set(wired: SimpleNamespace) -> None:
    alert_id = wired.service.process([bpa(ALL_OFF)])[0].alert_id
    wired.outbox.flush()
    acked = wired.service.transition(alert_id, "acknowledged", "U0ALICE")
    assert acked.acknowledged_by == "U0ALICE" and acked.acknowledged_at is not None
    with pytest.raises(AlertStateError) as again:
        wired.service.transition(alert_id, "acknowledged", "U0BOB")
    assert again.value.status == "acknowledged"
    results: list[str] = []
    barrier = threading.Barrier(4)

    def press(user: str) -> None:
        barrier.wait()
        try:
            wired.service.transition(alert_id, "fixed", user, "BPA re-enabled", slack_user=True)
            results.append("won")
        except AlertStateError as error:
            results.append(error.status)

    threads = [threading.Thread(target=press, args=(f"U0{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["fixed", "fixed", "fixed", "won"]
    history = wired.service.history(alert_id)
    assert [(h["status_from"], h["status_to"]) for h in history] == [
        (None, "open"), ("open", "acknowledged"), ("acknowledged", "fixed")]
    wired.outbox.flush()
    status = json.dumps(wired.slack.top_level()[0].blocks[1])
    assert "Fixed" in status and "<@U0" in status
    assert len(wired.slack.accepted("chat.update")) == 1  # ack and fix updates coalesced


def test_hostile_user_agent_and_session_name_never_reach_slack_unescaped(wired: SimpleNamespace) -> None:
    evil = "<!channel> <https://evil.example|click> <@U0BOSS> & `code`"
    wired.service.process([bpa(ALL_OFF, user_agent=evil, identity=sso("<!here>"))])
    wired.outbox.flush()
    wired.service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=1,
                                       user_agent=evil, identity=sso("<!here>"))])
    wired.outbox.flush()
    sent = json.dumps([c.params for c in wired.slack.calls])
    assert wired.slack.accepted("chat.postMessage") and wired.slack.accepted("chat.update")
    for raw in ("<!channel>", "<!here>", "<https://evil.example", "<@U0BOSS>"):
        assert raw not in sent
    assert "&lt;!channel&gt;" in sent


def test_a_failing_live_check_does_not_stop_the_card(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    def broken(account: str, bucket: str | None, region: str, keys: tuple[str, ...]) -> ExposureVerdict:
        raise RuntimeError("boom")

    outbox = Outbox(store, WebClient(token="xoxb-t", base_url=slack_standin.url), CHANNEL)
    service = alert_service(store, verdict_fn=broken, outbox=outbox)
    service.process([bpa(ALL_OFF)])
    assert outbox.flush() == 1
    assert "Live check:* not done" in json.dumps(slack_standin.top_level()[0].blocks)


def test_an_alert_closed_while_a_finding_waits_for_the_lock_is_not_opened_unchecked(
        store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    exception = SimpleNamespace(id=9, reason="public website", owner="U0WEB", expires_at=None)
    covered: list[bool] = [False]
    verdicts: list[str | None] = []

    def verdict_fn(account: str, bucket: str | None, region: str, keys: tuple[str, ...]) -> ExposureVerdict:
        verdicts.append(bucket)
        return verdict()

    service = alert_service(store, verdict_fn=verdict_fn,
                            exceptions_fn=lambda b, a, p: exception if covered[0] else None)
    first = service.process([bpa(ALL_OFF)])[0]
    covered[0] = True  # an exception is added for the bucket...
    seen_open = service._open_for

    def closed_right_after_the_unlocked_check(key: str) -> Any:
        found = seen_open(key)
        if found is not None and found.status == "open":
            service.transition(found.id, "fixed", "U0ALICE")  # ...and another thread closes the alert now
        return found

    service._open_for = closed_right_after_the_unlocked_check  # type: ignore[method-assign]
    later = service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=1)])
    assert [c.kind for c in later] == ["suppressed"] and later[0].alert_id != first.alert_id
    suppressed = service.get(later[0].alert_id)
    assert suppressed is not None and (suppressed.close_reason or "").startswith("Covered by exception #9")
    covered[0] = False
    service.transition(later[0].alert_id, "open", "U0ALICE", expect=("accepted",))  # open, then closed again
    third = service.process([make_record("PutBucketAcl", {"x-amz-acl": "public-read"}, minutes=2)])
    assert [c.kind for c in third] == ["opened"]
    opened = service.get(third[0].alert_id)
    assert opened is not None and opened.verdict == verdict().line  # the live check ran for it
    # Two checks for the alerts that opened, and two re-checks for a finding added to an alert that was
    # open when it arrived and closed before the lock was taken (so the finding was looked up again).
    assert verdicts == [BUCKET] * 4
