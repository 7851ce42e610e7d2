"""The services handlers and jobs use, wired once by `bot.app.build_services` and passed down.

Each field is a concrete class from its own module; Slack listeners (through bolt's context) and
scheduler jobs receive this bundle and never build clients themselves. The operations a press or a
subcommand performs live beside it: acknowledge, remediate, allow, who_changed, status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient

from bot.alerts.audit import AuditLog
from bot.alerts.engine import AlertService
from bot.alerts.exceptions import ExceptionList
from bot.aws.clients import AwsClients
from bot.aws.remediation import Remediator
from bot.core.clock import utcnow
from bot.core.config import Settings
from bot.handoff.sender import HandoffSender
from bot.services.ask import AskService
from bot.services.digest import DigestService
from bot.slack.home import HomeTab
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox import Outbox
from bot.slack.permissions import Permissions
from bot.sources.poller import Poller
from bot.sources.who_changed import LookupGuard
from bot.store.database import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    slack: WebClient
    aws: AwsClients
    alerts: AlertService
    notifier: SlackNotifier  # says what the engine reports; thread notes from presses go through it too
    outbox: Outbox
    remediator: Remediator
    exceptions: ExceptionList
    audit: AuditLog
    permissions: Permissions
    digest: DigestService
    poller: Poller
    home: HomeTab
    # One per bot: the LookupEvents fallback of who-changed is bounded however many people ask at once.
    who_changed_guard: LookupGuard
    ask: AskService  # asking the actor (ASK_ACTOR): the DM, the answers' state, the reminder on silence
    clock: Callable[[], datetime] = utcnow
    handoff: HandoffSender | None = None  # PagerDuty and the webhook (bot.handoff); None in tests that skip it
