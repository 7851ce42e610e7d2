"""`python -m bot run`: the Slack transport and the scheduler in one process until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.app import create_app
from bot.core.config import ConfigError, Settings, load_settings
from bot.services import Services
from bot.services.scheduler import build_scheduler
from bot.slack.transport import EVENTS_PATH, serve_http, socket_mode_handler
from bot.sources.fleet import fleet_source
from bot.sources.listener import start_listeners

log = logging.getLogger(__name__)


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
    listeners = start_listeners(services.poller)  # queues: seconds from SQS to the card; polls leave them be
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
        for listener in listeners:
            listener.stop()  # daemon threads: a receive in flight comes back after its visibility timeout
        scheduler.shutdown(wait=False)
    return 0


def build_jobs(settings: Settings, services: Services) -> Any:
    """The scheduler's jobs bound to the services."""

    slack, channel = services.slack, settings.alert_channel
    return build_scheduler(
        settings,
        poll=services.poller.poll_scheduled,
        refresh_accounts=services.poller.refresh_fleet if fleet_source(settings) else None,
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
