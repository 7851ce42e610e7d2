"""The "Mark as expected…" modal: a reason and an expiry for one alert, its id in private_metadata."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import InputBlock, MarkdownTextObject, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View

from bot.alerts.lifecycle import Alert
from bot.slack import messages as msg
from bot.slack.mrkdwn import truncate

ALLOW_CALLBACK_ID = "allow_modal"
REASON, EXPIRY = "reason", "expiry"
DEFAULT_EXPIRY = "30d"


def allow_modal(alert: Alert) -> View:
    """The modal for one alert; reason required, expiry defaulting to 30 days."""
    return View(
        type="modal",
        callback_id=ALLOW_CALLBACK_ID,
        private_metadata=str(alert.id),
        title=msg.MODAL_TITLE,
        submit=msg.MODAL_SUBMIT,
        close="Cancel",
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(text=truncate(msg.alert_ref(alert) + "\n" + msg.home_alert(alert), 3000))
            ),
            InputBlock(
                block_id=REASON,
                label=msg.MODAL_REASON_LABEL,
                hint=msg.MODAL_REASON_HINT,
                element=PlainTextInputElement(action_id=REASON, multiline=True, max_length=500),
            ),
            InputBlock(
                block_id=EXPIRY,
                label=msg.MODAL_EXPIRY_LABEL,
                hint=msg.MODAL_EXPIRY_HINT,
                element=PlainTextInputElement(action_id=EXPIRY, initial_value=DEFAULT_EXPIRY, max_length=20),
            ),
        ],
    )


def field_value(view: dict[str, Any], block_id: str) -> str:
    """What was typed into one input of a submitted view."""
    values: dict[str, Any] = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    element: dict[str, Any] = values.get(block_id) or next(iter(values.values()), {})
    return str(element.get("value") or "")
