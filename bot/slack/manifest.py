"""The Slack app manifest for the configured command name and mode (`python -m bot manifest`).

Slack accepts manifests as JSON or YAML (api.slack.com/reference/manifests); JSON needs no extra
dependency. `doctor` compares the token's scopes with `BOT_SCOPES`, so the two never drift apart.
Socket Mode also needs an app-level token (xapp-…, `SLACK_APP_TOKEN`) with the `connections:write`
scope; a manifest cannot create it: Basic Information → App-Level Tokens → Generate.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot.core.config import ConfigError, Settings

# Scope → the Web API methods that need it. Only what the bot calls; doctor checks each.
BOT_SCOPES: dict[str, str] = {
    "chat:write": "chat.postMessage, chat.update, chat.postEphemeral (cards, threads, refusals)",
    "commands": "the slash command",
    "usergroups:read": "usergroups.users.list (RESPONDERS given as user groups)",
    "channels:read": "conversations.info on a public ALERT_CHANNEL (doctor)",
    "groups:read": "conversations.info on a private ALERT_CHANNEL (doctor)",
    "channels:history": "conversations.history on a public ALERT_CHANNEL (finding a card whose post timed out)",
    "groups:history": "conversations.history on a private ALERT_CHANNEL (finding a card whose post timed out)",
    # Asking the actor (ASK_ACTOR): find the person by email, open a DM, find a DM whose post timed out.
    "users:read": "users.info; required by Slack alongside users:read.email",
    "users:read.email": "users.lookupByEmail (ASK_ACTOR: find the person behind a change)",
    "im:write": "conversations.open (ASK_ACTOR: the DM to the person behind a change)",
    "im:history": "conversations.history on that DM (ASK_ACTOR: finding a DM whose post timed out)",
}
# Without these the bot cannot post alerts or answer at all; the rest degrade one feature.
ESSENTIAL_SCOPES = ("chat:write", "commands")
REQUEST_URL = "https://YOUR-HOST.example.com/slack/events"
EVENTS_PATH = "/slack/events"
# The app-level token's one scope: open the Socket Mode WebSocket (apps.connections.open).
APP_TOKEN_SCOPE = "connections:write"  # noqa: S105 (a scope name, not a secret)
USAGE_HINT = "who-changed <bucket> [days] | alerts | ack <id> | fix <bucket> | undo <id> | allow … | help"


def request_url(url: str) -> str:
    """`--url` as Slack's request URL: https only (Slack refuses plain http), /slack/events when no path."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"manifest --url: Slack sends requests only to an https:// URL, got {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"manifest --url: no query or fragment, got {url!r}")
    path = parts.path.rstrip("/") or EVENTS_PATH
    return urlunsplit(("https", parts.netloc, path, "", ""))


def build_manifest(settings: Settings, *, url: str | None = None, socket_mode: bool | None = None) -> dict[str, Any]:
    """The manifest as a dict: scopes, slash command, interactivity, App Home, Socket Mode on or off.

    `socket_mode` overrides the mode SLACK_APP_TOKEN implies; `url` replaces the YOUR-HOST placeholder
    (HTTP mode only: a Socket Mode app has no request URL).
    """
    socket = settings.socket_mode if socket_mode is None else socket_mode
    if socket and url:
        raise ConfigError("manifest: --url is for HTTP mode; Socket Mode needs no request URL")
    endpoint = request_url(url) if url else REQUEST_URL
    http = not socket
    command: dict[str, Any] = {
        "command": settings.slash_command,
        "description": "Who opened an S3 bucket, open alerts, fix, undo, exceptions",
        "usage_hint": USAGE_HINT,
        "should_escape": False,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    events: dict[str, Any] = {"bot_events": ["app_home_opened"]}
    if http:
        # In HTTP mode every surface posts to the same endpoint; Socket Mode needs no public URL.
        command["url"] = endpoint
        interactivity["request_url"] = endpoint
        events["request_url"] = endpoint
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "bucketwatch",
            "description": "Tells the security channel when an S3 bucket is opened to the public.",
            "background_color": "#7a1f1f",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                # Refusals from App Home buttons arrive as a direct message from the app.
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": "bucketwatch", "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": sorted(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket,
            "token_rotation_enabled": False,
        },
    }


