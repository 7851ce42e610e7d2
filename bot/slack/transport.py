"""How Slack reaches the bot: HTTP at /slack/events behind waitress, or Socket Mode.

waitress is a production WSGI server (threaded, pure Python); bolt's built-in server is documented as
for development only. bolt's RequestVerification middleware answers 401 to unsigned, forged or stale
(> 5 minutes) requests before any listener runs.
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

EVENTS_PATH = "/slack/events"


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

    server = create_server(
        SlackRequestHandler(app, path=EVENTS_PATH),
        host=host,
        port=settings.port if port is None else port,
        threads=8,
        ident="bucketwatch",
        **adjustments,
    )
    return server


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

    return SocketModeHandler(app, app_token=settings.slack_app_token, web_client=app.client)
