"""The demo's routing and hand-off beat: a second bot on its own database, with ROUTES, MIN_SEVERITY and
PagerDuty pointed at a stand-in on 127.0.0.1 (standins.handoff), so the main story's channel is untouched."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.app import create_app
from bot.core.config import Route
from bot.core.record import Record
from bot.services.acknowledge import acknowledge
from demo.world import ALICE, Demo
from standins.handoff import HandoffReceiver

PAGERS = "C0PAGERS"
POLICY, CROSS_ACCOUNT, REENABLED = ("5ample00-0000-4000-8000-000000000003", "5ample00-0000-4000-8000-000000000004",
                                    "5ample00-0000-4000-8000-000000000008")


def tell_routing(demo: Demo) -> None:
    story = demo.story
    story.title("ROUTES sends critical cards to #pagers, MIN_SEVERITY=high mutes the rest, PagerDuty opens,"
                " acknowledges and closes an incident")
    with HandoffReceiver("pagerduty") as pagerduty:
        settings = replace(demo.settings, db_path=demo.tmp / "routed.db", min_severity="high",
                           routes=(Route("severity", "critical", PAGERS),),
                           pagerduty_routing_key="D" * 32, pagerduty_events_url=pagerduty.url)
        story.say(f"  ROUTES=severity:critical={PAGERS}  MIN_SEVERITY=high  PAGERDUTY_EVENTS_URL={pagerduty.url}")
        _, services = create_app(settings, aws=demo.services.aws)
        sender = services.handoff
        assert sender is not None
        services.alerts.process([_dated(demo, POLICY, 3), _dated(demo, CROSS_ACCOUNT, 2)])
        services.outbox.flush()
        sender.flush()
        for card in demo.slack.top_level(PAGERS):
            story.say(f"  card in #pagers: {card.text}")
        story.say("  partner-drop's cross-account policy (medium) got no card: "
                  + (services.digest.build().text.rsplit("; ", 1)[-1]))
        for body in pagerduty.bodies():
            story.say(f"  PagerDuty ← {body['event_action']} dedup_key={body['dedup_key']}"
                      f" severity={body['payload']['severity']}: {body['payload']['summary'][:70]}")
        paged = [a for a in services.alerts.open_alerts() if a.severity == "critical"]
        for alert in paged:  # alice presses Acknowledge on the card: the page stops escalating
            acknowledge(services, alert.id, ALICE)
        sender.flush()
        for body in [b for b in pagerduty.bodies() if b["event_action"] == "acknowledge"]:
            story.say(f"  PagerDuty ← {body['event_action']} dedup_key={body['dedup_key']} (alice acknowledged the"
                      " card in Slack)")
        services.alerts.process([_dated(demo, REENABLED, 1)])  # sam turns Block Public Access back on
        sender.flush()
        last = pagerduty.bodies()[-1]
        story.say(f"  PagerDuty ← {last['event_action']} dedup_key={last['dedup_key']} (the alert resolved itself)")
        services.store.close()


def _dated(demo: Demo, event_id: str, minutes_ago: float) -> Record:
    raw: dict[str, Any] = copy.deepcopy(demo.records[event_id])
    raw["eventTime"] = (demo.now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Record(raw)
