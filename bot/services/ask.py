"""Asking the actor: the ask of each new alert, the DM through the outbox, and the reminder on silence.

When an alert opens (AlertEventKind.OPENED, inside the engine's transaction) the ask is decided and
stored with it: a robot or an unknown person is said on the card at once. The ask job (`run`, from
the scheduler and after each poll) finds the person's Slack user (ACTOR_MAP, else
users.lookupByEmail), opens the DM (conversations.open) and queues the question in the outbox as one
transaction; the outbox posts it once, even across a crash (message metadata, as cards). Both
look-ups are safe to repeat, so a crash before that transaction only repeats them. `escalate_due`
tells the card's thread, mentioning the responders, when ASK_TIMEOUT passes without an answer;
`settle_undelivered` does so at once when the DM will not arrive (the outbox gave it up, or Slack answered
an error no retry changes), and the card says "could not ask" instead of "asking…" forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.alerts.asks import ASKED, NOT_ASKED, RESOLVING, UNREACHABLE, Ask, AskStore, Rules, decide
from bot.alerts.engine import AlertService
from bot.alerts.events import AlertEvent, AlertEventKind
from bot.alerts.exception_requests import ExceptionRequests
from bot.alerts.exceptions import ExceptionList
from bot.core.clock import utcnow
from bot.core.config import Settings
from bot.slack import ask as blocks
from bot.slack import ask_messages as say
from bot.slack.mrkdwn import inert
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox import Outbox
from bot.slack.permissions import slack_error
from bot.slack.webclient import PERMANENT
from bot.store.database import Store

log = logging.getLogger(__name__)

# Slack's answers that mean this person cannot be asked (not a passing failure): said on the card.
_UNREACHABLE = {
    "users_not_found": "no Slack user has the email {email}",
    "cannot_dm_bot": "{who} is a bot user, and bots cannot be sent a DM",
    "user_not_found": "{who} is not a Slack user in this workspace",
    "user_disabled": "{who}'s Slack account is deactivated",
    "account_inactive": "{who}'s Slack account is deactivated",
    "missing_scope": "the bot lacks a Slack scope to find or DM people (users:read.email, im:write; see doctor)",
}


class _Unreachable(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AskService:
    """Decides, sends and follows up each ask; the presses themselves are in bot.services.ask_answers."""

    def __init__(self, settings: Settings, store: Store, slack: WebClient, outbox: Outbox,
                 notifier: SlackNotifier, alerts: AlertService, exceptions: ExceptionList, *,
                 clock: Callable[[], datetime] = utcnow):
        self.settings, self.store, self.slack, self.outbox = settings, store, slack, outbox
        self.notifier, self.alerts, self.clock = notifier, alerts, clock
        self.enabled = settings.asks_actor
        self.timeout = settings.ask_timeout
        self.rules = Rules.from_settings(settings)
        self.asks = AskStore(store)
        self.requests = ExceptionRequests(store, exceptions, clock=clock)

    # ---- when an alert opens (inside the engine's transaction) ------------------------------------
    def on_event(self, event: AlertEvent) -> None:
        if not self.enabled or event.kind is not AlertEventKind.OPENED:
            return
        alert = self.alerts.get(event.alert_id)
        findings = self.alerts.finding_objects(event.alert_id)
        if alert is None or not alert.is_open or not findings:
            return  # opened already resolved (a late event whose fix is in the index): nothing to ask
        actor = findings[0].actor
        self.asks.create(alert.id, actor, decide(actor, self.rules), self.clock())

    def card_line(self, alert_id: int) -> str:
        ask = self.asks.get(alert_id)
        if ask is None:
            return ""
        alert = self.alerts.get(alert_id)
        closed = str(alert.status) if alert is not None and not alert.is_open else ""
        return say.card_line(ask, self.requests.for_alert(alert_id), self.timeout, closed)

    # ---- the job --------------------------------------------------------------------------------
    def run(self) -> None:
        """Ask every person not asked yet, then remind responders of asks left unanswered too long."""
        for ask in self.asks.resolving():
            try:
                self._ask(ask)
            except (SlackApiError, SlackClientError, OSError) as exc:
                # Rate limits, 5xx, a dropped connection: the ask stays resolving and the next run retries.
                log.warning("asking the actor of alert %s: %s; retrying later", ask.alert_id, slack_error(exc),
                            extra={"alert_id": ask.alert_id})
        self.outbox.flush()
        self.settle_undelivered()
        self.escalate_due()
        self.outbox.flush()

    def _ask(self, ask: Ask) -> None:
        alert = self.alerts.get(ask.alert_id)
        if alert is None or not alert.is_open:
            self._settle(ask, NOT_ASKED, "the alert closed before the actor was asked")
            return
        try:
            user = ask.slack_user or self._lookup(ask.email)
            # conversations.open returns the same DM channel every time: repeating it after a crash is harmless.
            channel = str(self.slack.conversations_open(users=user)["channel"]["id"])
        except SlackApiError as exc:
            reason = _UNREACHABLE.get(slack_error(exc))
            if reason is None:
                raise
            self._settle(ask, UNREACHABLE, reason.format(email=ask.email, who=ask.slack_user or ask.email))
            return
        except _Unreachable as exc:
            self._settle(ask, UNREACHABLE, exc.reason)
            return
        findings = self.alerts.finding_objects(alert.id)
        text, dm_blocks = blocks.dm(alert, findings[0] if findings else None, alert.exposure,
                                    self.settings.alert_channel)
        metadata = {"event_type": blocks.METADATA_TYPE, "event_payload": {"alert_id": alert.id}}
        with self.store.atomic():
            if not self.asks.move(ask.alert_id, RESOLVING, state=ASKED, slack_user=user, dm_channel=channel):
                return  # another process asked meanwhile
            item = self.outbox.enqueue_dm(channel, text, dm_blocks, metadata)
            self.asks.move(ask.alert_id, ASKED, dm_outbox_id=item)
            self.outbox.enqueue_update(alert.id)

    def _lookup(self, email: str) -> str:
        """The Slack user id with this email (users.lookupByEmail, scope users:read.email)."""
        found = self.slack.users_lookupByEmail(email=email)["user"]
        if found.get("deleted"):
            raise _Unreachable(f"the Slack user with the email {email} is deactivated")
        if found.get("is_bot"):
            raise _Unreachable(f"{email} belongs to a bot user, and bots cannot be sent a DM")
        return str(found["id"])

    def _settle(self, ask: Ask, state: str, reason: str) -> None:
        """Nobody will be asked: the card says why, at once."""
        with self.store.atomic():
            if self.asks.move(ask.alert_id, RESOLVING, state=state, reason=reason):
                self.outbox.enqueue_update(ask.alert_id)

    def settle_undelivered(self) -> int:
        """Each ask whose DM will not arrive (given up, or an error no retry changes) becomes "could not ask"
        on the card, with a thread line mentioning the responders; the DM is withdrawn. How many."""
        told = 0
        for alert_id, error in self.asks.undelivered(PERMANENT):
            ask = self.asks.get(alert_id)
            if ask is None:
                continue
            with self.store.atomic():
                reason = say.undelivered_reason(ask.actor_name or ask.email or ask.slack_user, error)
                if not self.asks.move(alert_id, ASKED, state=UNREACHABLE, reason=reason):
                    continue  # answered or settled meanwhile
                if ask.dm_outbox_id is not None:
                    self.outbox.withdraw(ask.dm_outbox_id)
                alert = self.alerts.get(alert_id)
                if alert is not None and alert.is_open:
                    mention = say.responders(self.settings.responders)
                    self.notifier.note(alert_id, say.undelivered_note(ask.slack_user, error, mention))
                self.outbox.enqueue_update(alert_id)
            log.warning("the DM asking the actor of alert %s could not be delivered: %s", alert_id, error,
                        extra={"alert_id": alert_id})
            told += 1
        return told

    def escalate_due(self) -> int:
        """A thread line mentioning the responders for each ask unanswered after ASK_TIMEOUT; how many."""
        told = 0
        for ask in self.asks.silent_since(self.clock() - self.timeout):
            alert = self.alerts.get(ask.alert_id)
            with self.store.atomic():
                if not self.asks.mark_escalated(ask.alert_id, self.clock()):
                    continue
                if alert is None or not alert.is_open:
                    continue  # closed meanwhile: nobody needs reminding
                mention = say.responders(self.settings.responders)
                self.notifier.note(ask.alert_id, say.timeout_note(ask.slack_user, self.timeout, mention))
                self.outbox.enqueue_update(ask.alert_id)
                told += 1
        return told

    def update_dm(self, ask: Ask, answer: str) -> None:
        """Replace the DM's buttons with the answer (best effort: the answer is stored and shown already)."""
        if not (ask.dm_channel and ask.dm_ts):
            return
        text, answered = blocks.answered(answer, self.requests.for_alert(ask.alert_id))
        try:
            self.slack.chat_update(channel=ask.dm_channel, ts=ask.dm_ts, text=text, blocks=inert(answered))
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not update the DM of alert %s: %s", ask.alert_id, slack_error(exc))
