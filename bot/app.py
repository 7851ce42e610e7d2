"""The composition root: every service wired once, and the bolt App with its listeners.

Nothing happens at import. `create_app(settings)` builds the WebClient (SLACK_API_URL, slack-sdk's
retry handlers), the services, the bolt App, and registers every handler module; tests pass their
own client, store or AWS clients in. Only the command line (bot.cli) imports this module: `run`
adds logging, the scheduler and a transport (bot.slack.transport, where bot.slack.verify refuses unsigned,
forged, stale or oversized requests before bolt reads anything).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

import handlers
from bot.alerts.allow_tag import AllowedPublic
from bot.alerts.audit import AuditLog
from bot.alerts.engine import AlertService
from bot.alerts.events import AlertEvent
from bot.alerts.exceptions import ExceptionList
from bot.aws.aliases import AccountAliases
from bot.aws.clients import AwsClients
from bot.aws.exposure import access_point_verdict, live_verdict
from bot.aws.remediation import Remediator
from bot.core.config import Settings
from bot.core.exposure import ExposureVerdict
from bot.core.record import Record
from bot.handoff.notifier import HandoffNotifier
from bot.handoff.queue import HandoffQueue
from bot.handoff.sender import HandoffSender
from bot.handoff.targets import configured_targets
from bot.services import Services
from bot.services.ask import AskService
from bot.services.digest import DigestService
from bot.slack import messages as msg
from bot.slack.errors import slack_failure
from bot.slack.health import Health, SlackAuth
from bot.slack.home import HomeTab
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox import Outbox
from bot.slack.permissions import Permissions
from bot.slack.webclient import retry_handlers
from bot.sources.poller import Poller
from bot.sources.who_changed import LookupGuard
from bot.store.database import Store
from handlers.payload import tell

log = logging.getLogger(__name__)


def build_web_client(settings: Settings) -> WebClient:
    """The Web API client: SLACK_API_URL (GovSlack, proxies), brief in-call retries on 5xx and dropped
    connections. Rate limits are not retried in the call (that sleeps Retry-After inside it): the outbox
    reschedules a 429'd message after Retry-After and sends the rest meanwhile (bot.slack.outbox)."""

    return WebClient(
        token=settings.slack_bot_token or None,
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(),
        timeout=15,
    )


def build_services(settings: Settings, slack: WebClient, store: Store, aws: AwsClients) -> Services:
    """Every service, wired once: alerts post through the outbox; the poller feeds the alerts."""

    def verdict(account: str, bucket: str | None, region: str, keys: tuple[str, ...] = ()) -> ExposureVerdict:
        s3, s3control = aws.client("s3", account, region), aws.client("s3control", account, region)
        return live_verdict(s3, s3control, account, bucket, object_keys=keys)

    def point_verdict(account: str, region: str, name: str) -> ExposureVerdict:
        s3, s3control = aws.client("s3", account, region), aws.client("s3control", account, region)
        return access_point_verdict(s3, s3control, account, name)

    def recheck(account: str, bucket: str | None, region: str) -> bool | None:
        return verdict(account, bucket, region).public_now

    exceptions = ExceptionList(store)
    outbox = Outbox(store, slack, settings.alert_channel)
    # S3 (bucket tags) follows a bucket to its region; IAM is global: the first region serves both.
    home = settings.home_region
    # The allow list, then the bucket's own tag bucketwatch:public=allowed.
    allowed = AllowedPublic(exceptions.active_for, lambda account: aws.client("s3", account, home))
    aliases = AccountAliases(lambda account: aws.client("iam", account, home))
    alerts = AlertService(store, verdict_fn=verdict, exceptions_fn=allowed, access_point_verdict_fn=point_verdict)
    # The engine reports; the notifier turns each event into outbox items in the same transaction.
    notifier = SlackNotifier(alerts, outbox, alias_fn=aliases, route=settings.channel_for, muted=settings.muted)
    # Hand-offs (PagerDuty, the signed webhook) hear the same events, beside Slack and independent of it.
    targets = configured_targets(settings)
    handoff_queue = HandoffQueue(store)
    handoff = HandoffNotifier(alerts, handoff_queue, tuple(targets), muted=settings.muted)

    def notify(event: AlertEvent) -> None:
        notifier(event)
        handoff(event)

    alerts.notify = notify
    poller = Poller(settings, store, aws)
    # Asking the actor listens for new alerts in the engine's transaction and adds a line to each card.
    ask = AskService(settings, store, slack, outbox, notifier, alerts, exceptions)
    notifier.listeners.append(ask.on_event)
    notifier.ask_line = ask.card_line
    services = Services(
        settings=settings,
        store=store,
        slack=slack,
        aws=aws,
        alerts=alerts,
        notifier=notifier,
        outbox=outbox,
        remediator=Remediator(store, aws, dry_run=settings.dry_run),
        exceptions=exceptions,
        audit=AuditLog(store),
        permissions=Permissions(settings.responders, slack),
        # The digest names the configured sources (and says when there are none) before anything else.
        digest=DigestService(store, tz=settings.digest_tz, digest_time=settings.digest_time, recheck=recheck,
                             sources=poller.source_names, muted=settings.muted,
                             min_severity=settings.min_severity, poller_stale_after=poller.late_after),
        poller=poller,
        home=HomeTab(slack, alerts, exceptions, poller.health),
        who_changed_guard=LookupGuard(),
        handoff=HandoffSender(handoff_queue, targets),
        ask=ask,
    )

    def on_records(records: list[Record]) -> None:
        changes = alerts.process(records)
        # Without credentials (`poll --once` on a workstation) cards stay queued for the running bot.
        if changes and settings.slack_bot_token and settings.alert_channel:
            outbox.flush()
            if ask.enabled:
                ask.run()  # the DM goes out now, not at the ask job's next run
            services.home.refresh_all()

    poller.on_records = on_records
    return services


def create_app(
    settings: Settings,
    *,
    slack_client: WebClient | None = None,
    store: Store | None = None,
    aws: AwsClients | None = None,
    services: Services | None = None,
) -> tuple[App, Services]:
    """The bolt App with every listener registered, and the services behind it."""

    if services is None:

        slack = slack_client or build_web_client(settings)
        services = build_services(settings, slack, store or Store(settings.db_path), aws or AwsClients(settings))
    bolt_logger = logging.getLogger("bucketwatch.bolt")
    bolt_logger.addFilter(_quiet_token_warning)
    app = App(
        client=services.slack,
        signing_secret=settings.slack_signing_secret,
        # No auth.test at construction: bolt calls it once on the first request instead.
        token_verification_enabled=False,
        process_before_response=False,
        logger=bolt_logger,
    )
    app.use(_services_in_context(services))
    handlers.register(app, services)
    app.error(_error_handler)
    return app, services


def _services_in_context(services: Services) -> Callable[..., Any]:
    """A global middleware: every listener finds the services in bolt's `context["services"]`, so the
    listeners are plain functions that a unit test calls with a context dict."""

    def middleware(context: BoltContext, next: Callable[[], Any]) -> Any:
        context["services"] = services
        return next()

    return middleware


def build_health(services: Services) -> Health:
    """/healthz, /readyz and /metrics over the services' store, outbox, configured sources and Slack client."""
    return Health(
        services.store,
        services.outbox,
        SlackAuth(services.slack),
        services.poller.source_names,
        # With a queue, LookupEvents polls only every SAFETY_NET_FACTOR-th cycle: not late in between.
        poll_seconds=services.settings.poll_seconds * services.poller.lookup_every,
        clock=services.clock,
    )


def _quiet_token_warning(record: logging.LogRecord) -> bool:
    # bolt reads SLACK_BOT_TOKEN itself and warns that the client we pass wins; that is the intent.
    return "will be unused" not in record.getMessage()


def _error_handler(
    error: Exception, body: dict[str, Any], logger: logging.Logger, client: WebClient, respond: Any
) -> None:
    """One place for listener errors: one short line to the person; in the log, a refused Slack call as
    one line with its error code, anything else with its traceback (never the request body)."""
    refused = slack_failure(error)
    if refused is None:
        logger.error("listener failed: %s", type(error).__name__, exc_info=error)
    else:
        logger.error("listener failed: %s", refused)

    try:
        if respond is not None and body.get("command"):
            respond(text=msg.GENERIC_ERROR, response_type="ephemeral", replace_original=False)
        elif body.get("user") or body.get("user_id"):
            tell(client, body, msg.GENERIC_ERROR)
    except Exception:
        logger.warning("could not tell the user about the error", exc_info=True)
