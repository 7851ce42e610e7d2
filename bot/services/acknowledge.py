"""Acknowledge: anyone in the alert channel (or a responder anywhere) moves an alert from open to acknowledged."""

from __future__ import annotations

from bot.alerts.lifecycle import AlertStateError
from bot.services import Services
from bot.services.reply import Reply, missing, send_now
from bot.slack import messages as msg


def acknowledge_in(services: Services, alert_id: int, user: str, channel: str | None) -> Reply:
    """Acknowledge from the slash command or a button, wherever it was pressed.

    DESIGN: "Acknowledge: anyone in the alert channel" — ALERT_CHANNEL, or the card's own channel when
    ROUTES sent it elsewhere. A press or command in that channel shows membership (Slack delivers it
    only to people who can post there); App Home and other channels are for responders only."""
    s = services
    alert = s.alerts.get(alert_id)
    # The alert's channel is where its card went: ALERT_CHANNEL, or the one ROUTES chose.
    in_channel = bool(channel) and channel in (s.settings.alert_channel, alert.channel if alert else None)
    if in_channel or s.permissions.is_responder(user):
        return acknowledge(s, alert_id, user)
    # The refusal is the same whether or not the alert exists: it tells an outsider nothing.
    found = alert.id if alert is not None else None
    s.audit.record(user, "ack", found, "refused", f"from {channel or 'App Home'}, not the alert channel")
    if alert is not None:
        s.notifier.note(alert.id, msg.press_line(user, "Acknowledge", msg.ACK_ELSEWHERE_LINE))
        s.outbox.flush_for(alert.id)
    return Reply(msg.ack_elsewhere(s.settings.alert_channel))


def acknowledge(services: Services, alert_id: int, user: str) -> Reply:
    """Anyone in the channel: open → acknowledged; the card's status line changes in place."""
    alert = services.alerts.get(alert_id)
    if alert is None:
        return missing(services, user, "ack", alert_id)
    try:
        done = services.alerts.transition(alert_id, "acknowledged", user, expect=("open",), slack_user=True)
    except AlertStateError:
        current = services.alerts.get(alert_id) or alert
        services.audit.record(user, "ack", alert_id, f"already_{current.status}")
        services.notifier.note(alert_id, msg.press_line(user, "Acknowledge", msg.already(current)))
        send_now(services, alert_id)
        return Reply(msg.already(current))
    services.audit.record(user, "ack", alert_id, "acknowledged")
    services.notifier.note(alert_id, msg.ack_line(user))
    send_now(services, alert_id)
    return Reply(msg.acked(done), silent=True)
