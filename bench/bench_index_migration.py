"""Migration 0017's cost on a large who-changed index: how long opening the store takes when it rewrites `events`.

    python bench/bench_index_migration.py [--events 2000000] [--raw-bytes 250]

A database is migrated up to 0016 (the compact index: a table and two indexes) and filled by SQLite
itself, so the build takes seconds: random 16-byte event ids, times in order (one event every 6 s),
20,000 buckets, 500 facets, addresses, and raw records of --raw-bytes random bytes (the size of a
raw record packed before this branch pruned it: docs/benchmarks.md section 11). Then `Store(path)`
applies 0017 (copy in key order, drop the old table and its indexes): its wall and CPU time, and the
file before and after (after a checkpoint).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from measure import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.store.database import Store, connect  # noqa: E402
from bot.store.migrations import MIGRATIONS  # noqa: E402

_FILL = """
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
    INSERT INTO events (event_id, event_time, bucket, facet, source_ip, raw)
    SELECT randomblob(16), 1700000000 + i * 6, 'bucket-' || (abs(random()) % 20000), 1 + abs(random()) % 500,
           '10.0.' || (abs(random()) % 255) || '.' || (abs(random()) % 255), randomblob(?) FROM n
"""
_FACETS = """
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 499)
    INSERT INTO index_facets (account, region, event_name, actor, actor_arn, actor_type, user_agent, agent_kind,
                              summary, source)
    SELECT 100000000000 + i % 40, 'us-east-1', 'PutBucketPolicy', 'user' || i, 'arn:aws:iam::1:user/u' || i,
           'IAMUser', 'aws-cli/2.17.20', 'CLI', 'Bucket policy set (not public)', 'trail' FROM n
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--raw-bytes", type=int, default=250)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
        path = Path(tmp) / "index.db"
        db = connect(path)
        MIGRATIONS.apply(db, stop_before="0017_events_one_btree")
        began = time.perf_counter()
        with db.conn:
            db.execute(_FACETS)
            db.execute(_FILL, [args.events, args.raw_bytes])
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        before = path.stat().st_size
        print(f"0016 index of {args.events:,} events built in {time.perf_counter() - began:.0f} s: "
              f"{before / 2**20:,.0f} MiB", file=sys.stderr)  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        store = Store(path)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        wal = Path(f"{path}-wal").stat().st_size
        rows = store.db.execute("SELECT count(*) FROM events").fetchone()[0]
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = path.stat().st_size
        page = store.db.execute("PRAGMA page_size").fetchone()[0]
        used = after - store.db.execute("PRAGMA freelist_count").fetchone()[0] * page
        assert rows == args.events, rows
        print(f"migration 0017 on {args.events:,} events: {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"({args.events / wall:,.0f} rows/s); file {before / 2**20:,.0f} MiB → {after / 2**20:,.0f} MiB, "
              f"of which {used / 2**20:,.0f} MiB in use ({before / rows:.0f} → {used / rows:.0f} bytes per event; "
              f"the rest free pages that later rows reuse); WAL {wal / 2**20:,.0f} MiB before its checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
