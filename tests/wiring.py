"""The alert engine wired to a Slack notifier and an outbox, as bot.app wires it, for tests of the two together."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from bot.alerts.engine import AlertService
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox import Outbox
from bot.store.database import Store


def alert_service(store: Store, *, outbox: Outbox | None = None, **kwargs: Any) -> AlertService:
    """An AlertService whose events become outbox items (when an outbox is given), as in production."""
    service = AlertService(store, **kwargs)
    if outbox is not None:
        service.notify = SlackNotifier(service, outbox)
    return service


def notifier_of(service: AlertService, store: Store) -> SlackNotifier:
    """The service's notifier, or one on an outbox nobody flushes (to render cards and queue notes)."""
    found = service.notify
    if isinstance(found, SlackNotifier):
        return found
    notifier = SlackNotifier(service, Outbox(store, WebClient(token="xoxb-unused"), "C0UNUSED"))
    service.notify = notifier
    return notifier


def render_card(service: AlertService, alert_id: int) -> tuple[str, list[Any]]:
    """The card exactly as the outbox would post it now."""
    return notifier_of(service, service.store).render_card(alert_id)
