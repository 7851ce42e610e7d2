"""Many tiny files: `scan` against jq over 100,000 small gzip log files.

    python bench/bench_tiny.py [--files 100000] [--repeat 3]

Writes OUT (bench/out/tiny) once: FILES gzip log files of 1 to 8 records each (the real records of
../shared/corpus/background-real.json.gz, with an S3 exposure in every 1,000th file) in the trail
layout, 100 files per day folder. Then runs, interleaved, round after round: our scan (batches of files
per worker), `gzip -dc | jq` (one pipeline) and jq in two pipelines, all with the rules of bench_scan.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import bench_scan
import gen_trail
import orjson
from measure import Series, machine, mb, run_measured

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out" / "tiny"


def generate(out: Path, files: int) -> list[str]:
    gen_trail._init()
    account = gen_trail.ACCOUNTS[0]
    templates = gen_trail.BACKGROUND[account]
    maker = gen_trail.FileMaker(5, account, "us-east-1", datetime(2025, 3, 3, tzinfo=UTC))
    rng = random.Random(5)
    planted = []
    for n in range(files):
        records = [maker.clone(rng.choice(templates)) for _ in range(rng.randint(1, 8))]
        if n % 1000 == 0:
            exposure = maker.exposure("bucket_bpa_deleted", False)
            records.append(exposure)
            planted.append(exposure["eventID"])
        folder = out / "AWSLogs" / account / "CloudTrail" / "us-east-1" / "2025" / "03" / f"d{n // 100:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{account}_CloudTrail_us-east-1_20250303T0000Z_{n:08d}.json.gz"
        body = b'{"Records":[' + b",".join(orjson.dumps(r) for r in records) + b"]}"
        (folder / name).write_bytes(gzip.compress(body, 6, mtime=0))
    (out / "manifest.json").write_bytes(orjson.dumps({"files": files, "planted": planted}))
    return planted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    manifest = OUT / "manifest.json"
    if not manifest.exists() or orjson.loads(manifest.read_bytes())["files"] != args.files:
        generate(OUT, args.files)
    planted = set(orjson.loads(manifest.read_bytes())["planted"])
    logs = OUT / "AWSLogs"
    print(f"{args.files:,} files, {len(planted)} planted; machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "rules.jq").write_text(bench_scan.JQ_FILTER)
        jq = f"jq -r -f {shlex.quote(str(Path(tmp) / 'rules.jq'))}"
        listing = f"find {shlex.quote(str(logs))} -name '*.json.gz' -print0 | sort -z"
        tools = [
            ("bucketwatch scan", [sys.executable, "-m", "bot", "scan", "--format", "jsonl", "--no-progress", str(OUT)],
             False, bench_scan.our_ids),
            ("jq: gzip -dc → jq", f"{listing} | xargs -0 gzip -dc | {jq}", True, bench_scan.line_ids),
            ("jq, 2 pipelines (xargs -P2)", f"{listing} | xargs -0 -n 5000 -P 2 sh -c 'gzip -dc \"$@\" | {jq}' sh",
             True, bench_scan.line_ids),
        ]  # fmt: skip
        results: dict[str, dict[str, object]] = {}
        for round_no in range(args.repeat):
            for name, cmd, shell, parse in tools:
                run = run_measured(cmd, shell=shell, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
                entry = results.setdefault(name, {"wall": Series(), "cpu": Series(), "rss": 0, "found": 0})
                entry["wall"].add(run.wall)  # type: ignore[attr-defined]
                entry["cpu"].add(run.cpu)  # type: ignore[attr-defined]
                entry["rss"] = max(int(entry["rss"]), run.peak_rss_sum)  # type: ignore[call-overload]
                entry["found"] = len(parse(run.stdout) & planted)
                print(f"  round {round_no + 1}: {name}: {run.wall:.2f} s, CPU {run.cpu:.2f} s", file=sys.stderr)
    print(f"\n| tool | wall best | wall median | CPU median | peak RSS, tree sum | planted found (of {len(planted)}) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, e in results.items():
        wall, cpu = e["wall"], e["cpu"]
        print(f"| {name} | {wall.best:.2f} s | {wall.median:.2f} s | {cpu.median:.2f} s | {mb(e['rss'])} "  # type: ignore[attr-defined]
              f"| {e['found']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
