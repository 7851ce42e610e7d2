"""Hand-off to PagerDuty (Events API v2) and to the signed webhook, against receivers on 127.0.0.1.

What an operator notices: the incident opens with the alert id as its dedup key and closes when the
alert does; a throttled or failing receiver is retried (after its Retry-After) and nothing is lost or
sent twice; the webhook's signature verifies with the recipe in docs/handoff.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.alerts.engine import AlertService
from bot.core.clock import parse_iso
from bot.core.exposure import ExposureVerdict
from bot.handoff.notifier import HandoffNotifier
from bot.handoff.queue import LEASE, HandoffQueue
from bot.handoff.sender import HandoffSender
from bot.handoff.targets import PAGERDUTY, WEBHOOK, Target
from bot.store.database import Store
from standins.handoff import HandoffReceiver
from tests.test_alerts import ALL_OFF, ALL_ON, PUBLIC_POLICY, bpa, make_record, sso

ROUTING_KEY = "R0UT1NGKEY0000000000000000000042"  # 32 characters, as PagerDuty's are
SECRET = "whsec-a-long-shared-secret"
DOCS = (Path(__file__).resolve().parents[1] / "docs" / "handoff.md").read_text()


Pair = tuple[HandoffReceiver, HandoffReceiver]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Wired:
    alerts: AlertService
    queue: HandoffQueue
    sender: HandoffSender
    pd: HandoffReceiver
    hook: HandoffReceiver
    clock: Clock


@pytest.fixture
def receivers() -> Iterator[Pair]:
    with HandoffReceiver("pagerduty") as pd, HandoffReceiver("webhook") as hook:
        yield pd, hook


def wire(store: Store, pd: HandoffReceiver, hook: HandoffReceiver, *, min_severity: str = "low",
         key: str = ROUTING_KEY) -> Wired:
    clock = Clock()
    ranks = ("critical", "high", "medium", "low")
    alerts = AlertService(store, clock=clock)
    queue = HandoffQueue(store, clock=clock)
    targets = {PAGERDUTY: Target(PAGERDUTY, pd.url, key), WEBHOOK: Target(WEBHOOK, hook.url, SECRET)}
    alerts.notify = HandoffNotifier(alerts, queue, tuple(targets), clock=clock,
                                    muted=lambda s: ranks.index(s) > ranks.index(min_severity))
    return Wired(alerts, queue, HandoffSender(queue, targets, clock=clock), pd, hook, clock)


@pytest.fixture
def wired(store: Store, receivers: Pair) -> Wired:
    return wire(store, *receivers)


def test_pagerduty_triggers_with_the_alert_id_as_dedup_key_and_resolves_when_it_closes(wired: Wired) -> None:
    alert_id = wired.alerts.process([bpa(ALL_OFF)])[0].alert_id
    assert wired.pd.requests == []  # stored first, sent by the sender
    assert wired.sender.flush() == 2
    (trigger,) = wired.pd.bodies()
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == str(alert_id)
    assert trigger["payload"]["severity"] == "error"  # high → PagerDuty's "error"
    assert trigger["payload"]["source"] == "s3://bw-data-prod" and "bw-data-prod" in trigger["payload"]["summary"]
    assert trigger["payload"]["custom_details"]["account"] == "111122223333"

    wired.alerts.process([bpa(ALL_ON, minutes=5, identity=sso("kim@example.com"))])
    assert wired.sender.flush() == 2
    resolve = wired.pd.bodies()[-1]
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": str(alert_id)}
    assert [b["event"] for b in wired.hook.bodies()] == ["alert.opened", "alert.closed"]
    assert wired.hook.bodies()[-1]["alert"]["status"] == "resolved"


def test_a_fix_pressed_in_slack_resolves_the_incident(wired: Wired) -> None:
    alert_id = wired.alerts.process([bpa(ALL_OFF)])[0].alert_id
    wired.alerts.transition(alert_id, "fixed", "U0RESP", "Block Public Access re-enabled", slack_user=True)
    wired.sender.flush()
    assert [b["event_action"] for b in wired.pd.bodies()] == ["trigger", "resolve"]


def test_an_ack_in_slack_acknowledges_the_incident_so_the_page_stops_escalating(wired: Wired) -> None:
    alert_id = wired.alerts.process([bpa(ALL_OFF)])[0].alert_id
    wired.alerts.transition(alert_id, "acknowledged", "U0RESP", expect=("open",), slack_user=True)
    wired.alerts.set_verdict(alert_id, ExposureVerdict(public_now=True, line="Public now"))  # same state: once
    wired.alerts.process([bpa(ALL_ON, minutes=5, identity=sso("kim@example.com"))])
    wired.sender.flush()
    assert [b["event_action"] for b in wired.pd.bodies()] == ["trigger", "acknowledge", "resolve"]
    assert wired.pd.bodies()[1] == {"routing_key": ROUTING_KEY, "event_action": "acknowledge",
                                    "dedup_key": str(alert_id)}
    assert [b["event"] for b in wired.hook.bodies()] == ["alert.opened", "alert.acknowledged", "alert.closed"]
    assert wired.hook.bodies()[1]["alert"]["acknowledged_by"] == "U0RESP"


def test_escalation_re_triggers_the_same_incident_with_the_new_severity(wired: Wired) -> None:
    alert_id = wired.alerts.process([bpa(ALL_OFF)])[0].alert_id
    wired.alerts.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=1)])
    wired.sender.flush()
    triggers = wired.pd.bodies()
    assert [(t["dedup_key"], t["payload"]["severity"]) for t in triggers] == [
        (str(alert_id), "error"), (str(alert_id), "critical")]
    assert [b["event"] for b in wired.hook.bodies()] == ["alert.opened", "alert.escalated"]


def test_the_same_event_twice_is_handed_off_once(wired: Wired) -> None:
    record = bpa(ALL_OFF, event_id="evt-same")
    wired.alerts.process([record])
    wired.alerts.process([record])
    wired.sender.flush()
    wired.sender.flush()
    assert len(wired.pd.requests) == 1 and len(wired.hook.requests) == 1


def test_429_waits_for_retry_after_and_5xx_backs_off_then_both_arrive(wired: Wired) -> None:
    wired.alerts.process([bpa(ALL_OFF)])
    wired.pd.fail_next(1, status=429, retry_after="30")
    wired.hook.fail_next(2, status=503)
    assert wired.sender.flush() == 0
    rows = {r["target"]: r for r in wired.queue.rows()}
    assert rows[PAGERDUTY]["last_error"] == "http 429"
    assert parse_iso(rows[PAGERDUTY]["next_attempt_at"]) == wired.clock.now + timedelta(seconds=30)
    assert parse_iso(rows[WEBHOOK]["next_attempt_at"]) == wired.clock.now + timedelta(seconds=5)

    wired.clock.now += timedelta(seconds=5)
    assert wired.sender.flush() == 0  # the webhook's second 503; PagerDuty is not due yet
    assert len(wired.pd.requests) == 1
    assert parse_iso(wired.queue.rows()[1]["next_attempt_at"]) == wired.clock.now + timedelta(seconds=10)

    wired.clock.now += timedelta(seconds=25)
    assert wired.sender.flush() == 2
    assert len(wired.pd.requests) == 2 and len(wired.pd.accepted) == 1
    assert len(wired.hook.requests) == 3 and len(wired.hook.accepted) == 1
    assert wired.queue.counts() == {"pending": 0, "failed": 0}
    # Every attempt carried the same delivery: a receiver that saw one of the failed ones can dedupe.
    assert len({r.headers["X-Bucketwatch-Delivery"] for r in wired.hook.requests}) == 1


def test_a_resolve_never_overtakes_its_trigger(wired: Wired) -> None:
    alert_id = wired.alerts.process([bpa(ALL_OFF)])[0].alert_id
    wired.pd.fail_next(1, status=500)
    wired.sender.flush()
    wired.alerts.transition(alert_id, "fixed", "U0RESP", "fixed", slack_user=True)
    wired.sender.flush()
    assert wired.pd.bodies() == [] and len(wired.pd.requests) == 1  # the resolve waits behind the trigger
    wired.clock.now += timedelta(seconds=5)
    wired.sender.flush()
    assert [b["event_action"] for b in wired.pd.bodies()] == ["trigger", "resolve"]


def test_an_event_the_target_refuses_is_set_aside_and_counted(store: Store, receivers: Pair,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    wired = wire(store, *receivers, key="short-key")
    with caplog.at_level(logging.INFO, logger="bot.handoff"):
        wired.alerts.process([bpa(ALL_OFF)])
        wired.sender.flush()
        wired.clock.now += timedelta(hours=2)
        wired.sender.flush()
    assert len(wired.pd.requests) == 1  # 400 is not retried
    assert wired.queue.counts() == {"pending": 0, "failed": 1}
    assert "refused with http 400" in caplog.text
    assert "short-key" not in caplog.text and SECRET not in caplog.text


def test_a_hand_off_survives_a_crash_mid_send_and_goes_out_with_the_same_body(
    store: Store, receivers: Pair, tmp_path: Path
) -> None:
    wired = wire(store, *receivers)
    wired.alerts.process([bpa(ALL_OFF)])
    for row in wired.queue.due():
        assert wired.queue.claim(row)  # the process took them, then died before the POST finished
    store.close()

    restarted = wire(Store(store.path), *receivers)
    assert restarted.sender.flush() == 0  # still leased to the dead process
    restarted.clock.now += LEASE
    assert restarted.sender.flush() == 2
    assert wired.pd.bodies()[0]["event_action"] == "trigger"
    assert wired.hook.bodies()[0]["event"] == "alert.opened"


def test_muted_alerts_are_not_handed_off_until_they_escalate(store: Store,
                                                             receivers: Pair) -> None:
    wired = wire(store, *receivers, min_severity="critical")
    alert_id = wired.alerts.process([bpa(ALL_OFF)])[0].alert_id  # high: below critical
    wired.sender.flush()
    assert wired.pd.requests == [] and wired.hook.requests == []
    wired.alerts.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=1)])
    wired.alerts.transition(alert_id, "fixed", "U0RESP", "fixed", slack_user=True)
    wired.sender.flush()
    assert [(b["event_action"], b["dedup_key"]) for b in wired.pd.bodies()] == [
        ("trigger", str(alert_id)), ("resolve", str(alert_id))]


def test_a_muted_alert_that_closes_sends_no_resolve(store: Store,
                                                    receivers: Pair) -> None:
    wired = wire(store, *receivers, min_severity="critical")
    alert_id = wired.alerts.process([bpa(ALL_OFF)])[0].alert_id
    wired.alerts.transition(alert_id, "fixed", "U0RESP", "fixed", slack_user=True)
    wired.sender.flush()
    assert wired.pd.requests == [] and wired.hook.requests == []


def _documented_verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """The receiver's check exactly as docs/handoff.md writes it."""
    timestamp = headers["X-Bucketwatch-Timestamp"]
    if abs(now - int(timestamp)) > 300:
        return False
    expected = "v1=" + hmac.new(secret.encode(), b"v1:" + timestamp.encode() + b":" + body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Bucketwatch-Signature"])


def test_the_webhook_signature_verifies_with_the_documented_recipe(wired: Wired) -> None:
    assert 'b"v1:" + timestamp.encode() + b":" + body' in DOCS  # the recipe above is the documented one
    alert_id = wired.alerts.process([bpa(ALL_OFF)])[0].alert_id
    wired.sender.flush()
    (got,) = wired.hook.accepted
    now = wired.clock.now.timestamp()
    assert got.headers["Content-Type"] == "application/json"
    assert _documented_verify(SECRET, got.headers, got.body, now)
    assert got.json()["alert"]["id"] == alert_id and got.json()["id"] == got.headers["X-Bucketwatch-Delivery"]
    assert not _documented_verify("another-secret-entirely", got.headers, got.body, now)
    assert not _documented_verify(SECRET, got.headers, got.body.replace(b"bw-data-prod", b"bw-data-prox"), now)
    assert not _documented_verify(SECRET, got.headers, got.body, now + 301)  # a replay after five minutes
    assert re.fullmatch(r"v1=[0-9a-f]{64}", got.headers["X-Bucketwatch-Signature"])
    assert SECRET not in got.body.decode() and ROUTING_KEY not in got.body.decode()
    assert ROUTING_KEY not in str(wired.queue.rows())  # secrets are added when sent, never stored
