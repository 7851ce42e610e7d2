"""Crash tests' harness: a sender script in a child process, SIGKILLed once Slack has taken its post.

The Slack stand-in holds the answer to the next chat.postMessage, so the message is in the channel but
the child never learns it; the child is then killed with SIGKILL, as a crash would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from standins.slack import SlackStandin
from tests.slack_requests import eventually

ROOT = Path(__file__).resolve().parents[1]


def kill_once_slack_took_it(standin: SlackStandin, script: str, db: Path, channel: str) -> None:
    """Run `script` (argv: db, Slack URL) until its post lands in `channel`, then SIGKILL it."""
    standin.hold_next("chat.postMessage")  # Slack posts it, the answer never comes back
    with subprocess.Popen([sys.executable, "-c", script, str(db), standin.url], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}) as proc:
        try:
            assert eventually(lambda: standin.top_level(channel) or proc.poll() is not None, timeout=30)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            standin.release()
            proc.kill()
