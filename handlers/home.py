"""App Home: `app_home_opened` publishes the tab (bot.slack.home builds it and refreshes it on changes)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from bot.services import Services


def on_home_opened(event: dict[str, Any], context: BoltContext) -> None:
    """Publish the Home tab for whoever opened it (the Messages tab is not ours to fill)."""
    services: Services = context["services"]
    user = str(event.get("user") or "")
    if event.get("tab", "home") == "home" and user:
        services.home.opened(user)


def register(app: App, services: Services) -> None:
    app.event("app_home_opened")(on_home_opened)
