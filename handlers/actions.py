"""Buttons on the card, in threads and on App Home: ack, fix, undo, who_changed, allow.

Action ids match by word (`ack`, `bw_ack`, `ack-home` …) so surfaces may prefix or suffix them. A
button's value is an alert id (a remediation id for Undo) and nothing more; it is looked up server-side.
Every listener acks first; the work (AWS, Slack) runs after, in bolt's listener thread.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import Services
from bot.services.acknowledge import acknowledge_in
from bot.services.allow import stale_allow
from bot.services.remediate import fix, undo
from bot.services.reply import missing, refuse
from bot.services.who_changed import who_changed
from bot.slack import messages as msg
from bot.slack.modals import allow_modal
from bot.slack.mrkdwn import inert_view
from handlers.payload import channel_of, int_value, tell, user_of

log = logging.getLogger(__name__)
ACTION_IDS = ("ack", "fix", "undo", "who_changed", "allow")


def action_pattern(name: str) -> re.Pattern[str]:
    """`name` as a whole word of the action id: a prefix or suffix is fine, `allowlist` is not `allow`."""
    return re.compile(rf"(?:^|[^a-z]){re.escape(name)}(?:[^a-z]|$)")


def button_value(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def pressed_id(services: Services, body: dict[str, Any], client: WebClient, action: str) -> int | None:
    """The id a button carries; a button whose value names nothing is audited and told it is stale."""
    value = int_value(button_value(body))
    if value is None:
        # Every press leaves an audit row, even one whose button no longer names anything.
        services.audit.record(user_of(body), action, None, "stale_button", button_value(body)[:100])
        tell(client, body, msg.STALE_BUTTON)
    return value


def on_ack(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    alert_id = pressed_id(services, body, client, "ack")
    if alert_id is not None:
        reply = acknowledge_in(services, alert_id, user_of(body), channel_of(body))
        if not reply.silent:
            tell(client, body, reply.text)


def on_fix(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    alert_id = pressed_id(services, body, client, "fix")
    if alert_id is not None:
        tell(client, body, fix(services, alert_id, user_of(body)).text)


def on_undo(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    remediation_id = pressed_id(services, body, client, "undo")
    if remediation_id is not None:
        tell(client, body, undo(services, user_of(body), remediation_id=remediation_id).text)


def on_who_changed(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    alert_id = pressed_id(services, body, client, "who_changed")
    if alert_id is None:
        return
    alert = services.alerts.get(alert_id)
    if alert is None:
        tell(client, body, missing(services, user_of(body), "who_changed", alert_id).text)
        return
    reply = who_changed(services, alert.bucket or "", user_of(body), alert=alert)
    tell(client, body, reply.text, reply.block_dicts())


def on_allow(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    alert_id = pressed_id(services, body, client, "allow")
    if alert_id is None:
        return
    user = user_of(body)
    alert = services.alerts.get(alert_id)
    if alert is None:
        tell(client, body, missing(services, user, "allow", alert_id).text)
        return
    refusal = refuse(services, user, "allow", "Mark as expected", alert_id)
    if refusal is not None:
        tell(client, body, refusal.text)
        return
    if not alert.is_open:
        tell(client, body, stale_allow(services, alert, user).text)
        return
    try:
        # trigger_id is valid for 3 seconds after the press: open the modal before anything slow.
        client.views_open(trigger_id=body.get("trigger_id"), view=inert_view(allow_modal(alert)))
    except SlackApiError as exc:
        log.warning("views.open for alert %s failed: %s", alert_id, exc.response.get("error"),
                    extra={"alert_id": alert_id})
        tell(client, body, msg.GENERIC_ERROR)


def register(app: App, services: Services) -> None:
    for name, listener in (("ack", on_ack), ("fix", on_fix), ("undo", on_undo),
                           ("who_changed", on_who_changed), ("allow", on_allow)):
        app.action(action_pattern(name))(listener)
