"""From CloudTrail first serving an event to the card reaching Slack: the whole running bot, timed.

    python bench/bench_event_to_card.py [--events 12] [--poll-seconds 5] [--latency 0.1 0.3] [--json OUT]

The real bot (`create_app` + the APScheduler jobs of `run`) polls a CloudTrail LookupEvents stand-in
that answers with realistic latency; moto's server answers the live verdict's S3 reads; a Slack Web
API stand-in receives the cards. Events are planted at random moments. For each, the latency is
measured from the stand-in first answering a LookupEvents call that carries it (what `POLL_SECONDS`
cannot shorten is the wait before that) to its card's chat.postMessage arriving. Target: < 2 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# A script, not a test: make the repository importable when run by path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ACCOUNT = "111122223333"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=12)
    parser.add_argument("--poll-seconds", type=int, default=5)
    parser.add_argument("--latency", type=float, nargs=2, default=(0.1, 0.3))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT
    from moto.server import ThreadedMotoServer

    from standins.cloudtrail import FakeCloudTrailServer, public_bpa_off
    from standins.slack import SlackStandin

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    with FakeCloudTrailServer() as cloudtrail, SlackStandin() as slack, tempfile.TemporaryDirectory() as tmp:
        cloudtrail.fake.default_account = ACCOUNT
        cloudtrail.fake.latency = tuple(args.latency)
        for name in list(os.environ):
            if name.startswith(("AWS_", "SLACK_")):
                del os.environ[name]
        os.environ.update({
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ENDPOINT_URL_CLOUDTRAIL": cloudtrail.url,
        })
        from bot.app import create_app
        from bot.cli.run import build_jobs
        from bot.core.config import Account, Settings

        settings = Settings(
            slack_bot_token="xoxb-bench",
            slack_api_url=slack.url, alert_channel="C0BENCH", accounts=(Account(ACCOUNT),),
            regions=("us-east-1",), poll_seconds=args.poll_seconds, db_path=Path(tmp) / "bench.db",
        )
        _app, services = create_app(settings)
        scheduler = build_jobs(settings, services)
        scheduler.start()
        rng = random.Random(7)
        planted: dict[str, str] = {}  # event id → bucket
        arrived: dict[str, float] = {}
        deadline = time.monotonic() + args.events * (args.poll_seconds * 0.8) + 4 * args.poll_seconds
        next_plant = time.monotonic() + 1
        while time.monotonic() < deadline and (len(arrived) < args.events):
            now = time.monotonic()
            if len(planted) < args.events and now >= next_plant:
                bucket = f"bench-bucket-{len(planted):03d}"
                record = public_bpa_off(bucket=bucket, when=datetime.now(UTC) - timedelta(seconds=5))
                cloudtrail.fake.add(record)
                planted[record["eventID"]] = bucket
                next_plant = now + rng.uniform(0.3, 1.6) * args.poll_seconds
            for call in slack.accepted("chat.postMessage"):
                text = str(call.params.get("text", ""))
                for event_id, bucket in planted.items():
                    if event_id not in arrived and bucket in text:
                        arrived[event_id] = time.monotonic()
            time.sleep(0.01)
        scheduler.shutdown(wait=False)
        latencies = sorted(
            (arrived[e] - cloudtrail.fake.first_served[e]) * 1000 for e in arrived if e in cloudtrail.fake.first_served
        )
    moto.stop()
    if not latencies:
        print("no card arrived")
        return 1
    result = {
        "events": len(planted), "cards": len(arrived), "poll_seconds": args.poll_seconds,
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1),
            "max": round(latencies[-1], 1),
            "p95": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 1),
        },
    }
    print(json.dumps(result, indent=2))
    ok = len(arrived) == len(planted) and latencies[-1] < 2000
    print("target (every card, served → card < 2 s):", "met" if ok else "MISSED")
    if args.json:
        args.json.write_text(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
