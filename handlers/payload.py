"""Reading Slack payloads (who pressed, where, which id) and answering the presser privately."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack.blocks import SECTION_TEXT
from bot.slack.mrkdwn import inert, truncate
from bot.slack.permissions import slack_error

log = logging.getLogger(__name__)


def user_of(body: dict[str, Any]) -> str:
    """The Slack user id of whoever pressed or typed (slash commands carry it flat)."""
    found = body.get("user")
    if isinstance(found, dict):
        return str(found.get("id") or "")
    return str(body.get("user_id") or "")


def channel_of(body: dict[str, Any]) -> str | None:
    """The channel a press happened in; None on App Home (no channel to be ephemeral in)."""
    channel = body.get("channel")
    if isinstance(channel, dict) and channel.get("id"):
        return str(channel["id"])
    container = body.get("container") or {}
    return str(container["channel_id"]) if container.get("channel_id") else body.get("channel_id")


def int_value(text: Any) -> int | None:
    """A button value or an argument as an id: digits only (a leading # is fine), else None."""
    value = str(text or "").strip().lstrip("#")
    return int(value) if value.isdigit() and len(value) < 12 else None


def tell(client: WebClient, body: dict[str, Any], text: str, blocks: list[Any] | None = None) -> None:
    """Say something to the presser only: ephemeral in the channel, else a direct message (App Home)."""
    user, channel = user_of(body), channel_of(body)
    blocks = inert(blocks) if blocks else None
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=truncate(text, SECTION_TEXT), blocks=blocks)
        else:
            client.chat_postMessage(channel=user, text=truncate(text, SECTION_TEXT), blocks=blocks)
    except (SlackApiError, SlackClientError, OSError) as exc:
        # The press itself was handled and audited; only the private reply was lost.
        log.warning("could not tell %s: %s", user, slack_error(exc))
