"""How many log lines `python -m bot run` writes at the default LOG_LEVEL, and from which loggers.

    python bench/bench_log_lines.py [--seconds 240] [--log-format text|json] [--code DIR] [--json OUT]

The real `run` command in a subprocess, HTTP mode, default settings (POLL_SECONDS=60, the outbox
every 5 s), one account polled against the CloudTrail LookupEvents stand-in and a Slack Web API
stand-in, for `--seconds`; then SIGTERM. Its stderr is counted by logger. `--code DIR` runs another
checkout's code (e.g. `git archive main | tar -x -C /tmp/main`) to compare. Issue 9 §5 measured 115
APScheduler lines of 262 in 4 minutes.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # a script, not a test: the stand-ins come from this checkout

ACCOUNT = "111122223333"


def _logger(line: str, log_format: str) -> str:
    if log_format == "json":
        try:
            return str(json.loads(line).get("logger", "?"))
        except ValueError:
            return "(not JSON)"
    parts = line.split(" ", 4)  # date time LEVEL logger: message
    return parts[3].rstrip(":") if len(parts) > 3 and parts[2].isupper() else "(continuation)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose `bot` runs (default: this one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from standins.cloudtrail import FakeCloudTrailServer
    from standins.slack import SlackStandin

    with FakeCloudTrailServer() as cloudtrail, SlackStandin() as slack, tempfile.TemporaryDirectory() as tmp:
        cloudtrail.fake.default_account = ACCOUNT
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "LOG_"))}
        env.update({
            "PYTHONPATH": str(args.code.resolve()), "HOME": tmp,
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": cloudtrail.url,
            "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench-secret", "SLACK_API_URL": slack.url,
            "ALERT_CHANNEL": "C0BENCH", "AWS_ACCOUNTS": ACCOUNT, "DB_PATH": f"{tmp}/bw.db", "PORT": str(port),
            "LOG_FORMAT": args.log_format,
        })  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp, env=env,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(args.seconds)  # wall-clock volume is the figure: this is a benchmark, not a test
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = err.splitlines()
    by_logger = collections.Counter(_logger(line, args.log_format) for line in lines)
    scheduler = sum(n for name, n in by_logger.items() if name.startswith("apscheduler"))
    figures = {
        "seconds": args.seconds, "code": str(args.code), "log_format": args.log_format, "lines": len(lines),
        "apscheduler_lines": scheduler, "tracebacks": sum("Traceback" in line for line in lines),
        "by_logger": dict(by_logger.most_common()), "exit": proc.returncode,
    }  # fmt: skip
    print(f"{len(lines)} line(s) in {args.seconds:.0f} s, {scheduler} from APScheduler, exit {proc.returncode}")
    for name, count in by_logger.most_common():
        print(f"  {count:5d}  {name}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
