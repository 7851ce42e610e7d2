"""Poll cycles of many accounts × regions against the fake LookupEvents endpoint with realistic latency.

    python bench/bench_poll.py [--accounts 100] [--regions 4] [--latency 0.1 0.3] [--busy 5] [--json OUT]

Every account is read through an assumed role (the fake answers STS too), every request waits 100–300
ms at the fake, and the fake throttles like AWS above 2 requests/s per account-region. Measured:
a cold idle poll (roles assumed, clients built), a warm idle poll, a poll with one public change in
20 account-regions (event-to-callback latency: from the fake answering with the event to
`on_records` holding it), and a poll where a few account-regions hold read-heavy windows (the
per-event-name strategy, paced). Checks: idle poll < 60 s, ≤ 2 calls per idle account-region, never
more than 2 requests in any second per account-region, no throttling, every planted event delivered.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

# A script, not a test: make the repository's `bot.standins.cloudtrail` importable when run by path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.aws.clients import AwsClients
from bot.core.config import Settings, parse_accounts
from bot.core.record import Record
from bot.sources.poller import Poller
from bot.store.database import Store
from standins.cloudtrail import FakeCloudTrail, FakeCloudTrailServer, public_bpa_off, s3_record

REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "sa-east-1")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(accounts: int, regions: int, latency: tuple[float, float], busy: int, workers: int) -> dict[str, Any]:
    fake = FakeCloudTrail(default_account="000000000000", latency=latency, enforce_rate=2)
    results: dict[str, Any] = {"accounts": accounts, "regions": regions, "latency_s": list(latency), "workers": workers}
    with FakeCloudTrailServer(fake) as server, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            AWS_ENDPOINT_URL_CLOUDTRAIL=server.url,
            AWS_ENDPOINT_URL_STS=server.url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=str(Path(tmp) / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(Path(tmp) / "none"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        ids = [f"{100000000000 + i}" for i in range(accounts)]
        spec = ",".join(f"{a}:arn:aws:iam::{a}:role/BucketwatchRead" for a in ids)
        settings = Settings(accounts=parse_accounts(spec), regions=REGIONS[:regions], lookback_minutes=20)
        received: dict[str, float] = {}

        def on_records(records: list[Record]) -> None:
            at = time.monotonic()
            for record in records:
                received.setdefault(record.event_id, at)

        poller = Poller(settings, Store(Path(tmp) / "bench.db"), AwsClients(settings), on_records=on_records,
                        max_workers=workers)
        targets = [(a, r) for a in ids for r in settings.regions]

        def timed(label: str) -> float:
            before = len(fake.log)
            began = time.perf_counter()
            report = poller.poll_once()
            seconds = time.perf_counter() - began
            errors = [s.error for s in report.sources if s.error]
            results[label] = {"seconds": round(seconds, 2), "requests": len(fake.log) - before, "errors": len(errors)}
            if errors:
                results[label]["first_error"] = errors[0]
            return seconds

        timed("idle_cold")
        mark = len(fake.log)
        timed("idle_warm")
        per_target: dict[tuple[str, str], int] = {}
        for r in fake.log[mark:]:
            per_target[(r.account, r.region)] = per_target.get((r.account, r.region), 0) + 1
        results["idle_warm"]["max_calls_per_account_region"] = max(per_target.values(), default=0)

        # One public change in 20 account-regions: how long from the fake answering to on_records.
        rng = random.Random(7)
        now = datetime.now(UTC)
        planted = []
        for account, region in rng.sample(targets, min(20, len(targets))):
            record = public_bpa_off(account=account, region=region, when=now - timedelta(seconds=30))
            planted.append(fake.add(record)["eventID"])
        timed("events")
        lat = [received[e] - fake.first_served[e] for e in planted if e in received and e in fake.first_served]
        results["events"].update(
            delivered=f"{sum(e in received for e in planted)}/{len(planted)}",
            callback_latency_ms={"p50": round(statistics.median(lat) * 1000, 1) if lat else None,
                                 "max": round(max(lat) * 1000, 1) if lat else None},
        )

        # Read-heavy windows in a few account-regions: 500 reads in two minutes, one write before them.
        now = datetime.now(UTC)
        busy_writes = []
        for account, region in rng.sample(targets, min(busy, len(targets))):
            for i in range(500):
                fake.add(s3_record("GetBucketPolicyStatus", account=account, region=region,
                                   when=now - timedelta(seconds=i / 4)))
            write = public_bpa_off(account=account, region=region, when=now - timedelta(minutes=10))
            busy_writes.append(fake.add(write)["eventID"])
        mark = len(fake.log)
        timed("busy")
        busy_calls: dict[tuple[str, str], int] = {}
        for r in fake.log[mark:]:
            busy_calls[(r.account, r.region)] = busy_calls.get((r.account, r.region), 0) + 1
        results["busy"].update(
            delivered=f"{sum(e in received for e in busy_writes)}/{len(busy_writes)}",
            max_calls_per_account_region=max(busy_calls.values(), default=0),
        )

        results["max_requests_in_any_second_per_account_region"] = fake.max_rate(1.0)
        results["throttled"] = sum(1 for r in fake.log if r.error == "ThrottlingException")
        results["assume_role_calls"] = len(fake.assumed_roles)
    def all_in(label: str) -> bool:
        got, total = results[label]["delivered"].split("/")
        return bool(got == total)

    checks = {
        "idle poll < 60 s": results["idle_cold"]["seconds"] < 60 and results["idle_warm"]["seconds"] < 60,
        "idle ≤ 2 calls per account-region": results["idle_warm"]["max_calls_per_account_region"] <= 2,
        "≤ 2 requests/s per account-region": results["max_requests_in_any_second_per_account_region"] <= 2,
        "no throttling": results["throttled"] == 0,
        "every event delivered": all_in("events") and all_in("busy"),
        "no errors": all(results[k]["errors"] == 0 for k in ("idle_cold", "idle_warm", "events", "busy")),
    }
    results["checks"] = checks
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--regions", type=int, default=4, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--latency", type=float, nargs=2, default=(0.1, 0.3), metavar=("MIN", "MAX"))
    parser.add_argument("--busy", type=int, default=5, help="account-regions with read-heavy windows")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args.accounts, args.regions, tuple(args.latency), args.busy, args.workers)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    failed = [name for name, ok in results["checks"].items() if not ok]
    for name in failed:
        print(f"FAILED: {name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
