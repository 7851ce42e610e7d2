"""Slack's Block Kit limits, checked and kept: long answers as sections, cut with a note; too many blocks folded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack import messages as msg
from bot.slack.mrkdwn import truncate

# Slack's "Block Kit reference" limits.
MAX_BLOCKS, SECTION_TEXT, FIELD_TEXT, MAX_FIELDS = 50, 3000, 2000, 10
HEADER_TEXT, BUTTON_TEXT, ID_LENGTH, CONTEXT_ELEMENTS, CONFIRM_TEXT = 150, 75, 255, 10, 300

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


def _as_dict(block: Any) -> dict[str, Any]:
    return block.to_dict() if hasattr(block, "to_dict") else dict(block)


def _text(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else str(obj or "")


def validate_blocks(blocks: Sequence[Any]) -> list[str]:
    """Every way `blocks` break Slack's limits (empty list: Slack will accept them)."""
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks (max {MAX_BLOCKS})")
    for index, raw in enumerate(blocks):
        try:
            block = _as_dict(raw)
        except Exception as error:  # slack-sdk validates on to_dict()
            problems.append(f"block {index}: {error}")
            continue
        where, kind = f"block {index} ({block.get('type')})", block.get("type")
        if len(str(block.get("block_id", ""))) > ID_LENGTH:
            problems.append(f"{where}: block_id over {ID_LENGTH}")
        if kind == "header" and len(_text(block.get("text"))) > HEADER_TEXT:
            problems.append(f"{where}: header over {HEADER_TEXT}")
        if kind == "section":
            if len(_text(block.get("text"))) > SECTION_TEXT:
                problems.append(f"{where}: text over {SECTION_TEXT}")
            section_fields = block.get("fields") or []
            if len(section_fields) > MAX_FIELDS:
                problems.append(f"{where}: {len(section_fields)} fields (max {MAX_FIELDS})")
            problems += [
                f"{where}: field over {FIELD_TEXT}" for f in section_fields if len(_text(f)) > FIELD_TEXT
            ]
            if not block.get("text") and not section_fields:
                problems.append(f"{where}: neither text nor fields")
        if kind == "context":
            elements = block.get("elements") or []
            if len(elements) > CONTEXT_ELEMENTS:
                problems.append(f"{where}: {len(elements)} elements (max {CONTEXT_ELEMENTS})")
            problems += [
                f"{where}: element over {SECTION_TEXT}" for e in elements if len(_text(e)) > SECTION_TEXT
            ]
        if kind == "actions":
            for element in block.get("elements") or []:
                if len(_text(element.get("text"))) > BUTTON_TEXT:
                    problems.append(f"{where}: button text over {BUTTON_TEXT}")
                for key in ("action_id", "value"):
                    if len(str(element.get(key, ""))) > ID_LENGTH:
                        problems.append(f"{where}: {key} over {ID_LENGTH}")
                confirm = element.get("confirm")
                if isinstance(confirm, dict) and len(_text(confirm.get("text"))) > CONFIRM_TEXT:
                    problems.append(f"{where}: confirm text over {CONFIRM_TEXT}")
    return problems


def fit_blocks(blocks: Sequence[Block]) -> list[Block]:
    """At most 50 blocks: what does not fit is replaced by a note saying so."""
    if len(blocks) <= MAX_BLOCKS:
        return list(blocks)
    kept = list(blocks[: MAX_BLOCKS - 1])
    note = f"_{len(blocks) - len(kept)} more blocks not shown (Slack allows {MAX_BLOCKS} per message)._"
    return [*kept, ContextBlock(elements=[MarkdownTextObject(text=note)])]
