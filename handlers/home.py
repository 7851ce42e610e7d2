"""App Home: the open alerts with their buttons, exceptions ending soon, poller health.

Published when someone opens the tab (`app_home_opened` → views.publish) and again for everyone who
opened it recently whenever an alert changes (`services.extra["refresh_home"]`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from slack_bolt import App
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

from bot.alerts.exceptions import EXPIRING_WITHIN
from bot.services import Services
from bot.slack import messages as msg
from bot.slack.cards import SECTION_TEXT, buttons, status_line
from bot.slack.mrkdwn import inert_view, truncate

log = logging.getLogger(__name__)
VIEW_BLOCKS = 100  # Slack: blocks per Home tab view
SHOWN_ALERTS = 25  # three blocks each, leaving room for exceptions and pollers
REMEMBERED_VIEWERS = 50


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_TEXT)))


def home_view(services: Services) -> View:
    """The Home tab as it should look now."""
    alerts = services.alerts.open_alerts()
    blocks: list[Block] = [HeaderBlock(text=msg.home_alerts_head(len(alerts)))]
    if not alerts:
        blocks.append(_section(msg.HOME_NO_ALERTS))
    for alert in alerts[:SHOWN_ALERTS]:
        blocks.append(_section(status_line(alert) + "\n" + msg.home_alert(alert)))
        blocks.append(ActionsBlock(block_id=f"home-{alert.id}", elements=buttons(alert, alert.exposure)))
        blocks.append(DividerBlock())
    if len(alerts) > SHOWN_ALERTS:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=msg.truncated(SHOWN_ALERTS, len(alerts)))]))
    expiring = services.exceptions.expiring(EXPIRING_WITHIN)
    blocks.append(HeaderBlock(text="Exceptions ending within 7 days"))
    lines = [msg.exception_line(row) for row in expiring[:40]] or [msg.HOME_NO_EXPIRING]
    blocks.append(_section("\n".join(lines)))
    health = services.poller.health()
    blocks.append(HeaderBlock(text="Pollers"))
    blocks.append(_section("\n".join(msg.health_line(h) for h in health[:40]) or msg.NO_SOURCES))
    return View(type="home", blocks=blocks[:VIEW_BLOCKS])


def _viewers(services: Services) -> tuple[threading.Lock, OrderedDict[str, None]]:
    found = services.extra.get("home_viewers")
    if found is None:
        found = services.extra["home_viewers"] = (threading.Lock(), OrderedDict())
    return found  # type: ignore[no-any-return]


def publish(services: Services, user: str) -> None:
    """Publish the Home tab for one user; Slack errors are logged, not raised."""
    try:
        services.slack.views_publish(user_id=user, view=inert_view(home_view(services)))
    except (SlackApiError, SlackClientError, OSError) as exc:
        log.warning("views.publish for %s failed: %s", user, type(exc).__name__)


def refresh_all(services: Services) -> None:
    """Republish for everyone who opened Home recently (called when an alert changes)."""
    lock, viewers = _viewers(services)
    with lock:
        users = list(viewers)
    for user in users:
        publish(services, user)


def register(app: App, services: Services) -> None:
    services.extra["refresh_home"] = lambda: refresh_all(services)

    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        user = str(event.get("user") or "")
        if not user:
            return
        lock, viewers = _viewers(services)
        with lock:
            viewers[user] = None
            viewers.move_to_end(user)
            while len(viewers) > REMEMBERED_VIEWERS:
                viewers.popitem(last=False)
        publish(services, user)
