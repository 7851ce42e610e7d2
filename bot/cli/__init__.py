"""The command line: `python -m bot …`, also installed as `bucketwatch`; one module per command here.

Each subcommand lives in its own module and is imported only when chosen, so `--help` and `scan`
start fast. Errors from the core become one clear line and a non-zero exit here, and only here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bot.core.config import ConfigError, settings_help
from bot.store.errors import StoreWriteError

# name → (module:function, one-line help). The order is the order of --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bot.cli.run:cli_run", "run the bot: Socket Mode if SLACK_APP_TOKEN is set, else HTTP on $PORT"),
    "demo": ("bot.cli.demo:cli_demo", "offline end to end: moto for AWS, a local Slack stand-in, a fix applied"),
    "scan": ("bot.cli.scan:cli_scan", "read CloudTrail files/dirs/stdin and print findings"),
    "policy": ("bot.cli.scan:cli_policy", "verdict on a bucket policy, access-point policy or GetBucketAcl output"),
    "poll": ("bot.cli.poll:cli_poll", "one poll cycle of every configured account × region"),
    "backfill": ("bot.cli.poll:cli_backfill", "fill the who-changed index from LookupEvents history"),
    "who-changed": ("bot.cli.scan:cli_who_changed", "configuration changes to a bucket, newest first"),
    "worker": (
        "bot.cli.worker:cli_worker",
        "scan worker: trail-file notifications in, S3 writes and findings out to FINDINGS_QUEUE_URL",
    ),
    "digest": ("bot.cli.digest:cli_digest", "print (or post) the daily digest"),
    "doctor": ("bot.cli.doctor:cli_doctor", "check settings, Slack scopes and AWS access; no secrets printed"),
    "manifest": ("bot.cli.manifest:cli_manifest", "print the Slack app manifest for the configured command"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bucketwatch",
        description="Tell a Slack channel when an S3 bucket or account is opened to the public.",
        epilog="settings (environment variables; a .env file fills gaps in development):\n" + settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers = {
        name: sub.add_parser(name, help=help_text, description=help_text) for name, (_, help_text) in COMMANDS.items()
    }

    p = parsers["scan"]
    p.add_argument("paths", nargs="+", metavar="PATH", help="file, directory, or - for stdin")
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    p.add_argument("--index", action="store_true", help="also store S3 configuration writes in the who-changed index")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")

    p = parsers["policy"]
    p.add_argument("path", metavar="FILE", help="JSON file, or - for stdin")
    p.add_argument("--account", help="the bucket owner's account id (to tell cross-account principals)")

    p = parsers["who-changed"]
    p.add_argument("bucket")
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--format", choices=("text", "jsonl"), default="text")

    p = parsers["worker"]
    p.add_argument("--queue", help="the notification queue to read (default: the one TRAIL_QUEUE_URLS entry)")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.add_argument("--wait", type=int, default=20, help="long-poll seconds per receive (0-20)")
    p.add_argument("--visibility", type=int, default=300, help="seconds a notification stays hidden while read")

    parsers["poll"].add_argument("--once", action="store_true", help="run one cycle and exit (required)")
    parsers["backfill"].add_argument("--days", type=int, default=7)
    parsers["digest"].add_argument("--post", action="store_true", help="post to ALERT_CHANNEL instead of printing")
    parsers["demo"].add_argument("--quiet", action="store_true", help="print only the summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    target, _ = COMMANDS[args.command]
    module_name, _, function = target.partition(":")
    try:
        handler = getattr(importlib.import_module(module_name), function)
        return int(handler(args) or 0)
    except ConfigError as exc:
        print(f"bucketwatch: configuration: {exc}", file=sys.stderr)
        return 2
    except StoreWriteError as exc:  # disk full, read-only file: nothing half-written, one line for a person
        print(f"bucketwatch: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130

