"""The services handlers and jobs use, wired once by `create_app` and passed down.

Each field is a concrete class from its own module; Slack handlers and scheduler jobs receive
this bundle (`register(app, services)`) and never build clients themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk import WebClient

from bot.alerts.audit import AuditLog
from bot.alerts.engine import AlertService
from bot.alerts.exceptions import ExceptionList
from bot.aws.clients import AwsClients
from bot.aws.remediation import Remediator
from bot.core.clock import utcnow
from bot.core.config import Settings
from bot.services.digest import DigestService
from bot.slack.outbox import Outbox
from bot.slack.permissions import Permissions
from bot.sources.poller import Poller
from bot.store.database import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    slack: WebClient
    aws: AwsClients
    alerts: AlertService
    outbox: Outbox
    remediator: Remediator
    exceptions: ExceptionList
    audit: AuditLog
    permissions: Permissions
    digest: DigestService
    poller: Poller
    clock: Callable[[], datetime] = utcnow
    extra: dict[str, Any] = field(default_factory=dict)
