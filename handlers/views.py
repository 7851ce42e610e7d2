"""The "Mark as expected…" modal's submission: reason and expiry in, an exception and an accepted alert out.

The alert id travels in `private_metadata` and is looked up again on submission, where permission
is checked again too (the modal could have been opened before RESPONDERS changed). Validation errors
go back with `response_action: errors`, which Slack shows under the field.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.services import Services
from bot.services.allow import accept, parse_allow
from bot.slack import messages as msg
from bot.slack.modals import ALLOW_CALLBACK_ID, EXPIRY, REASON, field_value
from handlers.payload import int_value, tell, user_of


def on_allow_submit(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    services: Services = context["services"]
    view = body.get("view") or {}
    reason, expiry = field_value(view, REASON), field_value(view, EXPIRY).strip()
    errors = parse_allow(reason, expiry)
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
    reply = accept(services, alert_id, user, reason, expiry)
    if not reply.silent:
        # A modal has no channel: a refusal goes to the app's direct messages.
        tell(client, body, reply.text)


def register(app: App, services: Services) -> None:
    app.view_submission(ALLOW_CALLBACK_ID)(on_allow_submit)
