"""From a message's arrival in SQS to its card's chat.postMessage: the running bot with default settings, timed.

    python bench/bench_queue_to_card.py [--events 200] [--burst 500] [--json OUT]

The real bot (`create_app`, the APScheduler jobs and the queue listeners of `run`, every setting at its
default) reads EVENT_QUEUE_URLS from moto's SQS (its server on 127.0.0.1, in a process of its own as
AWS would be); moto also answers the live verdict's S3 reads, a LookupEvents stand-in the safety-net
poll, and a Slack Web API stand-in receives the cards. The bot's CPU time per card is reported too: it
depends less on how busy the machine is. Each event is an EventBridge "AWS API Call via CloudTrail"
message: Block Public Access turned off on a bucket of its own, so each one makes a card.

Latency is measured from just before the message is sent (so it includes the send's round trip: an
upper bound on the time since its arrival in SQS) to the stand-in receiving the card's chat.postMessage.
Steady: `--events` messages one at a time, 0.2–1.5 s apart, after one warm-up message (the first card
after start also builds the verdict's AWS clients; reported apart). Burst: `--burst` messages sent at
once (SendMessageBatch, 10 a call). Target: steady p99 ≤ 5 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# A script, not a test: make the repository importable when run by path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ACCOUNT = "111122223333"
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
NAME = re.compile(r"\b(?:warm-up|steady-\d{4}|burst-\d{4})\b")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def rank(p: float) -> float:  # nearest rank: the smallest value with at least p % of them at or below it
        return round(ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)], 1)

    return {"p50": round(statistics.median(ordered), 1), "p95": rank(95), "p99": rank(99), "max": round(ordered[-1], 1)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto's server did not start on {host}:{port}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import boto3

    from standins.cloudtrail import FakeCloudTrailServer, public_bpa_off
    from standins.eventbridge import api_call_event
    from standins.slack import SlackStandin

    host, port = "127.0.0.1", _free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        env={**os.environ, "MOTO_ACCOUNT_ID": ACCOUNT}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _wait_for_port(host, port)
    with FakeCloudTrailServer() as cloudtrail, SlackStandin() as slack, tempfile.TemporaryDirectory() as tmp:
        cloudtrail.fake.default_account = ACCOUNT
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
        from bot.sources.listener import start_listeners

        sqs = boto3.client("sqs", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="bucketwatch-s3-api-calls")["QueueUrl"]
        buckets = ["warm-up"] + [f"steady-{n:04d}" for n in range(args.events)]
        buckets += [f"burst-{n:04d}" for n in range(args.burst)]
        for bucket in buckets:  # real buckets, so the live verdict has something to read
            s3.create_bucket(Bucket=bucket)
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(FLAGS, False))
        settings = Settings(  # every other setting at its default (POLL_SECONDS 60, SAFETY_NET_FACTOR 5, …)
            slack_bot_token="xoxb-bench", slack_api_url=slack.url, alert_channel="C0BENCH",
            accounts=(Account(ACCOUNT),), event_queue_urls=(queue_url,), db_path=Path(tmp) / "bench.db",
        )
        _app, services = create_app(settings)
        listeners = start_listeners(services.poller)  # as `run` does: before the first scheduled poll
        scheduler = build_jobs(settings, services)
        scheduler.start()
        time.sleep(2)  # the first scheduled poll (LookupEvents, the digest check) is out of the way
        sent: dict[str, float] = {}
        cpu: dict[str, float] = {}

        arrived: dict[str, float] = {}
        looked_at = [0]

        def cards() -> dict[str, float]:
            """Each bucket's first card (incrementally: this loop shares the CPU with the bot)."""
            calls = slack.accepted("chat.postMessage")
            for call in calls[looked_at[0] :]:
                for bucket in NAME.findall(str(call.params.get("text", ""))):
                    arrived.setdefault(bucket, call.at)
            looked_at[0] = len(calls)
            return arrived

        def wait_for(names: list[str], quiet: float) -> dict[str, float]:
            """Until every card is in, or none has come for `quiet` seconds."""
            last, count = time.monotonic(), 0
            while time.monotonic() - last < quiet:
                got = cards()
                if all(n in got for n in names):
                    return got
                if len(got) > count:
                    last, count = time.monotonic(), len(got)
                time.sleep(0.1)
            return cards()

        rng = random.Random(7)
        # The first card after start also builds the AWS clients the live verdict uses: timed apart.
        steady_names = buckets[1 : args.events + 1]
        for bucket in buckets[: args.events + 1]:
            if bucket == steady_names[0]:
                cpu["steady"] = time.process_time()
            body = json.dumps(api_call_event(public_bpa_off(bucket=bucket, account=ACCOUNT)))
            sent[bucket] = time.monotonic()
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
            time.sleep(rng.uniform(0.2, 1.5))
        steady_cards = wait_for(buckets[: args.events + 1], 30)
        cpu["steady"] = time.process_time() - cpu["steady"]
        first = (steady_cards["warm-up"] - sent["warm-up"]) * 1000 if "warm-up" in steady_cards else None
        steady = [(steady_cards[b] - sent[b]) * 1000 for b in steady_names if b in steady_cards]

        burst_names = buckets[args.events + 1 :]
        cpu["burst"] = time.process_time()
        began = time.monotonic()
        for start in range(0, len(burst_names), 10):
            chunk = burst_names[start : start + 10]
            entries = [
                {"Id": str(n), "MessageBody": json.dumps(api_call_event(public_bpa_off(bucket=b, account=ACCOUNT)))}
                for n, b in enumerate(chunk)
            ]
            at = time.monotonic()
            for bucket in chunk:
                sent[bucket] = at
            sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sending = time.monotonic() - began
        burst_cards = wait_for(burst_names, 60)
        cpu["burst"] = time.process_time() - cpu["burst"]
        burst = [(burst_cards[b] - sent[b]) * 1000 for b in burst_names if b in burst_cards]
        drained = max(burst_cards.values(), default=began) - began
        left = -1
        deadline = time.monotonic() + 30  # a hand-over deletes its messages once its last card is posted
        while left and time.monotonic() < deadline:
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
            left = sum(int(v) for k, v in attributes.items() if k.startswith("ApproximateNumberOfMessages"))
            time.sleep(0.1)
        for listener in listeners:
            listener.stop()
        scheduler.shutdown(wait=False)
        posted = len(slack.accepted("chat.postMessage"))
    moto.terminate()
    moto.wait(10)
    result: dict[str, Any] = {
        "first_card_after_start_ms": round(first, 1) if first is not None else None,
        "steady": {
            "events": args.events, "cards": len(steady), "latency_ms": percentiles(steady) if steady else None,
            "bot_cpu_ms_per_card": round(cpu["steady"] * 1000 / max(1, len(steady)), 1),
        },
        "burst": {
            "events": args.burst, "cards": len(burst), "sent_in_s": round(sending, 2),
            "last_card_after_s": round(drained, 1), "latency_ms": percentiles(burst) if burst else None,
            "bot_cpu_ms_per_card": round(cpu["burst"] * 1000 / max(1, len(burst)), 1),
        },
        "chat_postMessage": posted, "messages_left_on_queue": left, "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    ok = len(steady) == args.events and percentiles(steady)["p99"] <= 5000 and len(burst) == args.burst and not left
    print("target (steady p99 ≤ 5 s, every card, queue drained):", "met" if ok else "MISSED")
    if args.json:
        args.json.write_text(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
