"""App Home: the open alerts with their buttons, exceptions ending soon, source health.

Published when someone opens the tab (handlers.home) and again, whenever an alert changes, for the
people who opened it recently (`refresh_all`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.alerts.engine import AlertService
from bot.alerts.exceptions import EXPIRING_WITHIN, ExceptionList
from bot.slack import messages as msg
from bot.slack.blocks import SECTION_TEXT
from bot.slack.cards import buttons, status_line
from bot.slack.errors import slack_failure
from bot.slack.mrkdwn import inert_view, truncate
from bot.sources.health import SourceHealth

log = logging.getLogger(__name__)
VIEW_BLOCKS = 100  # Slack: blocks per Home tab view
SHOWN_ALERTS = 25  # three blocks each, leaving room for exceptions and sources
REMEMBERED_VIEWERS = 50


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_TEXT)))


class HomeTab:
    """Builds and publishes the Home tab; remembers who opened it recently, to refresh it for them."""

    def __init__(self, slack: WebClient, alerts: AlertService, exceptions: ExceptionList,
                 health: Callable[[], list[SourceHealth]]):
        self.slack, self.alerts, self.exceptions, self.health = slack, alerts, exceptions, health
        self._lock = threading.Lock()
        self._viewers: OrderedDict[str, None] = OrderedDict()

    def view(self) -> View:
        """The Home tab as it should look now."""
        alerts = self.alerts.open_alerts()
        blocks: list[Block] = [HeaderBlock(text=msg.home_alerts_head(len(alerts)))]
        if not alerts:
            blocks.append(_section(msg.HOME_NO_ALERTS))
        for alert in alerts[:SHOWN_ALERTS]:
            blocks.append(_section(status_line(alert) + "\n" + msg.home_alert(alert)))
            blocks.append(ActionsBlock(block_id=f"home-{alert.id}", elements=buttons(alert, alert.exposure)))
            blocks.append(DividerBlock())
        if len(alerts) > SHOWN_ALERTS:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=msg.truncated(SHOWN_ALERTS, len(alerts)))]))
        expiring = self.exceptions.expiring(EXPIRING_WITHIN)
        blocks.append(HeaderBlock(text="Exceptions ending within 7 days"))
        lines = [msg.exception_line(row) for row in expiring[:40]] or [msg.HOME_NO_EXPIRING]
        blocks.append(_section("\n".join(lines)))
        blocks.append(HeaderBlock(text="Pollers"))
        blocks.append(_section("\n".join(msg.health_line(h) for h in self.health()[:40]) or msg.NO_SOURCES))
        return View(type="home", blocks=blocks[:VIEW_BLOCKS])

    def opened(self, user: str) -> None:
        """Someone opened the tab: remember them (the most recent REMEMBERED_VIEWERS) and publish it."""
        with self._lock:
            self._viewers[user] = None
            self._viewers.move_to_end(user)
            while len(self._viewers) > REMEMBERED_VIEWERS:
                self._viewers.popitem(last=False)
        self.publish(user)

    def publish(self, user: str) -> None:
        """Publish the Home tab for one user; Slack errors are logged, not raised."""
        try:
            self.slack.views_publish(user_id=user, view=inert_view(self.view()))
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("views.publish for %s failed: %s", user, slack_failure(exc) or type(exc).__name__)

    def refresh_all(self) -> None:
        """Republish for everyone who opened Home recently (called when an alert changes)."""
        with self._lock:
            users = list(self._viewers)
        for user in users:
            self.publish(user)
