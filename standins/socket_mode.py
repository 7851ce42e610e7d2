"""A local WebSocket server on 127.0.0.1 standing in for Slack's Socket Mode.

Slack's flow (api.slack.com/apis/socket-mode): the app calls `apps.connections.open` with its app token
and gets a `wss://` URL; Slack sends `hello`, then envelopes `{envelope_id, type, payload,
accepts_response_payload}`; the app acks each with `{envelope_id, payload?}` within 3 seconds.
Here the Web API stand-in answers `apps.connections.open` with this server's `ws://` URL.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class SocketModeStandin:
    """Sends envelopes to whichever app is connected and records the acks it sends back."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._connections: list[ServerConnection] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.received: list[dict[str, Any]] = []
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket=standin"

    def start(self) -> SocketModeStandin:
        self._server = serve(self._handle, "127.0.0.1", 0, ping_interval=None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="socket-mode-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            for conn in list(self._connections):
                conn.close()
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handle(self, conn: ServerConnection) -> None:
        conn.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0TEST"}}))
        with self._lock:
            self._connections.append(conn)
            self._lock.notify_all()
        try:
            for raw in conn:
                message = json.loads(raw)
                with self._lock:
                    self.received.append(message)
                    if "envelope_id" in message:
                        self.acks[message["envelope_id"]] = message
                    self._lock.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)

    def wait_connected(self, timeout: float = 10) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: bool(self._connections), timeout):
                raise TimeoutError("no Socket Mode client connected")

    def send(self, envelope_type: str, payload: dict[str, Any]) -> str:
        """Send one envelope (slash_commands, interactive, events_api) and return its id."""
        self.wait_connected()
        envelope_id = str(uuid.uuid4())
        message = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": envelope_type != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        with self._lock:
            conn = self._connections[-1]
        conn.send(json.dumps(message))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5) -> dict[str, Any]:
        """The app's ack for one envelope; raises if it did not come within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while envelope_id not in self.acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no ack for envelope {envelope_id}")
                self._lock.wait(remaining)
            return self.acks[envelope_id]
