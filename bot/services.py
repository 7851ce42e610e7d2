"""The services handlers and jobs use, wired once by `create_app` and passed down.

Each field is a concrete class from its own module; Slack handlers and scheduler jobs receive
this bundle (`register(app, services)`) and never build clients themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.store import Store, utcnow

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.alerts import AlertService
    from bot.audit import AuditLog
    from bot.aws import AwsClients
    from bot.digest import DigestService
    from bot.exceptions import ExceptionList
    from bot.outbox import Outbox
    from bot.permissions import Permissions
    from bot.poller import Poller
    from bot.remediation import Remediator


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
