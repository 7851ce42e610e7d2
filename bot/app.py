"""The app factory and `python -m bot run`: Slack (Socket Mode or HTTP), the services, the scheduler.

Nothing happens at import. `create_app(settings)` builds the WebClient (SLACK_API_URL, slack-sdk's
retry handlers), the services, the bolt App, and registers every handler module; tests pass their
own client, store or AWS clients in. `cli_run` adds logging, the scheduler and the transport: Socket
Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT at /slack/events behind waitress (a production
WSGI server, threaded, pure Python; bolt's built-in server is documented as for development only).
bolt's RequestVerification middleware answers 401 to unsigned, forged or stale (> 5 minutes)
requests before any listener runs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from bot import messages as msg
from bot.config import ConfigError, Settings, load_settings
from bot.services import Services

if TYPE_CHECKING:
    from waitress.server import BaseWSGIServer

    from bot.aws import AwsClients
    from bot.events import Record
    from bot.store import Store

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


def build_web_client(settings: Settings) -> WebClient:
    """The Web API client: SLACK_API_URL (GovSlack, proxies), retries on 429, 5xx and dropped connections."""
    from bot.outbox import retry_handlers

    return WebClient(
        token=settings.slack_bot_token or None,
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(),
        timeout=15,
    )


def build_services(settings: Settings, slack: WebClient, store: Store, aws: AwsClients) -> Services:
    """Every service, wired once: alerts post through the outbox; the poller feeds the alerts."""
    from bot.alerts import AlertService
    from bot.aliases import AccountAliases
    from bot.allow_tag import AllowedPublic
    from bot.audit import AuditLog
    from bot.digest import DigestService
    from bot.exceptions import ExceptionList
    from bot.exposure import ExposureVerdict, live_verdict
    from bot.outbox import Outbox
    from bot.permissions import Permissions
    from bot.poller import Poller
    from bot.remediation import Remediator

    def verdict(account: str, bucket: str | None, region: str, keys: tuple[str, ...] = ()) -> ExposureVerdict:
        s3, s3control = aws.client("s3", account, region), aws.client("s3control", account, region)
        return live_verdict(s3, s3control, account, bucket, object_keys=keys)

    def recheck(account: str, bucket: str | None, region: str) -> bool | None:
        return verdict(account, bucket, region).public_now

    exceptions = ExceptionList(store)
    outbox = Outbox(store, slack, settings.alert_channel)
    # S3 (bucket tags) follows a bucket to its region; IAM is global: the first region serves both.
    home = settings.regions[0] if settings.regions else "us-east-1"
    # The allow list, then the bucket's own tag bucketwatch:public=allowed.
    allowed = AllowedPublic(exceptions.active_for, lambda account: aws.client("s3", account, home))
    aliases = AccountAliases(lambda account: aws.client("iam", account, home))
    alerts = AlertService(store, verdict_fn=verdict, exceptions_fn=allowed, outbox=outbox, alias_fn=aliases)
    services = Services(
        settings=settings,
        store=store,
        slack=slack,
        aws=aws,
        alerts=alerts,
        outbox=outbox,
        remediator=Remediator(store, aws, dry_run=settings.dry_run),
        exceptions=exceptions,
        audit=AuditLog(store),
        permissions=Permissions(settings.responders, slack),
        digest=DigestService(store, tz=settings.digest_tz, digest_time=settings.digest_time, recheck=recheck),
        poller=Poller(settings, store, aws),
    )

    def on_records(records: list[Record]) -> None:
        changes = alerts.process(records)
        # Without credentials (`poll --once` on a workstation) cards stay queued for the running bot.
        if changes and settings.slack_bot_token and settings.alert_channel:
            outbox.flush()
            refresh = services.extra.get("refresh_home")
            if refresh is not None:
                refresh()

    services.poller.on_records = on_records
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
    import handlers

    if services is None:
        from bot.aws import AwsClients
        from bot.store import Store

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
    handlers.register(app, services)
    app.error(_error_handler)
    return app, services


def _quiet_token_warning(record: logging.LogRecord) -> bool:
    # bolt reads SLACK_BOT_TOKEN itself and warns that the client we pass wins; that is the intent.
    return "will be unused" not in record.getMessage()


def _error_handler(
    error: Exception, body: dict[str, Any], logger: logging.Logger, client: WebClient, respond: Any
) -> None:
    """One place for listener errors: full traceback in the log, one short line to the person."""
    logger.error("listener failed: %s", type(error).__name__, exc_info=error)
    from handlers import tell

    try:
        if respond is not None and body.get("command"):
            respond(text=msg.GENERIC_ERROR, response_type="ephemeral", replace_original=False)
        elif body.get("user") or body.get("user_id"):
            tell(client, body, msg.GENERIC_ERROR)
    except Exception:
        logger.warning("could not tell the user about the error", exc_info=True)


# ---- transports ----------------------------------------------------------------------------------


def serve_http(
    app: App,
    settings: Settings,
    *,
    host: str = "0.0.0.0",  # noqa: S104 (a PaaS routes to the container on any interface)
    port: int | None = None,
    **adjustments: Any,
) -> BaseWSGIServer:
    """A waitress server (not yet running) for /slack/events; `.run()` serves, `.close()` stops."""
    if not settings.slack_signing_secret:
        # With an empty secret anyone could compute a valid signature.
        raise ConfigError("SLACK_SIGNING_SECRET: required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from waitress.server import create_server

    server = create_server(
        SlackRequestHandler(app, path=EVENTS_PATH),
        host=host,
        port=settings.port if port is None else port,
        threads=8,
        ident="bucketwatch",
        **adjustments,
    )
    return server  # type: ignore[no-any-return]


def start_http_thread(
    app: App, settings: Settings, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[BaseWSGIServer, Callable[[], None]]:
    """Serve in a daemon thread (tests, demo); returns the server and a stop function."""
    # waitress' default loop timeout (1 s): it reads asyncore_loop_timeout as an int, so 0.1 became 0, a
    # select() that never waits and kept a core busy. stop() does not wait for it: pull_trigger wakes the loop.
    server = serve_http(app, settings, host=host, port=port)
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()

    def close_all() -> None:
        # Runs in the loop's own thread (a trigger thunk): closing sockets under a running select()
        # from another thread would race it. With the map empty, the loop returns.
        for dispatcher in list(server._map.values()):
            dispatcher.close()

    def stop() -> None:
        server.trigger.pull_trigger(close_all)
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()

    return server, stop


def socket_mode_handler(app: App, settings: Settings) -> Any:
    """bolt's Socket Mode handler on slack-sdk's built-in WebSocket client (no extra dependency)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    return SocketModeHandler(app, app_token=settings.slack_app_token, web_client=app.client)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # These libraries log request and response bodies and headers at DEBUG: Slack tokens, STS AssumeRole
    # credentials, x-amz-security-token. Keep them out of the log even when LOG_LEVEL=DEBUG.
    for name in SECRET_BEARING_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))


SECRET_BEARING_LOGGERS = ("slack_sdk", "slack_bolt", "botocore", "boto3", "urllib3", "s3transfer")


def cli_run(args: argparse.Namespace) -> int:
    """`python -m bot run`: Slack transport + scheduler in one process until SIGTERM/SIGINT."""
    settings = load_settings(dotenv=Path(".env"))
    configure_logging(settings.log_level)
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN: required to run the bot")
    if not settings.alert_channel:
        raise ConfigError("ALERT_CHANNEL: required to run the bot (a channel id, C…)")
    app, services = create_app(settings)
    scheduler = build_jobs(settings, services)
    scheduler.start()
    stopping = threading.Event()
    try:
        if settings.socket_mode:
            handler = socket_mode_handler(app, settings)
            handler.connect()
            log.info("connected to Slack in Socket Mode; scheduler running")
            _wait_for_signal(stopping)
            handler.close()
        else:
            server = serve_http(app, settings)
            log.info("listening on port %s at %s; scheduler running", settings.port, EVENTS_PATH)
            # waitress' run() loop stops cleanly on SystemExit (and on KeyboardInterrupt for Ctrl-C).
            signal.signal(signal.SIGTERM, _exit)
            server.run()
    finally:
        scheduler.shutdown(wait=False)
    return 0


def build_jobs(settings: Settings, services: Services) -> Any:
    """The scheduler's four jobs bound to the services."""
    from bot.scheduler import build_scheduler

    slack, channel = services.slack, settings.alert_channel
    return build_scheduler(
        settings,
        poll=services.poller.poll_once,
        flush=services.outbox.flush,
        digest_due=lambda: services.digest.send_if_due(slack, channel),
        expire=lambda: services.digest.notify_expired(slack, channel, reopen=services.alerts.reopen),
    )


def _on_signal(callback: Callable[[], None]) -> None:
    def handle(signum: int, frame: Any) -> None:
        log.info("signal %s: stopping", signum)
        callback()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _exit(signum: int, frame: Any) -> None:
    log.info("signal %s: stopping", signum)
    raise SystemExit(0)


def _wait_for_signal(stopping: threading.Event) -> None:
    _on_signal(stopping.set)
    while not stopping.wait(1):
        pass
