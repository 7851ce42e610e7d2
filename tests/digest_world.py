"""What the digest tests share: a frozen NOW, a tiny Slack stand-in that records posts, and helpers that
write alerts, exceptions and poller health straight into the store."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.core.clock import iso
from bot.store.database import Store

NOW = datetime(2025, 3, 24, 10, 0, tzinfo=UTC)  # 11:00 in Paris (CET), 03:00 in Los Angeles (PDT)
H = timedelta(hours=1)
M = timedelta(minutes=1)


class SlackStandin:
    """A local HTTP server answering the Slack Web API like Slack does, recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[str] = []  # Slack error codes to answer with, one per call
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                body = json.loads(raw) if raw.startswith("{") else {}
                method = self.path.rsplit("/", 1)[-1]
                standin.calls.append((method, body))
                if standin.fail_next:
                    answer: dict[str, Any] = {"ok": False, "error": standin.fail_next.pop(0)}
                else:
                    answer = {
                        "ok": True,
                        "channel": body.get("channel"),
                        "ts": f"1700000000.{len(standin.calls):06d}",
                    }
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def client(self) -> WebClient:
        return WebClient(token="xoxb-test", base_url=self.url)

    def posts(self) -> list[dict[str, Any]]:
        return [body for method, body in self.calls if method == "chat.postMessage"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    standin = SlackStandin()
    yield standin
    standin.close()


def add_alert(
    store: Store,
    bucket: str | None,
    opened: datetime,
    status: str = "open",
    *,
    moves: tuple[tuple[str, datetime], ...] = (),
    history: bool = True,
    account: str = "111122223333",
    region: str = "us-east-1",
    ts: str | None = None,
    ack_by: str | None = None,
) -> int:
    """An alert row as AlertService writes it, with one history row per move (when `history`)."""
    row: dict[str, Any] = {
        "resource_key": f"{account}/{bucket or '*'}",
        "account": account,
        "region": region,
        "bucket": bucket,
        "detection": "bucket_policy_public",
        "severity": "high",
        "title": "t",
        "status": status,
        "opened_at": iso(opened),
        "channel": "C0ALERTS",
        "ts": ts,
    }
    for to, at in moves:
        if to == "acknowledged":
            row.update(acknowledged_at=iso(at), acknowledged_by=ack_by or "U0BOB")
        elif to in ("fixed", "accepted", "resolved"):
            row.update(closed_at=iso(at), closed_by="U0BOB")
    alert_id = int(store.db.table("alerts").insert(row).last_pk or 0)
    if history:
        previous = "open"
        store.db.table("alert_history").insert(
            {
                "alert_id": alert_id,
                "at": iso(opened),
                "who": "bucketwatch",
                "status_from": None,
                "status_to": "open",
                "note": "",
            }
        )
        for to, at in moves:
            store.db.table("alert_history").insert(
                {
                    "alert_id": alert_id,
                    "at": iso(at),
                    "who": "U0BOB",
                    "status_from": previous,
                    "status_to": to,
                    "note": "",
                }
            )
            previous = to
    return alert_id


def add_exception(
    store: Store,
    bucket: str | None,
    expires: datetime,
    *,
    reason: str = "static site",
    owner: str = "U0CAROL",
    account: str | None = None,
    revoked: bool = False,
) -> int:
    row = {
        "account": account,
        "bucket": bucket,
        "reason": reason,
        "owner": owner,
        "created_at": iso(NOW - 40 * H),
        "expires_at": iso(expires),
        "revoked_at": iso(NOW - H) if revoked else None,
        "expiry_notified_at": None,
    }
    return int(store.db.table("exceptions").insert(row).last_pk or 0)


def add_poller(
    store: Store,
    source: str,
    ok: datetime | None,
    *,
    error: str | None = None,
    attempt: datetime | None = None,
    newest: datetime | None = None,
) -> None:
    """A poller_state row; `newest`: the newest event the source returned (lag = now − newest)."""
    store.db.table("poller_state").insert(
        {
            "source": source,
            "last_success": iso(ok),
            "last_attempt": iso(attempt or ok),
            "last_error": error,
            "lag_seconds": None,
            "watermark": iso(ok),
            "events_seen": 0,
            "newest_event": iso(newest),
        }
    )


def texts(blocks: list[Any]) -> str:
    """Every text of every block, as Slack would receive it."""
    return json.dumps([b.to_dict() for b in blocks], ensure_ascii=False)
