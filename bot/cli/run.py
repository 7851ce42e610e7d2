"""`python -m bot run`: the Slack transport and the scheduler in one process until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.app import build_health, create_app
from bot.cli.common import configure
from bot.core.config import Settings
from bot.core.problems import checked_settings
from bot.services import Services
from bot.services.reconcile import reconcile
from bot.services.scheduler import build_scheduler
from bot.slack.errors import slack_failure
from bot.slack.health import HEALTHZ, METRICS, READYZ
from bot.slack.transport import EVENTS_PATH, serve_health, serve_http, socket_mode_handler, start_thread
from bot.sources.fleet import fleet_source
from bot.sources.listener import QueueListener, start_listeners

log = logging.getLogger(__name__)


def cli_run(args: argparse.Namespace) -> int:
    """`python -m bot run`: Slack transport + scheduler in one process until SIGTERM/SIGINT.

    Every setting is checked first (checked_settings): a bad one is a ConfigError listing every
    problem, before anything is opened, posted, polled or scheduled.
    """
    settings = checked_settings(dotenv=Path(".env"))
    configure(settings)
    log.info("database %s", settings.db_path.absolute())
    app, services = create_app(settings)
    health = build_health(services)
    stopping = threading.Event()
    paths = f"{HEALTHZ}, {READYZ}, {METRICS}"
    if settings.socket_mode:
        # The probe port first: one another process holds stops here, before Slack is connected.
        health_server = serve_health(health, settings)
        handler = socket_mode_handler(app, settings)
        try:
            # Connect before scheduling anything: a refused app token stops here, with nothing posted or polled.
            handler.connect()
        except (SlackApiError, SlackClientError) as exc:
            print(f"bucketwatch run: Socket Mode connection refused ({slack_failure(exc)})", file=sys.stderr)
            health_server.close()
            return 1
        health.slack_auth.check()  # once now: a bad token is logged at start, and /readyz knows at once
        # Nothing else listens in Socket Mode: the health server keeps a platform's port check happy.
        _, stop_health = start_thread(health_server)
        scheduler, listeners = _start_jobs(settings, services)
        log.info("connected to Slack in Socket Mode; %s on port %s; scheduler running", paths, settings.port)
        try:
            _wait_for_signal(stopping)
            handler.close()
            stop_health()
        finally:
            _stop_jobs(scheduler, listeners)
        return 0
    server = serve_http(app, settings, health=health, store=services.store)  # the port first, as above
    health.slack_auth.check()
    scheduler, listeners = _start_jobs(settings, services)
    log.info("listening on port %s at %s and %s; scheduler running", settings.port, EVENTS_PATH, paths)
    try:
        # waitress' run() loop stops cleanly on SystemExit (and on KeyboardInterrupt for Ctrl-C).
        signal.signal(signal.SIGTERM, _exit)
        server.run()
    finally:
        _stop_jobs(scheduler, listeners)
    return 0


def _start_jobs(settings: Settings, services: Services) -> tuple[Any, list[QueueListener]]:
    """The queue listeners, then the scheduler: its first poll (at once) already leaves the queues to them."""
    listeners = start_listeners(services.poller)  # queues: seconds from SQS to the card
    scheduler = build_jobs(settings, services)
    scheduler.start()
    return scheduler, listeners


def _stop_jobs(scheduler: Any, listeners: list[QueueListener]) -> None:
    for listener in listeners:
        listener.stop()  # daemon threads: a receive in flight comes back after its visibility timeout
    scheduler.shutdown(wait=False)


def build_jobs(settings: Settings, services: Services) -> Any:
    """The scheduler's jobs bound to the services (reconcile runs first at start: crash recovery)."""

    slack, channel = services.slack, settings.alert_channel
    return build_scheduler(
        settings,
        poll=services.poller.poll_scheduled,
        refresh_accounts=services.poller.refresh_fleet if fleet_source(settings) else None,
        flush=services.outbox.flush,
        digest_due=lambda: services.digest.send_if_due(slack, channel),
        expire=lambda: services.digest.notify_expired(slack, channel, reopen=services.alerts.reopen),
        reconcile=lambda: reconcile(services),
        handoff=services.handoff.flush if services.handoff and services.handoff.configured else None,
        ask=services.ask.run if services.ask.enabled else None,
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
