"""Says in Slack what the alert engine reports: cards, thread replies and card updates, through the outbox.

The engine calls the notifier inside the transaction that changed the alert, so each outbox row
commits (or rolls back) with the change that caused it; `Outbox.flush()` sends them later. A card is
rendered from the store when it is sent (`render_card`), so it always shows the alert as it is then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.alerts.allow_tag import accepted_by_tag
from bot.alerts.engine import AlertService
from bot.alerts.events import AlertEvent, AlertEventKind
from bot.alerts.lifecycle import AlertNotFound
from bot.slack import cards
from bot.slack import messages as msg
from bot.slack import tag_messages as tag_msg
from bot.slack.outbox import Outbox
from detections import BY_ID

# Thread replies per detection per alert: a bulk upload of public objects must not flood the thread.
REPLY_CAP = 5


class SlackNotifier:
    """The engine's `notify`: each AlertEvent becomes outbox items; also the card renderer the outbox uses.

    `route(account, severity)` names the card's channel (ROUTES); everything after the card follows it
    there (the outbox keeps channel and ts per alert). `muted(severity)` (MIN_SEVERITY): an alert below it
    gets no card and nothing in a thread, until it escalates to a severity that is not muted."""

    def __init__(self, alerts: AlertService, outbox: Outbox, *,
                 alias_fn: Callable[[str], str | None] | None = None,
                 route: Callable[[str, str], str] | None = None,
                 muted: Callable[[str], bool] | None = None):
        self.alerts, self.outbox, self.alias_fn = alerts, outbox, alias_fn
        self.route, self.muted = route, muted
        outbox.render = self.render_card
        # Also told of every event, in the same transaction (asking the actor listens for OPENED).
        self.listeners: list[Callable[[AlertEvent], None]] = []
        self.ask_line: Callable[[int], str] | None = None  # the card's line about asking the actor

    def _card(self, alert_id: int) -> None:
        alert = self.alerts.get(alert_id)
        channel = self.route(alert.account, alert.severity) if alert is not None and self.route else None
        self.outbox.enqueue_card(alert_id, channel)

    def _silent(self, alert_id: int) -> bool:
        """Muted: below MIN_SEVERITY and never carded (a card once posted keeps its thread going)."""
        if self.muted is None:
            return False
        alert = self.alerts.get(alert_id)
        return alert is not None and self.muted(alert.severity) and not self.outbox.has_card(alert_id)

    def __call__(self, event: AlertEvent) -> None:
        kind, alert_id = event.kind, event.alert_id
        if self._silent(alert_id):
            return  # stored and counted (digest, status), not shown
        if kind is AlertEventKind.ESCALATED and self.muted is not None and not self.outbox.has_card(alert_id):
            self._card(alert_id)  # was muted, now is not: the card shows it as it is now
            return
        if kind is AlertEventKind.OPENED:
            self._card(alert_id)
        elif kind in (AlertEventKind.FINDING_ADDED, AlertEventKind.ESCALATED):
            self._finding(event)
            self.outbox.enqueue_update(alert_id)
        elif kind is AlertEventKind.PARTLY_RESTORED:
            self.note(alert_id, msg.partial_note(event.reason, list(event.still_open)))
        elif kind is AlertEventKind.RESOLVED:
            self.note(alert_id, msg.resolved_note(event.reason))
        elif kind is AlertEventKind.REOPENED:
            if event.was_posted:
                # The message shown (a card that said "accepted", or a tag's quiet line) becomes the open card,
                # and the reason goes to the channel too: a message far up the channel changing is easy to miss.
                self.note(alert_id, msg.reopened_note(event.reason), broadcast=True)
                self.outbox.enqueue_update(alert_id)
            else:
                self._card(alert_id)  # Accepted by an exception, never posted: post it now.
        elif kind is AlertEventKind.ACCEPTED_BY_TAG:
            self._accepted_by_tag(event)
        else:
            self.outbox.enqueue_update(alert_id)
        for listener in self.listeners:
            listener(event)

    def _accepted_by_tag(self, event: AlertEvent) -> None:
        """The quiet line is the alert's one top-level message (render_card); later changes go under it."""
        self._card(event.alert_id)  # once per alert (also for one accepted before this existed)
        alert, finding = self.alerts.get(event.alert_id), event.finding
        if alert is None or finding is None:
            return
        if event.same_detection <= REPLY_CAP:
            line = cards.quiet_line(tag_msg.tag_accepted_reply(finding), tag_msg.tag_accepted_fallback(alert, finding))
            self.outbox.enqueue_thread(alert.id, *line)
        elif event.same_detection == REPLY_CAP + 1:
            name = BY_ID[finding.detection].name if finding.detection in BY_ID else finding.detection
            self.note(alert.id, msg.reply_cap_note(name, REPLY_CAP))

    def _finding(self, event: AlertEvent) -> None:
        alert, finding = self.alerts.get(event.alert_id), event.finding
        if alert is None or finding is None:
            return
        escalated = event.kind is AlertEventKind.ESCALATED
        if escalated or event.same_detection <= REPLY_CAP:
            # Worse news is broadcast to the channel too, with the live check taken after the change.
            text, blocks = cards.finding_reply(alert, finding, verdict=alert.exposure if escalated else None)
            self.outbox.enqueue_thread(alert.id, text, blocks, broadcast=escalated)
        elif event.same_detection == REPLY_CAP + 1:  # counts only grow: this note is posted once
            name = BY_ID[finding.detection].name if finding.detection in BY_ID else finding.detection
            self.note(alert.id, msg.reply_cap_note(name, REPLY_CAP))

    def note(self, alert_id: int, mrkdwn_text: str, *, broadcast: bool = False) -> None:
        """A line in the card's thread (`mrkdwn_text` must already be escaped where caller-chosen)."""
        if self._silent(alert_id):
            return  # no card to reply under: the audit table still has the press
        self.outbox.enqueue_thread(alert_id, *cards.thread_note(mrkdwn_text), broadcast=broadcast)

    def render_card(self, alert_id: int) -> tuple[str, list[Any]]:
        """The card as it should look now (the outbox calls this at send time)."""
        alert = self.alerts.get(alert_id)
        if alert is None:
            raise AlertNotFound(f"alert {alert_id} does not exist")
        alias = self.alias_fn(alert.account) if self.alias_fn else None
        findings = self.alerts.finding_objects(alert_id)
        if accepted_by_tag(alert):  # accepted by the bucket's own tag: one quiet line, never silence
            first = findings[0] if findings else None
            line = tag_msg.tag_accepted_line(alert, first, alias)
            return cards.quiet_line(line, tag_msg.tag_accepted_fallback(alert, first))
        ask_line = self.ask_line(alert_id) if self.ask_line else ""
        return cards.alert_card(alert, findings, alert.exposure, account_alias=alias, ask_line=ask_line)
