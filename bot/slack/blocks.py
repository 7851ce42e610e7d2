"""Long answers as Block Kit sections within Slack's limits, with a note when they are cut."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack import messages as msg
from bot.slack.cards import MAX_BLOCKS, SECTION_TEXT
from bot.slack.mrkdwn import truncate

# Slack's own limits (SECTION_TEXT, MAX_BLOCKS) live in bot.cards. This one is ours: Slack truncates very
# long messages and they read badly on a phone, so past it `sections` cuts with a note.
MESSAGE_TEXT = 12000


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

        text = " ".join(t for t in (msg.truncated(shown, total) if shown < total else "", note) if t)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(text, SECTION_TEXT))]))
    return blocks
