"""Slack listeners, one surface per module; `register(app, services)` wires them all.

Listeners only translate between Slack payloads and `handlers.operations` (what a press or a
subcommand does); user-facing text comes from bot.messages. Helpers shared by the modules live here.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.cards import MAX_BLOCKS, SECTION_TEXT
from bot.mrkdwn import truncate
from bot.permissions import slack_error

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services

log = logging.getLogger(__name__)

# Slack's own limits (SECTION_TEXT, MAX_BLOCKS) live in bot.cards. This one is ours: Slack truncates very
# long messages and they read badly on a phone, so past it `sections` cuts with a note.
MESSAGE_TEXT = 12000


def register(app: App, services: Services) -> None:
    """Register every handler module's listeners on `app`."""
    from handlers import actions, commands, home, views

    for module in (commands, actions, views, home):
        module.register(app, services)


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
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=truncate(text, SECTION_TEXT), blocks=blocks)
        else:
            client.chat_postMessage(channel=user, text=truncate(text, SECTION_TEXT), blocks=blocks)
    except (SlackApiError, SlackClientError, OSError) as exc:
        # The press itself was handled and audited; only the private reply was lost.
        log.warning("could not tell %s: %s", user, slack_error(exc))


def deliver(services: Services, alert_id: int | None = None, *, wait: float = 3.0) -> None:
    """Send what the press put in the outbox now (card update, thread lines), not at the next job."""
    deadline = time.monotonic() + wait
    while True:
        services.outbox.flush()
        if alert_id is None or not _due_for(services, alert_id) or time.monotonic() > deadline:
            return
        # Another thread held the flush lock: its pass may have missed our rows; go again shortly.
        time.sleep(0.05)


def _due_for(services: Services, alert_id: int) -> bool:
    row = services.store.db.execute(
        "SELECT count(*) FROM outbox o JOIN alerts a ON a.id = o.alert_id"
        " WHERE o.alert_id = ? AND o.sent_at IS NULL AND o.attempts = 0 AND (a.ts IS NOT NULL OR o.kind = 'card')",
        [alert_id],
    ).fetchone()
    return bool(row and row[0])


def sections(
    head: str,
    lines: list[str],
    *,
    max_blocks: int = MAX_BLOCKS - 2,
    max_chars: int = MESSAGE_TEXT,
    note: str = "",
    total: int | None = None,
) -> list[Block]:
    """`head` then `lines` packed into section blocks under Slack's limits, with a note when cut.

    `total`: how many items exist when `lines` holds only the first of them."""
    total = len(lines) if total is None else total
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate(head, SECTION_TEXT)))]
    chunk: list[str] = []
    shown = 0
    used = len(head)
    for line in lines:
        line = truncate(line, SECTION_TEXT)
        used += len(line) + 1
        if used > max_chars:
            break
        if chunk and len("\n".join([*chunk, line])) > SECTION_TEXT:
            if len(blocks) + 1 >= max_blocks:
                break
            blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
            chunk = []
        chunk.append(line)
        shown += 1
    if chunk:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
    if shown < total or note:
        from bot import messages as msg

        text = " ".join(t for t in (msg.truncated(shown, total) if shown < total else "", note) if t)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(text, SECTION_TEXT))]))
    return blocks

