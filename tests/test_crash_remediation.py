"""Fixes and undos survive kill -9 at the worst point (issue 8, defects 5 and 6).

A subprocess presses Fix (or Undo) against moto's server and SIGKILLs itself the moment AWS answered
the write, before the database hears of it. The bot (this process) then reconciles with the live
configuration: the fix is recorded as applied with its snapshot (Undo still restores the original),
the undo as undone, and the card says what AWS says. A press meanwhile is told what is happening.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.app import create_app
from bot.core.clock import utcnow
from bot.core.config import Account, Settings
from bot.core.record import Record
from bot.services import Services
from bot.services import remediate as ops
from bot.services.reconcile import reconcile
from standins.slack import SlackStandin
from tests.slack_requests import bpa_record

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
RESPONDER, OTHER = "U0RESP", "U0OTHER"
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
WEAK = {"BlockPublicAcls": False, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": True}
ALL_ON = dict.fromkeys(FLAGS, True)
# The bot, pressed once, killed by SIGKILL right after AWS answered the BPA write or delete.
# The bot, pressed once, killed by SIGKILL right after AWS answered the BPA write or delete ("aws"), or
# right after the row recorded the outcome, before the alert heard of it ("recorded").
PRESSER = textwrap.dedent(
    """
    import os, signal, sys
    from bot.app import create_app
    from bot.core.config import Account, Settings
    from bot.services import remediate as ops
    db, slack_url, action, ident, account, where = sys.argv[1:7]
    settings = Settings(slack_bot_token="xoxb-test", slack_api_url=slack_url, alert_channel="C0ALERTS",
                        responders=("U0RESP",), accounts=(Account(account),), regions=("us-east-1",), db_path=db)
    _, services = create_app(settings)

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "recorded":
        services.alerts.transition = die
    else:
        for service in ("s3", "s3control"):
            client = services.aws.client(service, account, "us-east-1", write=True)
            name = client.meta.service_model.service_id.hyphenize()
            for op in ("PutPublicAccessBlock", "DeletePublicAccessBlock"):
                client.meta.events.register(f"after-call.{name}.{op}", die)
    if action == "fix":
        ops.fix(services, int(ident), "U0RESP")
    else:
        ops.undo(services, "U0RESP", remediation_id=int(ident))
    print("not killed", flush=True)
    """
)


@dataclass
class Bot:
    services: Services
    slack: SlackStandin
    settings: Settings
    moto_url: str

    @property
    def s3(self) -> Any:
        return boto3.client("s3", region_name="us-east-1", endpoint_url=self.moto_url)

    def bpa(self, bucket: str) -> dict[str, bool]:
        return dict(self.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"])

    def open_alert(self, bucket: str) -> int:
        self.s3.create_bucket(Bucket=bucket)
        self.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=WEAK)
        off = tuple(f for f in FLAGS if not WEAK[f])
        changes = self.services.alerts.process([Record(bpa_record(bucket, off=off))])
        self.services.outbox.flush()
        return changes[0].alert_id

    def press_and_die(self, action: str, ident: int, where: str = "aws") -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-c", PRESSER, str(self.settings.db_path), self.slack.url, action, str(ident), ACCOUNT,
             where],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == -9, proc.stderr[-2000:] + proc.stdout

    def card_text(self, alert_id: int) -> str:
        ts = self.services.alerts.get(alert_id).ts
        message = self.slack.message(ts)
        assert message is not None
        return json.dumps(message.blocks)

    def later(self, seconds: float) -> None:
        """Move the remediator's clock on (the row is then older than STALE_AFTER)."""
        self.services.remediator.clock = lambda: utcnow() + timedelta(seconds=seconds)


@pytest.fixture
def bot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str) -> Iterator[Bot]:
    for service in ("S3", "S3_CONTROL", "IAM", "STS"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_url)
    with SlackStandin() as slack:
        settings = Settings(slack_bot_token="xoxb-test", slack_api_url=slack.url, alert_channel="C0ALERTS",
                            responders=(RESPONDER, OTHER), accounts=(Account(ACCOUNT),), regions=("us-east-1",),
                            db_path=tmp_path / "bot.db")
        _, services = create_app(settings)
        services.remediator.claim_wait_seconds = 0.2
        yield Bot(services, slack, settings, moto_url)


def test_kill_after_the_fix_write_is_finished_with_its_snapshot_and_undo_restores_it(bot: Bot) -> None:
    alert_id = bot.open_alert("crash-fix")
    bot.press_and_die("fix", alert_id)
    assert bot.bpa("crash-fix") == ALL_ON  # AWS changed; the database never heard
    row = bot.services.remediator.live_fix(alert_id)
    assert row is not None and row.status == "applying" and row.snapshot == WEAK and row.intended == ALL_ON

    # A press meanwhile is told what is happening, and changes nothing.
    told = ops.fix(bot.services, alert_id, OTHER)
    assert "still running" in told.text and "finishes it" in told.text
    assert bot.services.alerts.get(alert_id).status == "open"

    # Within a minute the bot reconciles: recorded as applied with the original snapshot, card fixed.
    bot.later(60)
    assert reconcile(bot.services) == 1
    row = bot.services.remediator.get(row.id)
    assert row is not None and (row.status, row.snapshot, row.applied) == ("applied", WEAK, ALL_ON)
    assert bot.services.alerts.get(alert_id).status == "fixed"
    assert "*Fixed*" in bot.card_text(alert_id)
    thread = bot.slack.replies(bot.services.alerts.get(alert_id).ts)
    assert any("interrupted" in m.text for m in thread)
    assert any('"action_id": "undo"' in json.dumps(m.blocks) for m in thread)
    assert reconcile(bot.services) == 0  # nothing left in flight

    # Undo restores what was there before the fix: the original settings are not lost.
    reply = ops.undo(bot.services, RESPONDER, remediation_id=row.id)
    assert "back to" in reply.text, reply.text
    assert bot.bpa("crash-fix") == WEAK
    assert bot.services.alerts.get(alert_id).status == "open"


def test_a_press_after_the_row_went_stale_finishes_the_fix_for_the_presser(bot: Bot) -> None:
    alert_id = bot.open_alert("crash-press")
    bot.press_and_die("fix", alert_id)
    bot.later(60)
    told = ops.fix(bot.services, alert_id, OTHER)
    assert "interrupted" in told.text, told.text
    assert bot.services.alerts.get(alert_id).status == "fixed"
    assert bot.services.remediator.live_fix(alert_id).status == "applied"


def test_kill_after_the_undo_write_is_recorded_undone_and_the_card_reopens(bot: Bot) -> None:
    alert_id = bot.open_alert("crash-undo")
    ops.fix(bot.services, alert_id, RESPONDER)
    row = bot.services.remediator.live_fix(alert_id)
    assert row is not None and row.status == "applied" and bot.bpa("crash-undo") == ALL_ON
    bot.press_and_die("undo", row.id)
    assert bot.bpa("crash-undo") == WEAK  # restored in AWS; the row still says undoing
    assert bot.services.remediator.get(row.id).status == "undoing"
    told = ops.undo(bot.services, OTHER, remediation_id=row.id)
    assert "already running" in told.text and "finishes it" in told.text

    bot.later(60)
    assert reconcile(bot.services) == 1
    settled = bot.services.remediator.get(row.id)
    assert settled is not None and settled.status == "undone" and settled.undone_by == RESPONDER
    alert = bot.services.alerts.get(alert_id)
    assert alert.status == "open" and "*Open*" in bot.card_text(alert_id)
    # And the alert can be fixed again.
    again = ops.fix(bot.services, alert_id, OTHER)
    assert bot.bpa("crash-undo") == ALL_ON, again.text
    assert bot.services.alerts.get(alert_id).status == "fixed"


def test_kill_after_the_fix_was_recorded_but_before_the_alert_heard_brings_the_card_in_line(bot: Bot) -> None:
    alert_id = bot.open_alert("crash-recorded")
    bot.press_and_die("fix", alert_id, "recorded")
    row = bot.services.remediator.live_fix(alert_id)
    assert row is not None and row.status == "applied" and bot.bpa("crash-recorded") == ALL_ON
    assert bot.services.alerts.get(alert_id).status == "open"  # the card says open, AWS says fixed
    assert reconcile(bot.services) == 0  # a press may still be finishing it: not yet
    bot.later(60)
    assert reconcile(bot.services) == 1
    assert bot.services.alerts.get(alert_id).status == "fixed" and "*Fixed*" in bot.card_text(alert_id)
    assert reconcile(bot.services) == 0
