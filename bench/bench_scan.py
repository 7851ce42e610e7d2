"""Our `scan` against the isal floor, jq and DuckDB on the same trails and the same four rules, side by side.

    python bench/bench_scan.py [--trail bench/out/trail --trail bench/out/independent] [--repeat 3] [--json RESULTS]

The rules: bucket Block Public Access weakened (any flag false) or deleted, a public canned bucket ACL,
a bucket policy with an Allow statement to Principal "*" and no condition; failed calls never count.
Tools run interleaved, round after round, so that load from other work on the machine falls on all.
Generates the default trails first (bench/gen_trail.py, bench/gen_independent.py) when they are missing.
The floor is bench/floor.py: isal inflating every file in 2 processes and nothing else.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import gen_independent
import gen_trail
import orjson
from measure import Run, Series, machine, mb, run_measured

ROOT = Path(__file__).resolve().parents[1]
RULES = {"bucket_bpa_weakened", "bucket_bpa_deleted", "bucket_acl_public"}

JQ_FILTER = r"""
def one: if type == "array" then .[0] else . end;
.Records[]
| select(.eventSource == "s3.amazonaws.com" and .errorCode == null)
| select(
    .eventName == "DeleteBucketPublicAccessBlock"
    or (.eventName == "PutBucketPublicAccessBlock"
        and ((.requestParameters.PublicAccessBlockConfiguration? // null | one | objects
              | [.BlockPublicAcls, .IgnorePublicAcls, .BlockPublicPolicy, .RestrictPublicBuckets]
              | any(. != true and . != "true")) // false))
    or (.eventName == "PutBucketAcl"
        and ((.requestParameters["x-amz-acl"]? // null | one) as $a
             | ["public-read", "public-read-write", "authenticated-read"] | index([$a]) != null))
    or (.eventName == "PutBucketPolicy"
        and ([.requestParameters.bucketPolicy? | objects | .Statement | if type == "array" then .[] else . end
              | objects | select(.Effect == "Allow" and .Condition == null
                                 and ((.Principal | if type == "object" then .AWS else . end) == "*"))]
             | length > 0))
  )
| .eventID
"""

# DuckDB reads only the fields the rules need (typed), and requestParameters as JSON.
DUCKDB_SQL = """
WITH r AS (
  SELECT unnest(Records, recursive := false) AS j
  FROM read_json(?, compression = 'gzip', format = 'auto', maximum_object_size = 268435456,
    columns = {'Records': 'STRUCT(eventSource VARCHAR, eventName VARCHAR, errorCode VARCHAR, eventID VARCHAR,
                                  requestParameters JSON)[]'})
), s3 AS (
  SELECT j.eventID AS id, j.eventName AS name, j.requestParameters AS p FROM r
  WHERE j.eventSource = 's3.amazonaws.com' AND j.errorCode IS NULL
)
SELECT id FROM s3 WHERE
  name = 'DeleteBucketPublicAccessBlock'
  OR (name = 'PutBucketPublicAccessBlock' AND json_type(p, '$.PublicAccessBlockConfiguration') = 'OBJECT'
      AND list_bool_or(list_transform(
        ['BlockPublicAcls', 'IgnorePublicAcls', 'BlockPublicPolicy', 'RestrictPublicBuckets'],
        lambda f: coalesce(lower(json_extract_string(p, '$.PublicAccessBlockConfiguration."' || f || '"')), '')
                  <> 'true')))
  OR (name = 'PutBucketAcl'
      AND coalesce(json_extract_string(p, '$."x-amz-acl"[0]'), json_extract_string(p, '$."x-amz-acl"'))
          IN ('public-read', 'public-read-write', 'authenticated-read'))
  OR (name = 'PutBucketPolicy' AND json_type(p, '$.bucketPolicy') = 'OBJECT' AND list_bool_or(list_transform(
      CASE json_type(p, '$.bucketPolicy.Statement')
           WHEN 'ARRAY' THEN CAST(json_extract(p, '$.bucketPolicy.Statement') AS JSON[])
           ELSE [json_extract(p, '$.bucketPolicy.Statement')] END,
      lambda s: (s->>'Effect') = 'Allow' AND (s->'Condition') IS NULL
                AND coalesce(s->>'$.Principal.AWS', s->>'$.Principal') = '*')))
"""
DUCKDB_SCRIPT = """
import sys, duckdb
sql = open(sys.argv[1]).read()
rows = duckdb.connect().execute(sql, [sys.argv[2]]).fetchall()
sys.stdout.write("".join(r[0] + "\\n" for r in rows))
"""


def our_ids(stdout: bytes) -> set[str]:
    """Event ids of our findings of the four rules (public policies only where `*` is the principal)."""
    ids = set()
    for line in stdout.splitlines():
        finding = orjson.loads(line)
        rule = finding["detection"]
        # The reason's words: `allows * to` before issue 9, `anyone (Principal "*")` since.
        star = rule == "bucket_policy_public" and any(" allows * to " in c or '(Principal "*")' in c
                                                      for c in finding["changes"])
        if rule in RULES or star:
            ids.add(finding["event_id"])
    return ids


def line_ids(stdout: bytes) -> set[str]:
    return {line.strip() for line in stdout.decode().splitlines() if line.strip()}


def fast_path_misses(logs: Path) -> int:
    """Files our scanner had to parse in full (the byte-search fast path should take every canonical file)."""
    from bot.sources.files import ScanStats, expand_paths, scan

    stats = ScanStats()
    for result in scan(expand_paths([str(logs)])):
        stats.add(result.stats)
    return stats.full_parses


FLOOR = "isal, 2 processes (the floor)"


def tools(trail: Path, work: Path, workers: int | None) -> list[tuple[str, list[str] | str, bool, Any]]:
    """(name, command, shell?, parser) for every tool present; absent ones are reported and skipped."""
    python = sys.executable
    logs = trail / "AWSLogs"
    # Ours gets the trail folder (its side files, manifest.json and truth.jsonl, are not input).
    ours = [python, "-m", "bot", "scan", "--format", "jsonl", "--no-progress", str(trail)]
    if workers:
        ours += ["--workers", str(workers)]
    floor = [python, str(ROOT / "bench" / "floor.py"), str(trail)]
    out: list[tuple[str, list[str] | str, bool, Any]] = [
        ("bucketwatch scan", ours, False, our_ids),
        (FLOOR, floor, False, None),
        ("isal + orjson.loads, 2 processes", [*floor, "--parse"], False, None),
    ]
    listing = f"find {shlex.quote(str(logs))} -name '*.json.gz' -print0 | sort -z"
    out.append(("gzip -dc alone (no rules)", f"{listing} | xargs -0 gzip -dc | wc -c >/dev/null", True, None))
    if shutil.which("jq"):
        filt = work / "rules.jq"
        filt.write_text(JQ_FILTER)
        jq = f"jq -r -f {shlex.quote(str(filt))}"
        out.append(("jq: gzip -dc → jq", f"{listing} | xargs -0 gzip -dc | {jq}", True, line_ids))
        per = f"sh -c 'gzip -dc \"$@\" | {jq}' sh"
        out.append(("jq, 2 pipelines (xargs -P2)", f"{listing} | xargs -0 -n 25 -P 2 {per}", True, line_ids))
    else:
        print("note: jq not installed (Debian package jq): skipped", file=sys.stderr)
    try:
        import duckdb  # noqa: F401
    except ImportError:
        print("note: duckdb not importable (pip install duckdb): skipped", file=sys.stderr)
    else:
        (work / "rules.sql").write_text(DUCKDB_SQL)
        (work / "duck.py").write_text(DUCKDB_SCRIPT)
        pattern = str(logs / "*" / "CloudTrail" / "*" / "*" / "*" / "*" / "*.json.gz")
        cmd = [python, str(work / "duck.py"), str(work / "rules.sql"), pattern]
        out.append(("DuckDB read_json", cmd, False, line_ids))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trail", type=Path, action="append", help="repeat for several trails")
    parser.add_argument("--records", type=int, default=1_000_000, help="when generating a missing trail")
    parser.add_argument("--files", type=int, default=600, help="when generating a missing trail")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="passed to our scan")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only the tools whose names start so (e.g. jq)")
    args = parser.parse_args(argv)
    trails = args.trail or [gen_trail.DEFAULT_OUT, gen_independent.DEFAULT_OUT]
    for trail in trails:
        if not (trail / "manifest.json").exists():
            generate = gen_independent.main if trail == gen_independent.DEFAULT_OUT else gen_trail.main
            generate([str(trail), "--records", str(args.records), "--files", str(args.files)])
    info = machine()
    print(f"machine: {info['nproc']} × {info['cpu']}, load {info['load_before']:.2f}")
    ok = True
    everything: dict[str, Any] = {"machine": info, "trails": {}}
    with tempfile.TemporaryDirectory() as tmp:
        plans = {trail: [t for t in tools(trail, Path(tmp), args.workers)
                         if not args.only or t[0].startswith(tuple(args.only))] for trail in trails}  # fmt: skip
        results: dict[Path, dict[str, dict[str, Any]]] = {trail: {} for trail in trails}
        for round_no in range(args.repeat):
            for trail in trails:  # interleaved: trails and tools take turns, round after round
                planted = {p["event_id"] for p in orjson.loads((trail / "manifest.json").read_bytes())["planted"]}
                for name, cmd, shell, parse in plans[trail]:
                    env = dict(os.environ, PYTHONPATH=str(ROOT))
                    # Python's bytecode cache on, as in any installed copy (pip compiles on install):
                    # without it each run of ours first compiles its ~100 modules again (~0.07 CPU s).
                    env.pop("PYTHONDONTWRITEBYTECODE", None)
                    run: Run = run_measured(cmd, shell=shell, cwd=ROOT, env=env)
                    if run.returncode != 0:
                        print(f"{name}: exit {run.returncode}: {run.stderr.decode()[-500:]}", file=sys.stderr)
                        continue
                    entry = results[trail].setdefault(
                        name, {"wall": Series(), "cpu": Series(), "rss": 0, "pss": 0, "found": None, "extra": None}
                    )
                    entry["wall"].add(run.wall)
                    entry["cpu"].add(run.cpu)
                    entry["rss"] = max(entry["rss"], run.peak_rss_sum)
                    entry["pss"] = max(entry["pss"], run.peak_pss_sum)
                    if parse is not None:
                        ids = parse(run.stdout)
                        entry["found"], entry["extra"] = len(ids & planted), len(ids - planted)
                    print(f"  round {round_no + 1}: {trail.name}: {name}: {run.wall:.2f} s, CPU {run.cpu:.2f} s, "
                          f"peak RSS sum {mb(run.peak_rss_sum)}", file=sys.stderr)  # fmt: skip
    for trail in trails:
        manifest = orjson.loads((trail / "manifest.json").read_bytes())
        size = manifest["uncompressed_bytes"] / 1e6
        print(f"\n### {trail.name}: {manifest['files']} files, {manifest['records']:,} records, "
              f"{size:,.0f} MB of JSON, {len(manifest['planted'])} planted")  # fmt: skip
        misses = fast_path_misses(trail / "AWSLogs")
        good, table = report(results[trail], manifest["records"], len(manifest["planted"]), misses)
        ok &= good
        everything["trails"][str(trail)] = table
    if args.json:
        args.json.write_bytes(orjson.dumps(everything, option=orjson.OPT_INDENT_2))
    return 0 if ok else 1


def report(results: dict[str, dict[str, Any]], records: int, planted: int, misses: int) -> tuple[bool, dict[str, Any]]:
    ours = results.get("bucketwatch scan")
    floor = results.get(FLOOR)
    print(f"\n| tool | wall best | wall median | CPU median | records/s (median) | peak RSS, tree sum "
          f"| peak PSS, tree sum | planted found (of {planted}) | other hits | × the floor (median) "
          f"| ours faster by (median) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    table = {}
    for name, e in results.items():
        wall: Series = e["wall"]
        ratio = wall.median / ours["wall"].median if ours else float("nan")
        over_floor = wall.median / floor["wall"].median if floor else float("nan")
        found = "—" if e["found"] is None else str(e["found"])
        extra = "—" if e["extra"] is None else str(e["extra"])
        faster = "" if name == "bucketwatch scan" else f"{ratio:.1f}×"
        print(f"| {name} | {wall.best:.2f} s | {wall.median:.2f} s | {e['cpu'].median:.2f} s "
              f"| {records / wall.median:,.0f} | {mb(e['rss'])} | {mb(e['pss'])} | {found} | {extra} "
              f"| {over_floor:.2f}× | {faster} |")  # fmt: skip
        table[name] = {"wall_best": wall.best, "wall_median": wall.median, "runs": wall.values,
                       "cpu_median": e["cpu"].median, "cpu_runs": e["cpu"].values,
                       "records_per_s_median": records / wall.median, "peak_rss_sum_bytes": e["rss"],
                       "peak_pss_sum_bytes": e["pss"], "planted_found": e["found"], "other_hits": e["extra"],
                       "over_floor_median": over_floor,
                       "ours_faster_by_median": None if name == "bucketwatch scan" else ratio}  # fmt: skip
    ok = ours is not None and ours["found"] == planted and ours["extra"] == 0
    verdicts = [f"all planted found by our scan and nothing else: {'yes' if ok else 'NO'} "
                f"(files read exactly, not by the byte scan: {misses})"]  # fmt: skip
    if ours is not None:
        small = ours["rss"] <= 150 * 2**20
        verdicts.append(f"peak memory ≤ 150 MB (RSS summed over the tree): {'yes' if small else 'NO'}")
        if floor is not None:
            over = ours["wall"].median / floor["wall"].median
            verdicts.append(f"within 1.5× of the floor: {'yes' if over <= 1.5 else 'NO'} ({over:.2f}× by median wall; "
                            f"{ours['cpu'].median / floor['cpu'].median:.2f}× by CPU)")  # fmt: skip
        for rival in ("jq: gzip -dc → jq", "DuckDB read_json"):
            if rival in table:
                ratio = table[rival]["ours_faster_by_median"]
                verdicts.append(f"≥ 15× faster than {rival}: {'yes' if ratio >= 15 else 'NO'} ({ratio:.1f}× by median)")
    print("\n" + "\n".join(verdicts))
    return ok, {"records": records, "planted": planted, "tools": table, "fast_path_misses": misses,
                "verdicts": verdicts}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
