"""Block Kit for asking the actor: the DM with its two buttons, the "yes, intended" modal, the approve button.

Action ids follow ../shared/DESIGN.md: the DM's buttons contain `intended` and `not_me`. Button values
carry only the alert id (or the request id for Approve); handlers look everything up server-side.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.alerts.exception_requests import ExceptionRequest
from bot.alerts.lifecycle import Alert
from bot.core.exposure import ExposureVerdict
from bot.slack import ask_messages as say
from bot.slack import messages as msg
from bot.slack.blocks import SECTION_TEXT
from bot.slack.modals import DEFAULT_EXPIRY, EXPIRY, REASON
from bot.slack.mrkdwn import code, escape, slack_date, truncate
from detections.base import Finding

INTENDED_ACTION, NOT_ME_ACTION = "ask_intended", "ask_not_me"
APPROVE_ACTION = "approve_exception"
INTENDED_CALLBACK_ID = "ask_intended_modal"
METADATA_TYPE = "bucketwatch_ask"  # the DM's Slack message metadata: found again after a crash, not resent


def public_now(verdict: ExposureVerdict | None) -> str:
    if verdict is None or verdict.public_now is None:
        return "not known whether public now"
    return "*public now*" if verdict.public_now else "not public now"


def change_line(finding: Finding | None, alert: Alert) -> str:
    """What changed, in a few words: the first before → after, else the finding's title."""
    if finding is None:
        return escape(alert.title)
    if finding.changes:
        first = finding.changes[0]
        more = f" (+{len(finding.changes) - 1} more)" if len(finding.changes) > 1 else ""
        return f"{code(first.what)} {escape(first.before)} → {escape(first.after)}{more}"
    return escape(finding.title)


def dm(alert: Alert, finding: Finding | None, verdict: ExposureVerdict | None, channel: str
       ) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of the question to the actor."""
    when = slack_date(finding.event_time) if finding and finding.event_time else "recently"
    where_from = (f"{code(finding.source_ip, empty='unknown')} ({escape(finding.agent_kind)})"
                  if finding else "_unknown_")
    text = say.dm_text(alert, change_line(finding, alert), when, where_from, public_now(verdict))
    value = str(alert.id)
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_TEXT))),
        ActionsBlock(block_id=f"bw-ask-{alert.id}", elements=[
            ButtonElement(text=say.INTENDED_LABEL, action_id=INTENDED_ACTION, value=value, style="primary"),
            ButtonElement(text=say.NOT_ME_LABEL, action_id=NOT_ME_ACTION, value=value, style="danger"),
        ]),
        ContextBlock(elements=[MarkdownTextObject(text=say.dm_context(alert, channel))]),
    ]
    target = alert.label  # the bucket, the access point, or the account
    return truncate(escape(f"Did you change {target}? {alert.title}"), SECTION_TEXT), blocks


def answered(answer: str, request: ExceptionRequest | None = None) -> tuple[str, list[Block]]:
    """The DM once answered: the buttons are gone, the answer stays."""
    text = say.dm_answered(answer, request.duration if request else None)
    return text, [SectionBlock(text=MarkdownTextObject(text=text))]


def intended_modal(alert: Alert) -> View:
    """Reason and expiry for the exception the actor asks for; the alert id in private_metadata."""
    return View(
        type="modal",
        callback_id=INTENDED_CALLBACK_ID,
        private_metadata=str(alert.id),
        title=say.MODAL_TITLE,
        submit=say.MODAL_SUBMIT,
        close="Cancel",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=truncate(msg.alert_ref(alert) + "\n" + msg.home_alert(alert),
                                                               SECTION_TEXT))),
            InputBlock(block_id=REASON, label=say.MODAL_REASON_LABEL, hint=say.MODAL_REASON_HINT,
                       element=PlainTextInputElement(action_id=REASON, multiline=True, max_length=500)),
            InputBlock(block_id=EXPIRY, label=msg.MODAL_EXPIRY_LABEL, hint=msg.MODAL_EXPIRY_HINT,
                       element=PlainTextInputElement(action_id=EXPIRY, initial_value=DEFAULT_EXPIRY, max_length=20)),
        ],
    )


def intended_blocks(actor: str, request: ExceptionRequest) -> tuple[str, list[Block]]:
    """The thread line of a requested exception, with the responders' one-click Approve."""
    text = say.intended_note(actor, request)
    return truncate(text, SECTION_TEXT), [
        SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_TEXT))),
        ActionsBlock(block_id=f"bw-approve-{request.id}", elements=[
            ButtonElement(text=say.APPROVE_LABEL, action_id=APPROVE_ACTION, value=str(request.id), style="primary"),
        ]),
    ]
