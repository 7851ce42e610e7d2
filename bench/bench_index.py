"""`scan --index`: how fast the who-changed index fills, and what it costs on disk per event.

    python bench/bench_index.py [--trail bench/out/independent] [--events 1000000] [--repeat 3]

1. Bytes per event: the trail's S3 configuration writes (their raw records) are cloned to EVENTS
   records with fresh event ids, request ids, `x-amz-id-2` values, buckets (renamed everywhere in the
   record) and times; each clone becomes an index row as a scan worker builds it (`index_row`:
   summary, facet, the raw record packed), in 2 processes; the rows are inserted with
   `bot.store.index.insert_rows` into a fresh database (its migrations, its tables and indexes); file
   size after a checkpoint, divided by EVENTS, and where the bytes are (SQLite's dbstat). The insert
   rate is events per second of wall and of CPU; the workers' cost per row is given beside it.
2. End to end: `scan --index` against `scan` on the same trail, interleaved, into a fresh database
   each round: the extra time, and the events indexed per extra second.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import re
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gen_independent
import orjson
from measure import Series, machine, run_measured

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.core.record import Record  # noqa: E402
from bot.sources.files import expand_paths, scan_file  # noqa: E402
from bot.store.database import Store  # noqa: E402
from bot.store.index import IndexRow, index_row, insert_rows  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)


def records_of(trail: Path, limit: int = 200) -> list[dict[str, Any]]:
    """The raw records the scan indexes in the trail's first `limit` files."""
    paths = expand_paths([str(trail)])[:limit]
    return [row.record() for path in paths for row in scan_file(path, index=True).index_rows]


def clone(template: dict[str, Any], n: int, rng: random.Random) -> dict[str, Any]:
    """Event `n`: the template with what differs from one real event to the next made fresh."""
    bucket = str(Record(template).bucket or "")
    text = orjson.dumps(template)
    if bucket:
        text = text.replace(bucket.encode(), f"bucket-{rng.randrange(20_000)}".encode())
    raw: dict[str, Any] = orjson.loads(text)
    raw["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    raw["eventTime"] = (START + timedelta(seconds=n * 30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if "requestID" in raw:
        raw["requestID"] = rng.randbytes(8).hex().upper()
    extra = raw.get("additionalEventData")
    if isinstance(extra, dict) and isinstance(extra.get("x-amz-id-2"), str):
        extra["x-amz-id-2"] = base64.b64encode(rng.randbytes(len(extra["x-amz-id-2"]) * 3 // 4)).decode()
    return raw


def build_rows(job: tuple[list[dict[str, Any]], int, int, int]) -> tuple[list[IndexRow], float]:
    """Rows `first`…`first + count` (a worker's share) and the CPU seconds building them took."""
    templates, first, count, seed = job
    rng = random.Random(seed * 1_000_003 + first)
    clones = [clone(templates[n % len(templates)], n, rng) for n in range(first, first + count)]
    cpu = time.process_time()
    rows = [index_row(Record(raw), "scan") for raw in clones]
    return rows, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trail", type=Path, default=gen_independent.DEFAULT_OUT)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.trail.is_dir():
        print(f"bench_index: no trail at {args.trail}: make one first with"
              " `.venv/bin/python bench/gen_independent.py --records 200000`", file=sys.stderr)
        return 2
    print(f"machine: {machine()}")
    templates = records_of(args.trail)
    step = 50_000
    jobs = [(templates, first, min(step, args.events - first), 3) for first in range(0, args.events, step)]
    rows: list[IndexRow] = []
    build_cpu = 0.0
    with ProcessPoolExecutor(2) as pool:
        for part, cpu in pool.map(build_rows, jobs):
            rows += part
            build_cpu += cpu
    print(f"{len(rows):,} rows built in 2 processes: {build_cpu / len(rows) * 1e6:.0f} µs of CPU per row",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
        db = Path(tmp) / "index.db"
        store = Store(db)
        wall, cpu = time.perf_counter(), time.process_time()
        added = insert_rows(store, rows)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        raw = sum(len(r.raw) for r in rows) / len(rows)
        parts = store.db.execute("SELECT name, sum(pgsize), sum(payload) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        where = ", ".join(f"{name} {pages / added:,.0f} ({payload / added:,.0f} payload)"
                          for name, pages, payload in parts if pages >= added)  # fmt: skip
        facets = store.db.execute("SELECT count(*) FROM index_facets").fetchone()[0]
        print(f"\n{added:,} events ({facets:,} facets) from {len(templates)} S3 writes of {args.trail.name}: "
              f"{size / 1e6:,.0f} MB, "
              f"{size / added:,.0f} bytes per event ({raw:,.0f} of them the raw record); bytes per event by "
              f"table and index: {where}; insert {added / wall:,.0f} events/s wall, {added / cpu:,.0f} per CPU "
              f"second")  # fmt: skip
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
