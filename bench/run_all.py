"""Run every benchmark and print its figures (`make bench`). Small sizes by default; --full for the documented ones.

    python bench/run_all.py           # a few minutes: 200k records, 200k indexed events, one round each
    python bench/run_all.py --full    # docs/benchmarks.md: 1M records / 600 files, 10M events, 3 rounds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import bench_event_to_card
import bench_policy
import bench_poll
import bench_queue_to_card
import bench_scan
import bench_slack
import bench_who_changed
import gen_trail
import orjson

OUT = Path(__file__).resolve().parent / "out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the sizes and rounds docs/benchmarks.md reports")
    args = parser.parse_args(argv)
    if args.full:
        trail, records, files, events, rounds, queries = OUT / "trail", 1_000_000, 600, 10_000_000, 3, 2000
        index_db = OUT / "index.db"
    else:
        trail, records, files, events, rounds, queries = OUT / "small-trail", 200_000, 120, 200_000, 1, 500
        index_db = OUT / "index-small.db"
    failures = []
    began = time.perf_counter()
    manifest = trail / "manifest.json"
    if not manifest.exists() or orjson.loads(manifest.read_bytes())["records"] != records:
        print(f"== generating the trail ({records:,} records, {files} files)", flush=True)
        gen_trail.main([str(trail), "--records", str(records), "--files", str(files),
                        "--planted", str(max(40, records // 2500))])  # fmt: skip
    steps = (
        ("scan: bucketwatch vs jq vs DuckDB", bench_scan.main, ["--trail", str(trail), "--repeat", str(rounds)]),
        ("policy: bot.policy vs policyuniverse", bench_policy.main, ["--repeat", str(rounds)]),
        ("who-changed latency", bench_who_changed.main,
         ["--events", str(events), "--db", str(index_db), "--queries", str(queries), "--repeat", str(rounds)]),
        ("polling: 100 accounts × 4 regions against the LookupEvents stand-in", bench_poll.main,
         [] if args.full else ["--accounts", "25"]),
        ("event to card through the running bot", bench_event_to_card.main,
         ["--events", str(12 if args.full else 6)]),
        ("SQS message to card through the running bot (EventBridge path)", bench_queue_to_card.main,
         ["--events", str(200 if args.full else 40), "--burst", str(500 if args.full else 100)]),
        ("Slack responses through the app", bench_slack.main,
         ["--events", str(events), "--requests", str(300 if args.full else 100), "--repeat", str(rounds)]),
    )  # fmt: skip
    for title, run, argv_step in steps:
        print(f"\n== {title}", flush=True)
        if run(argv_step) != 0:
            failures.append(title)
    failed = f"; FAILED: {', '.join(failures)}" if failures else ""
    print(f"\n== done in {time.perf_counter() - began:.0f} s{failed}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
