"""who-changed latency over a big index: p50/p99 of bot.index.who_changed over many random buckets.

    python bench/bench_who_changed.py [--events 10000000] [--db bench/out/index.db] [--queries 2000]

Builds the index once (reused while it holds --events rows): rows go in with bot.store.index.insert_rows
(a real bot.store.Store, its tables and indexes) in large transactions, in time order as ingest would
add them. Since the index is one B-tree (migration 0017) a query's range holds the rows' raw records, so
each row carries --raw-bytes of incompressible bytes, the size of a packed raw record (section 11); the
records themselves are never read here. Buckets follow a skewed (Zipf-like) popularity, as in real
organisations where a few buckets change daily and most rarely. Queries use the real function.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from measure import Series, machine

from bot.store.database import Store
from bot.store.index import IndexRow, insert_rows, who_changed
from bot.store.packing import event_key, when

DEFAULT_DB = Path(__file__).resolve().parent / "out" / "index.db"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
RAW_BYTES = 160  # a packed, pruned raw record: docs/benchmarks.md section 11
SPAN_DAYS = 730  # two years of history, of which who-changed shows the last 90 days
NAMES = ("PutBucketTagging", "PutBucketPolicy", "PutBucketAcl", "PutBucketPublicAccessBlock", "PutBucketVersioning",
         "PutBucketEncryption", "PutBucketLifecycle", "DeleteBucketPolicy", "PutBucketLogging")  # fmt: skip


def buckets(count: int) -> list[str]:
    return [f"bucket-{i:06d}-{('logs', 'data', 'site', 'backup')[i % 4]}" for i in range(count)]


def build(store: Store, events: int, bucket_count: int, seed: int, raw_bytes: int) -> float:
    """Fill the index with `events` rows; returns seconds taken."""
    rng = random.Random(seed)
    names = buckets(bucket_count)
    # Zipf-like weights: bucket i is chosen with weight 1/(i+1); cumulative for random.choices.
    cumulative, total = [], 0.0
    for i in range(bucket_count):
        total += 1.0 / (i + 1)
        cumulative.append(total)
    conn = store.db.conn
    # Bulk load only: the bench's own connection may skip fsyncs; the schema and indexes are the real ones.
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    start = NOW - timedelta(days=SPAN_DAYS)
    step = SPAN_DAYS * 86400 / events
    began = time.perf_counter()
    batch = 200_000
    for offset in range(0, events, batch):
        n = min(batch, events - offset)
        chosen = rng.choices(names, cum_weights=cumulative, k=n)
        rows: list[IndexRow] = []
        for i in range(n):
            moment = start + timedelta(seconds=(offset + i) * step)
            k = rng.randrange(len(NAMES))
            account = f"{100000000000 + rng.randrange(40)}"
            user, arn = f"user{rng.randrange(300)}", f"arn:aws:iam::{account}:user/user{k}"
            facet = (account, "us-east-1", NAMES[k], user, arn, "IAMUser", "aws-cli/2.17.20", "CLI",
                     f"{NAMES[k]} (bench)", "bench")  # fmt: skip
            key = event_key(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            rows.append(IndexRow(key, when(moment), chosen[i], f"10.0.{k}.{rng.randrange(255)}", facet,
                                 rng.randbytes(raw_bytes)))  # fmt: skip
        insert_rows(store, rows)
        done = offset + n
        if done % 1_000_000 == 0 or done == events:
            print(f"  indexed {done:,} events in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA synchronous = NORMAL")
    return time.perf_counter() - began


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(store: Store, names: list[str], rounds: int) -> tuple[Series, Series, Series, int]:
    """p50 and p99 wall ms of who_changed over `names`, and p99 of its CPU ms, one entry per round."""
    p50, p99, cpu99 = Series(), Series(), Series()
    rows = 0
    for _ in range(rounds):
        walls, cpus = [], []
        rows = 0
        for name in names:
            began, began_cpu = time.perf_counter(), time.thread_time()
            rows += len(who_changed(store, name, days=90, now=NOW))
            walls.append((time.perf_counter() - began) * 1000)
            cpus.append((time.thread_time() - began_cpu) * 1000)
        p50.add(pct(walls, 0.5))
        p99.add(pct(walls, 0.99))
        # CPU time beside wall time tells our own cost from waiting for a core other work holds.
        cpu99.add(pct(cpus, 0.99))
    return p50, p99, cpu99, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--buckets", type=int, default=20_000)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--raw-bytes", type=int, default=RAW_BYTES, help="bytes of raw record per row")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    store = Store(args.db)
    have = store.db.execute("select count(*) from events").fetchone()[0]
    build_s = None
    if have != args.events:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        store = Store(args.db)
        build_s = build(store, args.events, args.buckets, args.seed, args.raw_bytes)
    size = sum(Path(f"{args.db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{args.db}{s}").exists())
    rng = random.Random(args.seed + 1)
    names = buckets(args.buckets)
    sets = {"random buckets": rng.choices(names, k=args.queries), "busiest 1% of buckets": rng.choices(
        names[: max(1, args.buckets // 100)], k=args.queries)}  # fmt: skip
    plan = store.db.execute(
        "explain query plan select event_id, event_time, source_ip, facet from events"
        " where bucket = ? and event_time >= ? order by event_time desc limit 50",
        ["x", 0],
    ).fetchall()
    result: dict[str, Any] = {"machine": machine(), "events": args.events, "buckets": args.buckets, "db_bytes": size,
                              "build_seconds": build_s, "plan": [r[-1] for r in plan], "sets": {}}  # fmt: skip
    print(f"{args.events:,} events over {args.buckets:,} buckets, {size / 2**30:.2f} GiB"
          + (f", built in {build_s:.0f} s" if build_s else " (reused)") + f"; plan: {result['plan']}")  # fmt: skip
    print("\n| buckets queried | queries × rounds | rows returned (last round) | p50 best / median "
          "| p99 best / median | p99 CPU time best / median |")
    print("| --- | --- | --- | --- | --- | --- |")
    worst = 0.0
    for label, chosen in sets.items():
        measure(store, chosen[:200], 1)  # warm the page cache, as a running bot's would be
        p50, p99, cpu99, rows = measure(store, chosen, args.repeat)
        worst = max(worst, p99.median)
        result["sets"][label] = {"p50_ms": p50.values, "p99_ms": p99.values, "p99_cpu_ms": cpu99.values, "rows": rows}
        print(f"| {label} | {len(chosen)} × {args.repeat} | {rows:,} | {p50.best:.2f} / {p50.median:.2f} ms "
              f"| {p99.best:.2f} / {p99.median:.2f} ms | {cpu99.best:.2f} / {cpu99.median:.2f} ms |")  # fmt: skip
    print(f"\np99 < 10 ms: {'yes' if worst < 10 else 'NO'} (worst median p99 {worst:.2f} ms)")
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0 if worst < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
