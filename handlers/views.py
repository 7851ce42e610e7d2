"""The "Mark as expected…" modal: reason and expiry in, an exception and an accepted alert out.

The alert id travels in `private_metadata` and is looked up again on submission, where permission
is checked again too (the modal could have been opened before RESPONDERS changed). Validation errors
go back with `response_action: errors`, which Slack shows under the field.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import InputBlock, MarkdownTextObject, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View

from bot.alerts.lifecycle import Alert
from bot.services import Services
from bot.services import operations as ops
from bot.slack import messages as msg
from bot.slack.mrkdwn import truncate
from handlers.payload import int_value, tell, user_of

log = logging.getLogger(__name__)
CALLBACK_ID = "allow_modal"
REASON, EXPIRY = "reason", "expiry"


def allow_modal(alert: Alert) -> View:
    """The modal for one alert; reason required, expiry defaulting to 30 days."""
    return View(
        type="modal",
        callback_id=CALLBACK_ID,
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
                element=PlainTextInputElement(action_id=EXPIRY, initial_value=ops.DEFAULT_ALLOW, max_length=20),
            ),
        ],
    )


def _field(view: dict[str, Any], block_id: str) -> str:
    values: dict[str, Any] = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    element: dict[str, Any] = values.get(block_id) or next(iter(values.values()), {})
    return str(element.get("value") or "")


def register(app: App, services: Services) -> None:
    @app.view_submission(CALLBACK_ID)
    def on_submit(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        view = body.get("view") or {}
        reason, expiry = _field(view, REASON), _field(view, EXPIRY).strip()
        errors = ops.parse_allow(reason, expiry)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()  # closes the modal; the outcome shows on the card and in its thread
        user = user_of(body)
        alert_id = int_value(view.get("private_metadata"))
        if alert_id is None:
            services.audit.record(user, "allow", None, "stale_button", str(view.get("private_metadata"))[:100])
            tell(client, body, msg.STALE_BUTTON)
            return
        reply = ops.accept(services, alert_id, user, reason, expiry)
        if not reply.silent:
            # A modal has no channel: a refusal goes to the app's direct messages.
            tell(client, body, reply.text)
