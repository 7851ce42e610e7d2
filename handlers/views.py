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
from bot.services.allow import accept
from bot.slack.modals import ALLOW_CALLBACK_ID
from handlers.payload import submitted_exception, tell, user_of


def on_allow_submit(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    services: Services = context["services"]
    submitted = submitted_exception(services, ack, body, client, "allow")
    if submitted is None:
        return
    alert_id, reason, expiry = submitted
    user = user_of(body)
    reply = accept(services, alert_id, user, reason, expiry)
    if not reply.silent:
        # A modal has no channel: a refusal goes to the app's direct messages.
        tell(client, body, reply.text)


def register(app: App, services: Services) -> None:
    app.view_submission(ALLOW_CALLBACK_ID)(on_allow_submit)
