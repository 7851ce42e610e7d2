"""What every press and subcommand shares: the answer to the presser, refusals, and sending at once.

Each operation (bot.services.acknowledge, remediate, allow, who_changed, status) checks permission,
acts through the services, writes the audit row and the line in the card's thread (allowed or
refused, per DESIGN "Who may do what"), sends them, and returns the mrkdwn to show the presser.
Alert ids come from button values or typed text and are looked up here; nothing else in a payload
is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block

from bot.services import Services
from bot.slack import messages as msg
from bot.slack.mrkdwn import inert


@dataclass
class Reply:
    """What the presser sees: text, and blocks when there is more than a line to show."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    silent: bool = False  # the card shows it already; a private note would only repeat it

    def block_dicts(self) -> list[dict[str, Any]] | None:
        # mrkdwn objects verbatim: attacker text cannot auto-link or mention.
        return inert(self.blocks) if self.blocks else None


def send_now(services: Services, alert_id: int) -> None:
    """Send the card update and thread lines a press queued now, and refresh App Home for its viewers."""
    services.outbox.flush_for(alert_id)
    services.home.refresh_all()


def refuse(services: Services, user: str, action: str, label: str, alert_id: int | None) -> Reply | None:
    """None when `user` may do responder work; else the audited, threaded refusal."""
    if services.permissions.is_responder(user):
        return None
    services.audit.record(user, action, alert_id, "refused", "not a responder")
    if alert_id is not None:
        services.notifier.note(alert_id, msg.press_line(user, label, msg.REFUSED_LINE))
        services.outbox.flush_for(alert_id)
    return Reply(msg.refused(services.permissions.describe(label.lower())))


def missing(services: Services, user: str, action: str, alert_id: int) -> Reply:
    """The audited answer to a press or command naming an alert that does not exist."""
    services.audit.record(user, action, alert_id, "not_found")
    return Reply(msg.no_alert(alert_id))
