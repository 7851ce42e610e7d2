"""Turns the engine's events into hand-offs: trigger on open, escalation and re-open; acknowledge when a
responder acknowledges the card in Slack (so the on-call's page stops escalating); resolve on close.

Called by the engine inside the transaction that changed the alert (as bot.slack.notifier is), so a
hand-off row commits or rolls back with its change. Each row's key names its event — target, action,
alert and the alert_history row (or the finding) behind it — and the table keeps one row per key: the
same event reported twice is handed off once. MIN_SEVERITY mutes hand-offs as it mutes cards, and an
acknowledge or a resolve is sent only where a trigger went.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bot.alerts.engine import AlertService
from bot.alerts.events import AlertEvent, AlertEventKind
from bot.alerts.lifecycle import CLOSED, OPEN, AlertStatus
from bot.core.clock import utcnow
from bot.handoff.queue import HandoffQueue
from bot.handoff.targets import ACKNOWLEDGE, PAGERDUTY, RESOLVE, TRIGGER, pagerduty_body, webhook_body

_WEBHOOK_EVENT = {TRIGGER: {AlertEventKind.OPENED: "alert.opened", AlertEventKind.ESCALATED: "alert.escalated",
                            AlertEventKind.REOPENED: "alert.reopened"},
                  ACKNOWLEDGE: {AlertEventKind.CHANGED: "alert.acknowledged"},
                  RESOLVE: {AlertEventKind.CHANGED: "alert.closed"}}


class HandoffNotifier:
    """The engine's `notify` for hand-offs to each configured target (`pagerduty`, `webhook`)."""

    def __init__(self, alerts: AlertService, queue: HandoffQueue, targets: Sequence[str], *,
                 muted: Callable[[str], bool] | None = None, clock: Callable[[], datetime] = utcnow):
        self.alerts, self.queue, self.targets = alerts, queue, tuple(targets)
        self.muted, self.clock = muted, clock

    def __call__(self, event: AlertEvent) -> None:
        if not self.targets:
            return
        alert = self.alerts.get(event.alert_id)
        if alert is None:
            return
        kind = event.kind
        if kind is AlertEventKind.CHANGED and alert.status in CLOSED:
            action, marker = RESOLVE, f"h{self._last_history(alert.id)}"
        elif kind is AlertEventKind.CHANGED and alert.status == AlertStatus.ACKNOWLEDGED:
            action, marker = ACKNOWLEDGE, f"h{self._last_history(alert.id)}"  # a verdict change repeats this key
        elif kind is AlertEventKind.OPENED and alert.status in OPEN:
            action, marker = TRIGGER, "opened"
        elif kind is AlertEventKind.ESCALATED and event.finding is not None:
            action, marker = TRIGGER, f"e{event.finding.event_id}:{event.finding.detection}"
        elif kind is AlertEventKind.REOPENED:
            action, marker = TRIGGER, f"h{self._last_history(alert.id)}"
        else:
            return
        if action == TRIGGER and self.muted is not None and self.muted(alert.severity):
            return  # below MIN_SEVERITY: stored and counted, not handed off
        for target in self.targets:
            if action != TRIGGER and not self.queue.triggered(target, alert.id):
                continue  # nothing was raised there: nothing to acknowledge or resolve
            key = f"{target}:{action}:{alert.id}:{marker}"
            body = (pagerduty_body(action, alert) if target == PAGERDUTY
                    else webhook_body(key, _WEBHOOK_EVENT[action][kind], alert, self.clock()))
            self.queue.enqueue(key, target, alert.id, action, body)

    def _last_history(self, alert_id: int) -> int:
        row = self.alerts.store.db.execute("SELECT max(id) FROM alert_history WHERE alert_id = ?",
                                           [alert_id]).fetchone()
        return int(row[0] or 0)
