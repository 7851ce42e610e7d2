"""How Slack reaches the bot: HTTP at /slack/events behind waitress, or Socket Mode.

waitress is a production WSGI server (threaded, pure Python); bolt's built-in server is documented as
for development only. In front of bolt, bot.slack.verify checks the signature on the raw bytes before
anything parses them: unsigned, forged or stale (> 5 minutes) requests get 401, bodies over 1 MiB 413
(waitress refuses them too: `max_request_body_size`), replays and retried events are not acted on twice.
bolt's own RequestVerification stays on behind it.

Socket Mode has no signatures: the WebSocket is opened with the app-level token (xapp-…) over TLS to
Slack, so what arrives on it comes from Slack.

Either way $PORT also answers GET /healthz, /readyz and /metrics (bot.slack.health): beside
/slack/events in HTTP mode, on a server of their own in Socket Mode (`serve_health`), so a platform
that checks a port (a `web` dyno, App Engine, a container HEALTHCHECK) never kills a healthy bot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import BaseWSGIServer, create_server

from bot.core.config import ConfigError, Settings
from bot.slack.health import WSGIApp, with_health
from bot.slack.verify import MAX_BODY, SeenRequests, VerifiedRequests
from bot.store.database import Store

EVENTS_PATH = "/slack/events"


def serve_http(
    app: App,
    settings: Settings,
    *,
    host: str = "0.0.0.0",  # noqa: S104 (a PaaS routes to the container on any interface)
    port: int | None = None,
    health: WSGIApp | None = None,
    store: Store | None = None,
    **adjustments: Any,
) -> BaseWSGIServer:
    """A waitress server (not yet running) for /slack/events (and `health`'s paths); `.run()` serves.

    With `store`, replayed requests are remembered in the database (across restarts and processes)."""
    if not settings.slack_signing_secret:
        # With an empty secret anyone could compute a valid signature.
        raise ConfigError("SLACK_SIGNING_SECRET: required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")
    slack: WSGIApp = VerifiedRequests(
        SlackRequestHandler(app, path=EVENTS_PATH),
        settings.slack_signing_secret,
        path=EVENTS_PATH,
        seen=SeenRequests(store),
    )
    wsgi = slack if health is None else with_health(health, slack)
    # waitress' default is 1 GiB, buffered to a temporary file before the app sees a byte. It refuses a
    # body of max_request_body_size or more (`>=`), so + 1 lets exactly 1 MiB through.
    adjustments.setdefault("max_request_body_size", MAX_BODY + 1)
    return _server(wsgi, host, settings.port if port is None else port, adjustments)


def serve_health(
    health: WSGIApp,
    settings: Settings,
    *,
    host: str = "0.0.0.0",  # noqa: S104 (the platform's health checker and Prometheus come from outside)
    port: int | None = None,
    **adjustments: Any,
) -> BaseWSGIServer:
    """Socket Mode: a waitress server (not yet running) for /healthz, /readyz and /metrics only."""
    adjustments.setdefault("max_request_body_size", MAX_BODY + 1)
    return _server(health, host, settings.port if port is None else port, adjustments)


def _server(wsgi: WSGIApp, host: str, port: int, adjustments: dict[str, Any]) -> BaseWSGIServer:
    """Bound at once (waitress binds in create_server): a port someone else holds is a clear ConfigError
    before anything is connected, posted or scheduled, not a traceback after."""
    try:
        return create_server(wsgi, host=host, port=port, threads=8, ident="bucketwatch", **adjustments)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"PORT {port}: cannot listen on {host}:{port} ({reason}); free it or set PORT") from exc


def start_http_thread(
    app: App,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    health: WSGIApp | None = None,
    store: Store | None = None,
) -> tuple[BaseWSGIServer, Callable[[], None]]:
    """Serve in a daemon thread (tests, demo); returns the server and a stop function."""
    return start_thread(serve_http(app, settings, host=host, port=port, health=health, store=store))


def start_thread(server: BaseWSGIServer) -> tuple[BaseWSGIServer, Callable[[], None]]:
    """Run a waitress server in a daemon thread; returns it and a stop function."""
    # waitress' default loop timeout (1 s): it reads asyncore_loop_timeout as an int, so 0.1 became 0, a
    # select() that never waits and kept a core busy. stop() does not wait for it: pull_trigger wakes the loop.
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()

    def close_all() -> None:
        # Runs in the loop's own thread (a trigger thunk): closing sockets under a running select()
        # from another thread would race it. With the map empty, the loop returns.
        for dispatcher in list(server._map.values()):
            dispatcher.close()

    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return  # a second stop (a test's cleanup after the app's own) has nothing left to do
        stopped.set()
        try:
            server.trigger.pull_trigger(close_all)
        except OSError:  # the loop already closed its trigger (it had stopped): nothing left to wake
            pass
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()

    return server, stop


def socket_mode_handler(app: App, settings: Settings) -> Any:
    """bolt's Socket Mode handler on slack-sdk's built-in WebSocket client (no extra dependency)."""
    return SocketModeHandler(app, app_token=settings.slack_app_token, web_client=app.client)
