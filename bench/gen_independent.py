"""A second benchmark trail, unlike our own generator's: real records cloned, keys in no CloudTrail order.

    python bench/gen_independent.py [OUT_DIR] [--records 1000000] [--files 500] [--seed 11] [--spaced]

`bench/gen_trail.py` writes records the way CloudTrail does (`eventVersion` first). Exports, copies
and other pipelines do not: the real records of ../shared/corpus/background-real.json.gz have their
keys in alphabetical order. This trail mixes, file by file, alphabetical order, a random order per
record (nested objects too) and reversed order; `--spaced` writes `", "` and `": "` separators, and
every tenth file is pretty-printed either way. Background: those 413 real records, cloned with fresh
ids, times and addresses; S3 management events (reads, benign writes, look-alikes, planted exposures)
come from gen_trail's FileMaker and are reordered the same way.

Beside `AWSLogs/` it writes `truth.jsonl` (one planted exposure per line) and `manifest.json`, the
side files a scanner pointed at the folder must not read as input.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import gen_trail
import orjson

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "independent"
ORDERS = ("alphabetical", "random", "reversed")


def reorder(value: Any, order: str, rng: random.Random) -> Any:
    """`value` with every object's keys in `order` (recursively)."""
    if isinstance(value, list):
        return [reorder(v, order, rng) for v in value]
    if not isinstance(value, dict):
        return value
    keys = list(value)
    if order == "alphabetical":
        keys.sort()
    elif order == "reversed":
        keys.reverse()
    else:
        rng.shuffle(keys)
    return {k: reorder(value[k], order, rng) for k in keys}


def dump(records: list[dict[str, Any]], spaced: bool, pretty: bool) -> bytes:
    if pretty:
        return orjson.dumps({"Records": records}, option=orjson.OPT_INDENT_2)
    if not spaced:
        return b'{"Records":[' + b",".join(orjson.dumps(r) for r in records) + b"]}"
    # orjson writes compact JSON only: Python's json module adds the spaces (outside strings).
    return json.dumps({"Records": records}, ensure_ascii=False).encode()


def make_file(job: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    rng = random.Random(job["seed"])
    maker = gen_trail.FileMaker(job["seed"], job["account"], job["region"], datetime.fromisoformat(job["end"]))
    templates = gen_trail.BACKGROUND[job["account"]]
    records = [
        maker.routine() if rng.random() < gen_trail.S3_SHARE else maker.clone(rng.choice(templates))
        for _ in range(job["records"])
    ]
    planted = []
    for where, spec in job["specials"]:
        position = round(where * len(records))
        if spec == "lookalike":
            records.insert(position, maker.lookalike(old=rng.random() < 0.5))
            continue
        rule, old = spec
        record = maker.exposure(rule, old)
        records.insert(position, record)
        planted.append({"event_id": record["eventID"], "rule": rule, "file": job["path"]})
    order = job["order"]
    body = dump([reorder(r, order, rng) for r in records], job["spaced"], job["pretty"])
    path = Path(job["root"]) / job["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body, compresslevel=6, mtime=0))
    return {"planted": planted, "records": len(records), "bytes": len(body)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--planted", type=int, default=400)
    parser.add_argument("--lookalikes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--spaced", action="store_true", help='", " and ": " separators in every file')
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    if not (gen_trail.CORPUS / "background-real.json.gz").exists():
        print(f"gen_independent: {gen_trail.CORPUS}/background-real.json.gz not found", file=sys.stderr)
        return 2
    began = time.perf_counter()
    out: Path = args.out
    if (out / "AWSLogs").exists():
        for old in sorted((out / "AWSLogs").rglob("*.json.gz")):
            old.unlink()
    jobs = gen_trail.plan(out, args.records, args.files, args.planted, args.lookalikes, args.seed)
    rng = random.Random(args.seed)
    for n, job in enumerate(jobs):
        job["order"] = ORDERS[n % len(ORDERS)]
        job["spaced"] = args.spaced
        job["pretty"] = n % 10 == 9
        job["seed"] = rng.getrandbits(63)
    totals = {"records": 0, "bytes": 0}
    planted: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.workers, initializer=gen_trail._init) as pool:
        for result in pool.map(make_file, jobs, chunksize=4):
            totals["records"] += result["records"]
            totals["bytes"] += result["bytes"]
            planted.extend(result["planted"])
    (out / "truth.jsonl").write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in planted))
    manifest = {"seed": args.seed, "files": len(jobs), "records": totals["records"], "spaced": args.spaced,
                "uncompressed_bytes": totals["bytes"], "planted": planted}  # fmt: skip
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    compressed = sum(p.stat().st_size for p in (out / "AWSLogs").rglob("*.json.gz"))
    print(f"wrote {len(jobs)} files, {totals['records']:,} records ({len(planted)} planted), "
          f"{totals['bytes'] / 1e6:.0f} MB JSON / {compressed / 1e6:.0f} MB gzip under {out} "
          f"in {time.perf_counter() - began:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
