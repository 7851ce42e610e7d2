"""Slack response times through the running app: slash command and button acks, who-changed end to end.

    python bench/bench_slack.py                       # 10M-event index (built once, ≈ 5 min), 300 requests × 3 rounds
    python bench/bench_slack.py --events 200000 --requests 100 --repeat 1    # a quick run

The app runs as in production HTTP mode (`bot.app.create_app` + waitress on 127.0.0.1) in a child
process, with moto for AWS and its database on a who-changed index built by bench_who_changed.build.
This process plays Slack: it signs and sends requests (bot.standins.requests) and runs the Web API
stand-in that receives chat.update and the response_url answers. Keeping the app in its own process
keeps our client's work off the app's interpreter lock, as a remote Slack would.

Measured, each request sent only when the previous one is answered:
- `/bucketwatch help` and `alerts`: time to HTTP 200 (they answer in the ack itself);
- the Acknowledge button on a real open alert: time to HTTP 200 (the work after the ack — state change,
  card update, thread line — runs on); once one press at a time (each sent after the previous press's
  card update arrived) and once back to back (so the previous press's work still runs beside the ack);
- `/bucketwatch who-changed <bucket>`: from sending the request to the answer arriving at the
  response_url (ack first, then the index query, rendering and respond()).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import bench_who_changed as bwc
import orjson
from measure import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's bot/ and standins/, however the script is started

from bot.store.database import Store  # noqa: E402
from bot.store.packing import when  # noqa: E402
from standins.requests import SECRET, Reply, block_action, encode_form, encode_payload, post, slash_body  # noqa: E402
from standins.slack import Call, SlackStandin  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
ACCOUNT = "123456789012"  # moto's default account
RESPONDER = "U0RESP"
COMMAND = "/bucketwatch"
TARGET_ACK_MS, TARGET_WHO_MS = 100.0, 300.0


# ---- the app, in a child process -----------------------------------------------------------------


def _bpa_record(bucket: str, n: int) -> dict[str, Any]:
    """A CloudTrail PutBucketPublicAccessBlock turning two flags off: opens a bucket_bpa_weakened alert."""
    from standins.cloudtrail import bpa_weakened

    return bpa_weakened(
        bucket=bucket, account=ACCOUNT, user="mallory", event_id=f"bench-ev-{n:06d}",
        when=datetime.now(UTC) - timedelta(minutes=1),
    )


def _open_alerts(services: Any, first: int, count: int) -> list[int]:
    """`count` weakened-BPA buckets in moto, their CloudTrail records processed, the cards posted."""
    import boto3

    from bot.core.record import Record

    s3 = boto3.client("s3", region_name="us-east-1")
    ids: list[int] = []
    for start in range(first, first + count, 100):
        records = []
        for n in range(start, min(first + count, start + 100)):
            bucket = f"bench-alert-{n:05d}"
            s3.create_bucket(Bucket=bucket)
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=_bpa_record(bucket, n)[
                "requestParameters"]["PublicAccessBlockConfiguration"])  # fmt: skip
            records.append(Record(_bpa_record(bucket, n)))
        ids += [c.alert_id for c in services.alerts.process(records)]
        services.outbox.flush()
    return ids


def serve(conn: Connection, standin_url: str, db: str, listed: int, index_now: str) -> None:
    """Child process: the app on 127.0.0.1 with moto, `listed` alerts open; then serves the parent's commands.

    ("open", k) opens k more alerts and sends their ids; ("resolve", ids) closes them as a fix seen in
    CloudTrail would, so the open list keeps its size between rounds; "stop" ends.
    """
    for key in [k for k in os.environ if k.startswith(("AWS_", "SLACK_"))]:
        del os.environ[key]
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    logging.basicConfig(level=logging.WARNING, format="app: %(levelname)s %(name)s: %(message)s")
    from moto import mock_aws

    from bot.app import create_app
    from bot.core.config import Account, Settings
    from bot.slack.transport import start_http_thread

    with mock_aws():
        settings = Settings(slack_bot_token="xoxb-bench", slack_signing_secret=SECRET, slack_api_url=standin_url,
                            alert_channel="C0ALERTS", responders=(RESPONDER,), accounts=(Account(ACCOUNT),),
                            regions=("us-east-1",), db_path=Path(db))  # fmt: skip
        app, services = create_app(settings)
        # The index ends at `index_now`: handlers see that moment as now, so "the last 90 days" has history.
        fixed = datetime.fromisoformat(index_now)
        services.clock = lambda: fixed
        server, stop = start_http_thread(app, settings)
        opened = len(_open_alerts(services, 0, listed))
        conn.send({"url": f"http://127.0.0.1:{server.effective_port}/slack/events", "listed": opened})
        while (command := conn.recv()) != "stop":
            if command[0] == "open":
                conn.send(_open_alerts(services, opened, command[1]))
                opened += command[1]
            else:
                for alert_id in command[1]:
                    services.alerts.transition(alert_id, "resolved", "bucketwatch", "bench: private again")
                services.outbox.flush()
                conn.send(None)
        stop()


# ---- Slack's side: the stand-in and the client ---------------------------------------------------


class TimedStandin(SlackStandin):
    """The Web API stand-in, noting when each call arrived and counting calls per method."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._seen = threading.Condition()

    def _record(self, call: Call) -> None:
        at = time.perf_counter()
        super()._record(call)
        with self._seen:
            self.arrived.setdefault(call.method, at)
            self.counts[call.method] = self.counts.get(call.method, 0) + 1
            self._seen.notify_all()

    def wait_count(self, method: str, count: int, timeout: float = 10.0) -> bool:
        with self._seen:
            return self._seen.wait_for(lambda: self.counts.get(method, 0) >= count, timeout)

    def reset(self) -> None:
        """Forget recorded calls between batches, so lookups stay cheap; keep the messages (cards)."""
        with self._lock:
            self.calls.clear()
        with self._seen:
            self.arrived.clear()
            self.counts.clear()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def stats(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "p99": pct(values, 0.99), "max": max(values)}


def _check(reply: Reply, what: str) -> None:
    if reply.status != 200:
        raise SystemExit(f"{what}: HTTP {reply.status} {reply.body[:200]}")


def slash_acks(url: str, text: str, count: int) -> list[float]:
    """ms to HTTP 200 for `count` slash commands answered in the ack."""
    times = []
    for _ in range(count):
        body = encode_form(slash_body(text, user=RESPONDER, command=COMMAND))
        began = time.perf_counter()
        reply = post(url, body)
        times.append((time.perf_counter() - began) * 1000)
        _check(reply, text)
        if "text" not in reply.body:
            raise SystemExit(f"{text}: the ack carried no answer: {reply.body[:200]}")
    return times


def ack_presses(url: str, standin: TimedStandin, alert_ids: list[int], *, one_at_a_time: bool) -> list[float]:
    """ms to HTTP 200 for the Acknowledge button on each open alert."""
    times = []
    standin.reset()
    for n, alert_id in enumerate(alert_ids, 1):
        body = encode_payload(block_action("ack", str(alert_id), user=RESPONDER,
                                           response_url=standin.response_url("press")))  # fmt: skip
        began = time.perf_counter()
        reply = post(url, body)
        times.append((time.perf_counter() - began) * 1000)
        _check(reply, f"ack #{alert_id}")
        if one_at_a_time and not standin.wait_count("chat.update", n):
            raise SystemExit(f"ack #{alert_id}: the card was not updated")
    # Every press must have changed its card, also those sent back to back.
    if not standin.wait_count("chat.update", len(alert_ids), timeout=60):
        raise SystemExit(f"only {standin.counts.get('chat.update', 0)} of {len(alert_ids)} cards updated")
    return times


def who_changed_answers(
    url: str, standin: TimedStandin, buckets: list[str], tag: str
) -> tuple[list[float], list[float]]:
    """(ms to the answer at the response_url, ms to the ack) for `who-changed <bucket>` over `buckets`."""
    answers, acks = [], []
    standin.reset()
    for n, bucket in enumerate(buckets):
        name = f"{tag}-{n}"
        fields = slash_body(f"who-changed {bucket}", user=RESPONDER, command=COMMAND)
        fields["response_url"] = standin.response_url(name)
        body = encode_form(fields)
        began = time.perf_counter()
        reply = post(url, body)
        acks.append((time.perf_counter() - began) * 1000)
        _check(reply, f"who-changed {bucket}")
        method = f"response_url:{name}"
        if not standin.wait_count(method, 1):
            raise SystemExit(f"who-changed {bucket}: no answer at the response_url")
        answers.append((standin.arrived[method] - began) * 1000)
        text = str(standin.calls_to(method)[0].params.get("text", ""))
        if "from the local index" not in text:
            raise SystemExit(f"who-changed {bucket}: not answered from the index: {text[:200]}")
    return answers, acks


# ---- the index -----------------------------------------------------------------------------------


def ensure_index(db: Path, events: int, bucket_count: int, seed: int) -> float | None:
    """Build the who-changed index at `db` unless it already holds `events` events; seconds taken or None."""
    if db.exists():
        store = Store(db)
        have = store.db.execute("select count(*) from events").fetchone()[0]
        if have == events:
            # Reused: forget the alerts, audit rows, outbox … of earlier runs; keep the index and migrations.
            keep = {"events", "index_facets", "_sqlite_migrations"}
            with store.atomic() as conn:
                for table in conn.table_names():
                    if table not in keep and not table.startswith(("sqlite_", "events_")):
                        conn.execute(f"delete from [{table}]")
            store.close()
            return None
        store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    took = bwc.build(store, events, bucket_count, seed)
    store.close()
    return took


def query_sets(db: Path, bucket_count: int, count: int, seed: int) -> dict[str, list[str]]:
    """Random buckets and draws from the busiest 1 %, keeping only buckets with changes in the 90 days."""
    rng = random.Random(seed + 1)
    names = bwc.buckets(bucket_count)
    store = Store(db)
    since = when(bwc.NOW - timedelta(days=90))

    def has_rows(bucket: str) -> bool:
        sql = "select 1 from events where bucket = ? and event_time >= ? limit 1"
        return bool(store.db.execute(sql, [bucket, since]).fetchone())

    sets = {}
    for label, pool in (("random buckets", names), ("busiest 1 % of buckets", names[: max(1, bucket_count // 100)])):
        chosen: list[str] = []
        while len(chosen) < count:
            chosen += [b for b in rng.choices(pool, k=count) if has_rows(b)]
        sets[label] = chosen[:count]
    store.close()
    return sets


# ---- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the who-changed index")
    parser.add_argument("--buckets", type=int, default=20_000)
    parser.add_argument("--db", type=Path, help="index file (default bench/out/slack-index[-N].db, reused)")
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement and round")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--listed", type=int, default=25, help="open alerts that `alerts` lists")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    db = args.db or OUT / ("slack-index.db" if args.events == 10_000_000 else f"slack-index-{args.events}.db")
    built = ensure_index(db, args.events, args.buckets, args.seed)
    n, rounds = args.requests, args.repeat
    sets = query_sets(db, args.buckets, n * rounds, args.seed)
    warm = query_sets(db, args.buckets, 25, args.seed + 100)
    result: dict[str, Any] = {"machine": machine(), "events": args.events, "requests": n, "rounds": rounds,
                              "build_seconds": built, "runs": {}}  # fmt: skip
    print(f"index: {args.events:,} events, {db.stat().st_size / 2**30:.2f} GiB"
          + (f", built in {built:.0f} s" if built else " (reused)"), flush=True)  # fmt: skip

    standin = TimedStandin()
    with standin:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        args_child = (child, standin.url, str(db), args.listed, bwc.NOW.isoformat())
        proc = ctx.Process(target=serve, args=args_child, daemon=True)
        began = time.perf_counter()
        proc.start()
        pid = proc.pid
        assert pid is not None
        if not parent.poll(900):
            proc.kill()
            raise SystemExit("the app did not start")
        info = parent.recv()
        url, listed = info["url"], info["listed"]
        print(f"app up with {listed} open alerts in {time.perf_counter() - began:.0f} s", flush=True)

        def ask(command: Any) -> Any:
            parent.send(command)
            return parent.recv()

        # Warm up: imports on first use, SQLite's page cache (a running bot's would be warm).
        slash_acks(url, "help", 20)
        slash_acks(url, "alerts", 5)
        for k, chosen in enumerate(warm.values()):
            who_changed_answers(url, standin, chosen, f"warm{k}")
        runs: dict[str, list[list[float]]] = {}
        cpu: dict[str, list[float]] = {}

        def record(label: str, run: Any) -> Any:
            """Run one batch, keeping its times under `label` and the app's CPU ms per request."""
            before = cpu_seconds(pid)
            values = run()
            cpu.setdefault(label, []).append((cpu_seconds(pid) - before) * 1000 / n)
            runs.setdefault(label, []).append(values[0] if isinstance(values, tuple) else values)
            return values

        for r in range(rounds):
            record("slash `help` → HTTP 200", lambda: slash_acks(url, "help", n))
            record(f"slash `alerts` ({listed} open) → HTTP 200", lambda: slash_acks(url, "alerts", n))
            # Presses go to freshly opened alerts, closed again after, so `alerts` always lists the same.
            ids = ask(("open", 2 * n))
            record("Acknowledge button, one at a time → HTTP 200",
                   lambda ids=ids: ack_presses(url, standin, ids[:n], one_at_a_time=True))  # fmt: skip
            record("Acknowledge button, back to back → HTTP 200",
                   lambda ids=ids: ack_presses(url, standin, ids[n:], one_at_a_time=False))  # fmt: skip
            ask(("resolve", ids))
            for k, (label, chosen) in enumerate(sets.items()):
                part, tag = chosen[n * r : n * (r + 1)], f"r{r}s{k}"
                answered = record(f"who-changed, {label} → answer at response_url",
                                  lambda part=part, tag=tag: who_changed_answers(url, standin, part, tag))  # fmt: skip
                runs.setdefault(f"who-changed, {label} → HTTP 200 (ack)", []).append(answered[1])
            print(f"  round {r + 1} of {rounds} done", file=sys.stderr, flush=True)
        parent.send("stop")
        proc.join(10)

    print(f"\n{n} requests per row and round, {rounds} round(s); ms, best / median of the rounds")
    print("\n| request → measured until | p50 | p95 | p99 | max | app CPU per request | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    met = True
    for label, per_round in runs.items():
        figures = [stats(v) for v in per_round]
        result["runs"][label] = {"rounds": figures, "app_cpu_ms": cpu.get(label)}
        cells = []
        for key in ("p50", "p95", "p99", "max"):
            values = sorted(f[key] for f in figures)
            cells.append(f"{values[0]:.1f} / {values[len(values) // 2]:.1f}")
        used_ms = sorted(cpu.get(label, []))
        cells.append(f"{used_ms[len(used_ms) // 2]:.1f}" if used_ms else "")
        target = TARGET_WHO_MS if "response_url" in label else TARGET_ACK_MS
        p99 = sorted(f["p99"] for f in figures)[len(figures) // 2]
        ok = p99 < target
        met &= ok
        print(f"| {label} | {' | '.join(cells)} | p99 < {target:.0f}: {'yes' if ok else 'NO'} |")
    print(f"\nall targets met (median p99): {'yes' if met else 'NO'}; load average now {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
