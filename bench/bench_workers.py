"""Scan workers: trail files per second against the number of `bucketwatch worker` processes.

    python bench/bench_workers.py [--trail bench/out/trail] [--files 120] [--workers 1 2 3 4] [--repeat 3]

moto's server (its own process, on 127.0.0.1) plays S3 and SQS: the trail's first FILES log files are
uploaded once; each run announces them all on the notification queue, starts N worker processes
(`bucketwatch worker --once`), and times until every worker has exited with the queue drained. Runs
are interleaved (1, 2, 3, 4 workers, then again). moto's server shares the machine's cores with the
workers, as a queue and a bucket would not.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import gen_trail
from measure import Series, machine

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "bench-trail"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("moto server did not start")


def left(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trail", type=Path, default=gen_trail.DEFAULT_OUT)
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    files = sorted((args.trail / "AWSLogs").rglob("*.json.gz"))[: args.files]
    if not files:
        print(f"no trail under {args.trail}: run bench/gen_trail.py first", file=sys.stderr)
        return 2
    moto, url = start_moto()
    env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1", AWS_REGIONS="us-east-1", PYTHONPATH=str(ROOT))  # fmt: skip
    os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                           "AWS_DEFAULT_REGION")})  # fmt: skip
    try:
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        keys = []
        for path in files:
            key = str(path.relative_to(args.trail))
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
            keys.append(key)
        size = sum(p.stat().st_size for p in files)
        print(f"{len(files)} files, {size / 1e6:.0f} MB gzip; machine: {machine()}")
        results: dict[int, Series] = {n: Series() for n in args.workers}
        for round_no in range(args.repeat):
            for n in args.workers:
                notes = sqs.create_queue(QueueName=f"notes-{round_no}-{n}")["QueueUrl"]
                found = sqs.create_queue(QueueName=f"found-{round_no}-{n}")["QueueUrl"]
                for start in range(0, len(keys), 10):
                    entries = [{"Id": str(i), "MessageBody": json.dumps({"Records": [
                        {"eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
                         "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]})}
                        for i, key in enumerate(keys[start : start + 10])]  # fmt: skip
                    sqs.send_message_batch(QueueUrl=notes, Entries=entries)
                worker_env = dict(env, TRAIL_QUEUE_URLS=notes, FINDINGS_QUEUE_URL=found, LOG_LEVEL="WARNING")
                began = time.perf_counter()
                procs = [subprocess.Popen([sys.executable, "-m", "bot", "worker", "--once", "--wait", "1"],
                                          env=worker_env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL) for _ in range(n)]  # fmt: skip
                codes = [p.wait() for p in procs]
                wall = time.perf_counter() - began
                assert codes == [0] * n and left(sqs, notes) == 0, (codes, left(sqs, notes))
                results[n].add(len(keys) / wall)
                print(f"  round {round_no + 1}: {n} worker(s): {wall:.2f} s, {len(keys) / wall:.1f} files/s",
                      file=sys.stderr)  # fmt: skip
        base = results[args.workers[0]].median
        print("\n| workers | files/s, best | files/s, median | speed-up (median) |")
        print("| --- | --- | --- | --- |")
        for n, series in results.items():
            print(f"| {n} | {max(series.values):.1f} | {series.median:.1f} | {series.median / base:.2f}× |")
    finally:
        moto.terminate()
        moto.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
