"""Reading Slack payloads (who pressed, where, which id) and answering the presser privately."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.services import Services
from bot.services.allow import parse_allow
from bot.slack import messages as msg
from bot.slack.blocks import SECTION_TEXT
from bot.slack.modals import EXPIRY, REASON, field_value
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


def submitted_exception(services: Services, ack: Ack, body: dict[str, Any], client: WebClient, action: str
                        ) -> tuple[int, str, str] | None:
    """A submitted reason-and-expiry modal ("Mark as expected…", "Yes, intended"): (alert id, reason,
    expiry), the modal closed. None when its fields were refused (the modal shows why) or it names no alert
    (audited, and the presser told)."""
    view = body.get("view") or {}
    reason, expiry = field_value(view, REASON), field_value(view, EXPIRY).strip()
    errors = parse_allow(reason, expiry)
    if errors:
        ack(response_action="errors", errors=errors)
        return None
    ack()  # closes the modal; the outcome shows on the card and in its thread
    alert_id = int_value(view.get("private_metadata"))
    if alert_id is None:
        services.audit.record(user_of(body), action, None, "stale_button", str(view.get("private_metadata"))[:100])
        tell(client, body, msg.STALE_BUTTON)
        return None
    return alert_id, reason, expiry
