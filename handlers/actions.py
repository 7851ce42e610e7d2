"""Buttons on the card, in threads and on App Home: ack, fix, undo, who_changed, allow.

Action ids match by word (`ack`, `bw_ack`, `ack-home` …) so surfaces may prefix or suffix them. A
button's value is an alert id (a remediation id for Undo) and nothing more; it is looked up here.
Every listener acks first; the work (AWS, Slack) runs after, in bolt's listener thread.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import Services
from bot.services import operations as ops
from bot.slack import messages as msg
from bot.slack.mrkdwn import inert_view
from handlers.payload import channel_of, int_value, tell, user_of
from handlers.views import allow_modal

log = logging.getLogger(__name__)


def action_pattern(name: str) -> re.Pattern[str]:
    """`name` as a whole word of the action id: a prefix or suffix is fine, `allowlist` is not `allow`."""
    return re.compile(rf"(?:^|[^a-z]){re.escape(name)}(?:[^a-z]|$)")


ACTION_IDS = ("ack", "fix", "undo", "who_changed", "allow")


def button_value(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def register(app: App, services: Services) -> None:
    def stale(body: dict[str, Any], client: WebClient, action: str) -> None:
        # Every press leaves an audit row, even one whose button no longer names anything.
        services.audit.record(user_of(body), action, None, "stale_button", button_value(body)[:100])
        tell(client, body, msg.STALE_BUTTON)

    def pressed(body: dict[str, Any], client: WebClient, action: str) -> int | None:
        alert_id = int_value(button_value(body))
        if alert_id is None:
            stale(body, client, action)
        return alert_id

    @app.action(action_pattern("ack"))
    def on_ack(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        alert_id = pressed(body, client, "ack")
        if alert_id is not None:
            reply = ops.acknowledge_in(services, alert_id, user_of(body), channel_of(body))
            if not reply.silent:
                tell(client, body, reply.text)

    @app.action(action_pattern("fix"))
    def on_fix(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        alert_id = pressed(body, client, "fix")
        if alert_id is not None:
            reply = ops.fix(services, alert_id, user_of(body))
            tell(client, body, reply.text)

    @app.action(action_pattern("undo"))
    def on_undo(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        remediation_id = int_value(button_value(body))
        if remediation_id is None:
            stale(body, client, "undo")
            return
        reply = ops.undo(services, user_of(body), remediation_id=remediation_id)
        tell(client, body, reply.text)

    @app.action(action_pattern("who_changed"))
    def on_who_changed(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        alert_id = pressed(body, client, "who_changed")
        if alert_id is None:
            return
        alert = services.alerts.get(alert_id)
        if alert is None:
            tell(client, body, ops.missing(services, user_of(body), "who_changed", alert_id).text)
            return
        reply = ops.who_changed(services, alert.bucket or "", user_of(body), alert=alert)
        tell(client, body, reply.text, ops.as_dicts(reply.blocks))

    @app.action(action_pattern("allow"))
    def on_allow(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        alert_id = pressed(body, client, "allow")
        if alert_id is None:
            return
        user = user_of(body)
        alert = services.alerts.get(alert_id)
        if alert is None:
            tell(client, body, ops.missing(services, user, "allow", alert_id).text)
            return
        refusal = ops.refuse(services, user, "allow", "Mark as expected", alert_id)
        if refusal is not None:
            tell(client, body, refusal.text)
            return
        if not alert.is_open:
            services.audit.record(user, "allow", alert_id, f"already_{alert.status}")
            tell(client, body, msg.already(alert))
            return

        try:
            # trigger_id is valid for 3 seconds after the press: open the modal before anything slow.
            client.views_open(trigger_id=body.get("trigger_id"), view=inert_view(allow_modal(alert)))
        except SlackApiError as exc:
            log.warning("views.open for alert %s failed: %s", alert_id, exc.response.get("error"))
            tell(client, body, msg.GENERIC_ERROR)
