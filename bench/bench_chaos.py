"""Chaos: kill the bot with SIGKILL at random points, then count lost, duplicate and stuck alerts and fixes.

    python bench/bench_chaos.py                 # 100 kills: 50 of poll → store → post, 50 of fix and undo
    python bench/bench_chaos.py --kills 5       # a quick run (5 of each)

The bot runs in child processes (the real code: `create_app`, the poller, the outbox, the remediator,
the reconciler), against the Slack Web API stand-in (standins/slack.py), moto's server for S3 and S3
Control, and the CloudTrail LookupEvents stand-in, all on 127.0.0.1. Each child announces when it is
ready and is then killed with SIGKILL after a random time within what its work takes (calibrated by one
run that is not killed), so kills land anywhere in the work: between CloudTrail and the database, the
database and Slack, Slack's answer and the row, the AWS write and the row, the row and the alert.

Two scenarios, each killed `--kills` times:
- pipeline: new public-access events appear in CloudTrail before each run; a run reconciles, polls,
  stores, posts cards and flushes the outbox.
- remediate: a run presses Fix on every open alert of a fixed set of buckets and Undo on every fixed one.

Then the bot is restarted once, unkilled, after the outbox lease (60 s) and the in-flight limit (45 s)
have passed, as a real restart would find them, and everything is counted:
- alerts: lost (an event's bucket has no card), duplicate (more than one card for an alert, found by
  the cards' metadata), stuck (outbox items neither sent nor given up);
- fixes: lost (a fix whose snapshot is not the original configuration, so Undo could not restore it,
  or a press that found Block Public Access already on because the bot lost track of its own write),
  duplicate (a fix announced with its Undo button more than once), stuck (rows still applying or
  undoing), and cards that do not match AWS (the alert closed while AWS is not fully blocked, or the
  reverse, or the card saying otherwise than the alert). Target: 0 of each.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-ins are not in the installed package

from standins.cloudtrail import FakeCloudTrailServer, bpa_weakened  # noqa: E402
from standins.slack import SlackStandin  # noqa: E402

ACCOUNT = "123456789012"  # moto's default account
RESPONDER = "U0RESP"
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
WEAK = {"BlockPublicAcls": False, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": True}
FIX_BUCKETS = 6
RESTART_AFTER = 65  # seconds: past the outbox lease (60 s) and the in-flight limit for fixes (45 s)


# ---- the bot, in a child process -----------------------------------------------------------------


def worker(mode: str, db: str, slack_url: str) -> int:
    """One life of the bot: reconcile what the last one left, then poll and post, or press fix/undo."""
    # Imported in the child only: the driver never runs the bot in its own interpreter.
    from bot.app import create_app
    from bot.core.config import Account, Settings
    from bot.services import operations as ops
    from bot.services.reconcile import reconcile

    settings = Settings(slack_bot_token="xoxb-chaos", slack_api_url=slack_url, alert_channel="C0ALERTS",
                        responders=(RESPONDER,), accounts=(Account(ACCOUNT),), regions=("us-east-1",),
                        lookback_minutes=20, db_path=Path(db))
    _, services = create_app(settings)
    print("ready", flush=True)
    reconcile(services)
    services.outbox.flush()
    if mode == "pipeline":
        services.poller.poll_once()
        services.outbox.flush()
    elif mode == "remediate":
        ids = [row[0] for row in services.store.db.execute("SELECT id FROM alerts WHERE bucket LIKE 'chaos-fix-%'")]
        random.shuffle(ids)
        for alert_id in ids:
            alert = services.alerts.get(alert_id)
            if alert is None:
                continue
            if alert.status in ("open", "acknowledged"):
                ops.fix(services, alert_id, RESPONDER)
            elif alert.status == "fixed":
                ops.undo(services, RESPONDER, alert_id=alert_id)
        services.outbox.flush()
    print("done", flush=True)
    return 0


# ---- the driver ----------------------------------------------------------------------------------


class World:
    """The stand-ins and moto's server on 127.0.0.1, and the environment a child bot needs."""

    def __init__(self, workdir: Path):
        from moto.server import ThreadedMotoServer  # here, not at the top: the bot's own processes never load moto

        self.workdir = workdir
        self.db = str(workdir / "bot.db")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self.cloudtrail = FakeCloudTrailServer()
        self.cloudtrail.fake.default_account = ACCOUNT
        self.cloudtrail.__enter__()
        self.slack = SlackStandin().start()
        # Slack takes a little while to answer: widens the window between its accepting a card and our row.
        self.slack.delay_next("chat.postMessage", 0.03, times=10**6)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_"))},
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": self.moto_url, "AWS_ENDPOINT_URL_S3_CONTROL": self.moto_url,
            "AWS_ENDPOINT_URL_IAM": self.moto_url, "AWS_ENDPOINT_URL_CLOUDTRAIL": self.cloudtrail.url,
            "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(ROOT),
            "AWS_CONFIG_FILE": str(workdir / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "none"),
        }
        self.s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=self.moto_url,
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        self.events = 0
        self.buckets: list[str] = []

    def close(self) -> None:
        self.slack.release()
        self.slack.stop()
        self.cloudtrail.__exit__()
        self.moto.stop()

    def weaken(self, bucket: str) -> None:
        """A bucket in moto with two flags off, and the CloudTrail event that did it."""
        self.s3.create_bucket(Bucket=bucket)
        self.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=WEAK)
        self.events += 1
        self.cloudtrail.fake.add(bpa_weakened(
            bucket=bucket, account=ACCOUNT, user="mallory", event_id=f"chaos-{self.events:05d}",
            off=tuple(f for f in FLAGS if not WEAK[f]), agent="aws-cli/2.15.0",
            when=datetime.now(UTC) - timedelta(minutes=2)))
        self.buckets.append(bucket)

    def run(self, mode: str, kill_after: float | None) -> tuple[bool, float]:
        """One bot life; SIGKILL `kill_after` seconds after it is ready. Returns (killed, seconds of work)."""
        proc = subprocess.Popen([sys.executable, __file__, "--worker", mode, self.db, self.slack.url], cwd=ROOT,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.wait()
            raise SystemExit(f"the bot did not start: {proc.stderr.read() if proc.stderr else ''}")
        ready = time.monotonic()
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                _close(proc)
                return True, time.monotonic() - ready
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0 or "done" not in out:
            raise SystemExit(f"the bot failed ({proc.returncode}): {err[-3000:]}")
        return False, time.monotonic() - ready


def _close(proc: subprocess.Popen[str]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def chaos(world: World, mode: str, kills: int, *, seed: int) -> dict[str, Any]:
    """Kill `mode` runs `kills` times at random points of their work; returns what it took."""
    rng = random.Random(seed)
    if mode == "pipeline":
        world.weaken(f"chaos-cal-{seed}")
    _, calibrated = world.run(mode, None)  # one unkilled run: how long the work takes
    done = runs = 0
    while done < kills:
        if mode == "pipeline":
            for _ in range(rng.randint(1, 3)):
                world.weaken(f"chaos-{len(world.buckets):04d}-{seed}")
        killed, _ = world.run(mode, rng.uniform(0, calibrated * 1.2))
        done += killed
        runs += 1
        if runs % 10 == 0:
            print(f"   {mode}: {done}/{kills} kills ({runs} runs)", flush=True)
    return {"kills": done, "runs": runs, "work_seconds": round(calibrated, 2)}


def count(world: World) -> dict[str, int]:
    """Lost, duplicate and stuck alerts and fixes, and cards that do not match AWS."""
    from bot.store.database import Store  # the driver opens the database only once the bots are done

    store = Store(world.db)
    db = store.db
    alert_of = {str(row[0]): row[1] for row in db.execute("SELECT id, bucket FROM alerts")}
    cards: Counter[str] = Counter()
    for message in world.slack.top_level("C0ALERTS"):
        meta = message.metadata or {}
        if meta.get("event_type") == "bucketwatch_alert":
            cards[str((meta.get("event_payload") or {}).get("alert_id"))] += 1
    carded = {alert_of.get(alert_id) for alert_id in cards}
    expected = set(world.buckets) | {f"chaos-fix-{n}" for n in range(FIX_BUCKETS)}
    announced: Counter[str] = Counter()
    for message in world.slack.messages:
        for block in message.blocks or []:
            for element in block.get("elements") or [] if isinstance(block, dict) else []:
                if isinstance(element, dict) and element.get("action_id") == "undo":
                    announced[str(element.get("value"))] += 1
    mismatched = 0
    for alert_id, bucket, status in db.execute("SELECT id, bucket, status FROM alerts WHERE bucket LIKE 'chaos-fix-%'"):
        live = world.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        all_on = all(live.get(f) for f in FLAGS)
        card = world.slack.message(db.execute("SELECT ts FROM alerts WHERE id = ?", [alert_id]).fetchone()[0])
        # Closed by the bot (fixed, or resolved because it found BPA already on) ⇔ fully blocked in AWS.
        closed = status in ("fixed", "resolved")
        shown = json.dumps(card.blocks) if card is not None else ""
        card_closed = "*Fixed*" in shown or "*Resolved*" in shown
        if closed != all_on or card_closed != closed:
            mismatched += 1
            rows = list(db.execute("SELECT id, status, snapshot, applied, settled_at FROM remediations"
                                   " WHERE alert_id = ? ORDER BY id", [alert_id]))
            print(f"   mismatch: alert {alert_id} {status}, AWS all on: {all_on}, card closed: {card_closed};"
                  f" rows {rows}")
    # A fix whose snapshot is not the original cannot be undone to it; nobody but the bot touches these
    # buckets, so a fix that found BPA already on (no_change) means the bot lost track of its own write.
    snapshots_lost = sum(
        1 for (snapshot,) in db.execute("SELECT snapshot FROM remediations WHERE status IN ('applied', 'undone')")
        if json.loads(snapshot or "null") != WEAK
    ) + db.table("remediations").count_where("status = 'no_change'")
    for alert_id, n in cards.items():
        if n > 1:
            rows = list(db.execute("SELECT id, kind, attempts, last_error, sent_at, attempt_started_at, ts FROM outbox"
                                   " WHERE alert_id = ? AND kind = 'card'", [int(alert_id)]))
            tss = [m.ts for m in world.slack.top_level("C0ALERTS")
                   if str(((m.metadata or {}).get("event_payload") or {}).get("alert_id")) == alert_id]
            print(f"   duplicate: alert {alert_id}: {n} cards {tss}; outbox {rows}")
    return {
        "events": len(expected),
        "alerts": len(alert_of),
        "cards": sum(cards.values()),
        "alerts_lost": len(expected - carded),
        "alerts_duplicate": sum(n - 1 for n in cards.values() if n > 1),
        "alerts_stuck": db.table("outbox").count_where("sent_at IS NULL AND failed_at IS NULL"),
        "outbox_given_up": db.table("outbox").count_where("failed_at IS NOT NULL"),
        "fixes": db.table("remediations").count_where("status IN ('applied', 'undone')"),
        "fixes_lost": snapshots_lost,
        "fixes_duplicate": sum(n - 1 for n in announced.values() if n > 1),
        "fixes_stuck": db.table("remediations").count_where("status IN ('applying', 'undoing')"),
        "cards_not_matching_aws": mismatched,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs per scenario (default 50: 100 in all)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "DB", "SLACK_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bucketwatch-chaos-") as tmp:
        world = World(Path(tmp))
        try:
            for n in range(FIX_BUCKETS):
                world.weaken(f"chaos-fix-{n}")
            world.run("pipeline", None)  # the remediate scenario's alerts and cards
            print(f"== poll → store → post, {args.kills} kills", flush=True)
            pipeline = chaos(world, "pipeline", args.kills, seed=args.seed)
            print(f"== fix and undo, {args.kills} kills", flush=True)
            remediate = chaos(world, "remediate", args.kills, seed=args.seed + 1)
            print(f"== restart after {RESTART_AFTER} s, unkilled", flush=True)
            time.sleep(RESTART_AFTER)
            world.run("pipeline", None)
            figures = count(world)
        finally:
            world.close()
    result = {"pipeline": pipeline, "remediate": remediate, **figures,
              "seconds": round(time.monotonic() - began)}
    print(json.dumps(result, indent=2))
    bad = [k for k in ("alerts_lost", "alerts_duplicate", "alerts_stuck", "fixes_lost", "fixes_duplicate",
                       "fixes_stuck", "cards_not_matching_aws") if figures[k]]
    print("target met: 0 lost, duplicate or stuck" if not bad else f"NOT MET: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
