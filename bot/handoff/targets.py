"""What each hand-off target receives: PagerDuty Events API v2 bodies, and the webhook's signed JSON.

Bodies are built when the alert changes (`body`) and stored without secrets; the routing key and the
webhook's signature are added when a body is sent (`request`), so neither is ever in the database or a
log. The webhook's signature, for a receiver to check (docs/handoff.md):

    X-Bucketwatch-Timestamp: <unix seconds>
    X-Bucketwatch-Signature: v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "v1:" + timestamp + ":" + raw body)>

Refuse a timestamp more than five minutes from your clock (replays), compare in constant time, and keep
the `id` of each delivery for those five minutes (a delivery may come twice after a crash; same `id`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.alerts.lifecycle import Alert
from bot.core.clock import iso
from bot.core.config import Settings

PAGERDUTY, WEBHOOK = "pagerduty", "webhook"
TRIGGER, ACKNOWLEDGE, RESOLVE = "trigger", "acknowledge", "resolve"
SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER = (
    "X-Bucketwatch-Signature", "X-Bucketwatch-Timestamp", "X-Bucketwatch-Delivery")
# https://developer.pagerduty.com/docs/events-api-v2/trigger-events/: critical, error, warning or info.
PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
SUMMARY_LIMIT = 1024  # PagerDuty truncates longer summaries


def alert_facts(alert: Alert) -> dict[str, Any]:
    """The alert as the receivers see it (no Slack ids beyond who acknowledged and who closed it)."""
    return {
        "id": alert.id,
        "status": str(alert.status),
        "severity": alert.severity,
        "title": alert.title,
        "detection": alert.detection,
        "account": alert.account,
        "region": alert.region,
        "bucket": alert.bucket,
        "actor": alert.actor,
        "verdict": alert.verdict,
        "opened_at": iso(alert.opened_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "closed_at": iso(alert.closed_at),
        "closed_by": alert.closed_by,
        "close_reason": alert.close_reason,
    }


def pagerduty_body(action: str, alert: Alert) -> dict[str, Any]:
    """An Events API v2 event without its routing key: `dedup_key` is the alert id, so a re-trigger
    (escalation, re-open) updates the same incident and a resolve closes it."""
    if action in (ACKNOWLEDGE, RESOLVE):  # a responder took it in Slack / it closed: the same incident
        return {"event_action": action, "dedup_key": str(alert.id)}
    where = f"s3://{alert.bucket}" if alert.bucket else f"AWS account {alert.account}"
    return {
        "event_action": TRIGGER,
        "dedup_key": str(alert.id),
        "payload": {
            "summary": f"[{alert.severity}] {alert.title}"[:SUMMARY_LIMIT],
            "source": where,
            "severity": PAGERDUTY_SEVERITY.get(alert.severity, "critical"),
            "component": alert.bucket or alert.account,
            "group": alert.account,
            "class": alert.detection,
            "custom_details": alert_facts(alert),
        },
        "client": "bucketwatch",
    }


def webhook_body(delivery: str, event: str, alert: Alert, now: datetime) -> dict[str, Any]:
    """`event` is alert.opened, alert.escalated, alert.acknowledged, alert.reopened or alert.closed; `id` names
    the delivery."""
    return {"id": delivery, "event": event, "at": iso(now), "alert": alert_facts(alert)}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The webhook's signature header value for this body at this time."""
    base = b"v1:" + str(timestamp).encode() + b":" + body
    return "v1=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Target:
    """Where one kind of hand-off goes, and its secret (kept out of bodies, rows and logs)."""

    name: str
    url: str
    secret: str

    def request(self, body: dict[str, Any], delivery: str, now: datetime) -> tuple[bytes, dict[str, str]]:
        """The bytes to POST and their headers, secrets added now."""
        headers = {"Content-Type": "application/json", "User-Agent": "bucketwatch"}
        if self.name == PAGERDUTY:
            return json.dumps({"routing_key": self.secret, **body}).encode(), headers
        raw = json.dumps(body, separators=(",", ":")).encode()
        timestamp = int(now.timestamp())
        headers.update({TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(self.secret, timestamp, raw),
                        DELIVERY_HEADER: delivery})
        return raw, headers


def configured_targets(settings: Settings) -> dict[str, Target]:
    """PagerDuty when PAGERDUTY_ROUTING_KEY is set, the webhook when WEBHOOK_URL is."""
    out = {}
    if settings.pagerduty_routing_key:
        out[PAGERDUTY] = Target(PAGERDUTY, settings.pagerduty_events_url, settings.pagerduty_routing_key)
    if settings.webhook_url:
        out[WEBHOOK] = Target(WEBHOOK, settings.webhook_url, settings.webhook_secret)
    return out
