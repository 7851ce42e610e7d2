"""Our hand-written "is public" rule against policyuniverse: time per policy and agreement with AWS's definition.

    python bench/bench_policy.py [--loops 300] [--repeat 3] [--json RESULTS]

Over ../shared/corpus/policies.jsonl (bucket policies labelled by hand against the S3 user guide's
"The meaning of public"). policyuniverse answers "is it internet accessible?"; the labels answer
AWS's question. Canned-ACL rows are ours only (policyuniverse has no ACL rule).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from measure import Series, machine

from bot.core.policy import evaluate_acl, evaluate_policy

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def load() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (CORPUS / "policies.jsonl").read_bytes().splitlines() if line.strip()]


def ours(row: dict[str, Any]) -> bool:
    if row["type"] == "canned_acl":
        return evaluate_acl(row["policy"]).public
    return evaluate_policy(row["policy"]).public


def theirs(row: dict[str, Any]) -> bool:
    from policyuniverse.policy import Policy

    return bool(Policy(row["policy"]).is_internet_accessible())


def per_policy_us(fn: Any, rows: list[dict[str, Any]], loops: int) -> float:
    """Mean microseconds per policy over `loops` passes (the inputs are already parsed dicts for both)."""
    began = time.perf_counter()
    for _ in range(loops):
        for row in rows:
            fn(row)
    return (time.perf_counter() - began) / (loops * len(rows)) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (CORPUS / "policies.jsonl").exists():
        print(f"bench_policy: {CORPUS}/policies.jsonl not found: skipped")
        return 0
    rows = load()
    policies = [r for r in rows if r["type"] == "bucket_policy"]
    try:
        import policyuniverse  # noqa: F401
    except ImportError:
        print("note: policyuniverse not importable (pip install policyuniverse): comparing nothing")
        have_pu = False
    else:
        have_pu = True
    result: dict[str, Any] = {"machine": machine(), "policies": len(policies), "acl_rows": len(rows) - len(policies)}
    wrong_ours = [r for r in rows if ours(r) != r["public"]]
    result["ours_wrong"] = [{"source": r["source"], "label": r["public"]} for r in wrong_ours]
    timing: dict[str, Series] = {"ours": Series()}
    if have_pu:
        before = copy.deepcopy(policies)
        wrong_pu = [r for r in policies if theirs(r) != r["public"]]
        assert policies == before, "policyuniverse changed its input"
        result["policyuniverse_wrong"] = [
            {"source": r["source"], "label": r["public"], "why": r["why"]} for r in wrong_pu
        ]
        timing["policyuniverse"] = Series()
    for _ in range(args.repeat):
        timing["ours"].add(per_policy_us(ours, policies, args.loops))
        if have_pu:
            timing["policyuniverse"].add(per_policy_us(theirs, policies, args.loops))
    result["us_per_policy"] = {k: {"best": s.best, "median": s.median, "runs": s.values} for k, s in timing.items()}
    print(f"{len(policies)} labelled bucket policies (+{result['acl_rows']} canned ACLs, ours only), "
          f"{args.loops} passes × {args.repeat} rounds")  # fmt: skip
    print(f"\n| rule | µs per policy, best | median | policies judged wrong (of {len(policies)}) |")
    print("| --- | --- | --- | --- |")
    ours_wrong_policies = sum(1 for r in wrong_ours if r["type"] == "bucket_policy")
    print(f"| bot.policy.evaluate_policy | {timing['ours'].best:.1f} | {timing['ours'].median:.1f} "
          f"| {ours_wrong_policies} (ACL rows wrong: {len(wrong_ours) - ours_wrong_policies}) |")  # fmt: skip
    if have_pu:
        pu = timing["policyuniverse"]
        print(f"| policyuniverse Policy.is_internet_accessible | {pu.best:.1f} | {pu.median:.1f} | {len(wrong_pu)} |")
        ratio = pu.median / timing["ours"].median
        result["policyuniverse_slower_by_median"] = ratio
        print(f"\npolicyuniverse costs {ratio:.1f}× ours per policy (median). Where it disagrees with AWS:")
        for r in wrong_pu:
            label = "public" if r["public"] else "not public"
            theirs_says = "not internet accessible" if r["public"] else "internet accessible"
            print(f"  - labelled {label}, policyuniverse: {theirs_says}. Label's reason: {r['why']}")
    for r in wrong_ours:
        print(f"  ! ours wrong on {r['source']} (label public={r['public']})")
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 1 if wrong_ours else 0


if __name__ == "__main__":
    sys.exit(main())
