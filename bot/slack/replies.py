"""Block Kit for answers to a press: the fix prompt with its danger button, the fix's thread line with Undo."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.alerts.lifecycle import Alert
from bot.slack import fix_messages as fix_msg
from bot.slack.blocks import SECTION_TEXT
from bot.slack.cards import fix_confirm
from bot.slack.mrkdwn import truncate


def fix_button(alert: Alert) -> ButtonElement:
    """The same danger button and confirm dialog as the card's."""
    return ButtonElement(
        text="Re-enable Block Public Access",
        action_id="fix",
        value=str(alert.id),
        style="danger",
        confirm=fix_confirm(alert, alert.exposure),
    )


def fix_prompt_blocks(alert: Alert, plan_summary: str) -> list[Block]:
    """`fix <bucket>`: what a fix would change for one alert, and its button."""
    return [
        SectionBlock(text=MarkdownTextObject(text=truncate(fix_msg.fix_prompt(alert, plan_summary), SECTION_TEXT))),
        ActionsBlock(block_id=f"bw-fix-{alert.id}", elements=[fix_button(alert)]),
    ]


def undo_button(remediation_id: int) -> ButtonElement:
    return ButtonElement(
        text="Undo",
        action_id="undo",
        value=str(remediation_id),
        confirm=ConfirmObject(title=fix_msg.UNDO_CONFIRM_TITLE, text=fix_msg.UNDO_CONFIRM_TEXT, confirm="Undo",
                              deny="Cancel"),
    )


def fixed_blocks(lines: list[str], request_id: str, remediation_id: int | None) -> list[Block]:
    """The fix's line in the card's thread: before → after per flag, the live check, the request id, Undo."""
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(lines), SECTION_TEXT)))]
    if request_id:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"AWS request id `{request_id[:100]}`")]))
    if remediation_id is not None:
        blocks.append(ActionsBlock(block_id=f"bw-undo-{remediation_id}", elements=[undo_button(remediation_id)]))
    return blocks
