"""Slack listeners, one surface per module; `register(app, services)` wires them all.

Listeners only translate between Slack payloads and bot.services (what a press or a subcommand does).
"""

from __future__ import annotations

from slack_bolt import App

from bot.services import Services
from handlers import actions, ask, commands, home, views


def register(app: App, services: Services) -> None:
    """Register every handler module's listeners on `app`."""
    for module in (commands, actions, views, home, ask):
        module.register(app, services)
