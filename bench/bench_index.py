"""`scan --index`: how fast the who-changed index fills, and what it costs on disk per event.

    python bench/bench_index.py [--trail bench/out/independent] [--events 1000000] [--repeat 3]

1. Bytes per event: the trail's S3 configuration writes become index rows (as the scan workers build
   them: summary from the findings, raw record deflated against the dictionary), cloned with fresh
   event ids, buckets and times to EVENTS rows, inserted with `bot.store.index.insert_rows` into a
   fresh database (its migrations, its indexes); file size after a checkpoint, divided by EVENTS.
   The insert rate is events per second of wall and of CPU.
2. End to end: `scan --index` against `scan` on the same trail, interleaved, into a fresh database
   each round: the extra time, and the events indexed per extra second.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gen_independent
from measure import Series, machine, run_measured

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.sources.files import expand_paths, scan_file  # noqa: E402
from bot.store.database import Store  # noqa: E402
from bot.store.index import insert_rows  # noqa: E402


def rows_of(trail: Path, limit: int = 200) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in expand_paths([str(trail)])[:limit]:
        rows += scan_file(path, index=True).index_rows
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trail", type=Path, default=gen_independent.DEFAULT_OUT)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    templates = rows_of(args.trail)
    rng = random.Random(3)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(args.events):
        row = dict(templates[n % len(templates)])
        row["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        row["bucket"] = f"bucket-{rng.randrange(20_000)}"
        row["event_time"] = (start + timedelta(seconds=n * 30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(row)
    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
        db = Path(tmp) / "index.db"
        store = Store(db)
        wall, cpu = time.perf_counter(), time.process_time()
        added = insert_rows(store, rows)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        raw = sum(len(r["raw"]) for r in rows) / len(rows)  # type: ignore[arg-type]
        print(f"\n{added:,} events from {len(templates)} S3 writes of {args.trail.name}: {size / 1e6:,.0f} MB, "
              f"{size / added:,.0f} bytes per event ({raw:,.0f} of them the raw record); "
              f"insert {added / wall:,.0f} events/s wall, {added / cpu:,.0f} per CPU second")  # fmt: skip
        del rows
        ours = [sys.executable, "-m", "bot", "scan", "--format", "jsonl", "--no-progress", str(args.trail)]
        plain, indexed, counts = Series(), Series(), []
        plain_cpu, indexed_cpu = Series(), Series()
        for round_no in range(args.repeat):
            env = dict(os.environ, PYTHONPATH=str(ROOT), DB_PATH=str(Path(tmp) / f"scan-{round_no}.db"))
            one = run_measured(ours, cwd=ROOT, env=env)
            two = run_measured([*ours, "--index"], cwd=ROOT, env=env)
            plain.add(one.wall)
            plain_cpu.add(one.cpu)
            indexed.add(two.wall)
            indexed_cpu.add(two.cpu)
            counts.append(int(re.search(r"(\d+) new event\(s\) indexed", two.stderr.decode()).group(1)))  # type: ignore[union-attr]
            print(f"  round {round_no + 1}: scan {one.wall:.2f} s (CPU {one.cpu:.2f}), scan --index {two.wall:.2f} s "
                  f"(CPU {two.cpu:.2f}), {counts[-1]:,} indexed", file=sys.stderr)  # fmt: skip
        extra, extra_cpu = indexed.median - plain.median, indexed_cpu.median - plain_cpu.median
        print(f"scan --index on {args.trail.name}: {counts[-1]:,} events; scan {plain.median:.2f} s, "
              f"--index {indexed.median:.2f} s (medians): +{extra:.2f} s, {counts[-1] / max(extra, 1e-9):,.0f} "
              f"events per extra second; CPU +{extra_cpu:.2f} s, {counts[-1] / max(extra_cpu, 1e-9):,.0f} "
              f"events per extra CPU second")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
