"""Asking the actor: the DM's buttons (`intended`, `not_me`), the "yes, intended" modal, Approve in the thread.

Each listener acks first; what a press does is in bot.services.ask_answers. "Yes, intended" checks that
the presser is the person asked before opening the modal (within the trigger's 3 seconds), and the
submission checks again: only the person asked ever answers.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import Services
from bot.services.ask_answers import approve, check_actor, intended, not_me
from bot.services.reply import Reply
from bot.slack import ask_messages as say
from bot.slack import messages as msg
from bot.slack.ask import INTENDED_CALLBACK_ID, intended_modal
from bot.slack.mrkdwn import inert_view
from handlers.actions import action_pattern, pressed_id
from handlers.payload import submitted_exception, tell, user_of

log = logging.getLogger(__name__)


def on_not_me(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    alert_id = pressed_id(services, body, client, "not_me")
    if alert_id is not None:
        reply = not_me(services, alert_id, user_of(body))
        if not reply.silent:
            tell(client, body, reply.text)


def on_intended(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    alert_id = pressed_id(services, body, client, "intended")
    if alert_id is None:
        return
    checked = check_actor(services, alert_id, user_of(body), "intended", say.INTENDED_LABEL)
    if isinstance(checked, Reply):
        tell(client, body, checked.text)
        return
    alert, _ = checked
    try:
        # trigger_id is valid for 3 seconds after the press: open the modal before anything slow.
        client.views_open(trigger_id=body.get("trigger_id"), view=inert_view(intended_modal(alert)))
    except SlackApiError as exc:
        log.warning("views.open for alert %s failed: %s", alert_id, exc.response.get("error"),
                    extra={"alert_id": alert_id})
        tell(client, body, msg.GENERIC_ERROR)


def on_intended_submit(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    services: Services = context["services"]
    submitted = submitted_exception(services, ack, body, client, "intended")
    if submitted is None:
        return
    alert_id, reason, expiry = submitted
    reply = intended(services, alert_id, user_of(body), reason, expiry)
    if not reply.silent:
        tell(client, body, reply.text)  # a modal has no channel: this goes to the app's DM


def on_approve(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    request_id = pressed_id(services, body, client, "approve")
    if request_id is not None:
        tell(client, body, approve(services, request_id, user_of(body)).text)


def register(app: App, services: Services) -> None:
    app.action(action_pattern("not_me"))(on_not_me)
    app.action(action_pattern("intended"))(on_intended)
    app.action(action_pattern("approve"))(on_approve)
    app.view_submission(INTENDED_CALLBACK_ID)(on_intended_submit)

