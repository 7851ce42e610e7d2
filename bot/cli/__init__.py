"""The command line: `python -m bot …`, also installed as `bucketwatch`; one module per command here.

Each subcommand lives in its own module and is imported only when chosen, so `--help` and `scan`
start fast. Errors from the core become one clear line and a non-zero exit here, and only here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from bot.core.config import ConfigError, settings_help

# name → (module:function, one-line help). The order is the order of --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bot.cli.run:cli_run", "run the bot: Socket Mode if SLACK_APP_TOKEN is set, else HTTP on $PORT"),
    "serve": (
        "bot.cli.serve:cli_serve",
        "what the image and PaaS run: `run`, under Litestream (restore, replicate) when a replica is set",
    ),
    "demo": ("bot.cli.demo:cli_demo", "offline end to end: moto for AWS, a local Slack stand-in, a fix applied"),
    "scan": ("bot.cli.scan:cli_scan", "read CloudTrail files/dirs/stdin and print findings"),
    "policy": ("bot.cli.scan:cli_policy", "verdict on a bucket policy, access-point policy or GetBucketAcl output"),
    "poll": ("bot.cli.poll:cli_poll", "one poll cycle of every configured account × region"),
    "backfill": ("bot.cli.poll:cli_backfill", "fill the who-changed index from LookupEvents history"),
    "who-changed": ("bot.cli.scan:cli_who_changed", "configuration changes to a bucket, newest first"),
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
    parser.add_argument("--version", action="version", version=f"bucketwatch {package_version()}")
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

    parsers["poll"].add_argument("--once", action="store_true", help="run one cycle and exit (required)")
    parsers["backfill"].add_argument("--days", type=int, default=7)
    parsers["digest"].add_argument("--post", action="store_true", help="post to ALERT_CHANNEL instead of printing")
    parsers["demo"].add_argument("--quiet", action="store_true", help="print only the summary")
    parsers["serve"].add_argument(
        "--require-replica",
        action="store_true",
        help="refuse to start without LITESTREAM_REPLICA_URL (targets whose disk does not survive a restart)",
    )
    p = parsers["manifest"]
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--url", metavar="https://HOST", help="HTTP mode: the bot's public URL for Slack's requests (/slack/events)"
    )
    mode.add_argument(
        "--socket-mode", action="store_true", help="the Socket Mode manifest, whether or not SLACK_APP_TOKEN is set"
    )
    return parser


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, once installed or `pip install -e`)."""
    try:
        return version("bucketwatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


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
        # One line per problem, every problem at once: fixing them one run at a time is tedious.
        for problem in exc.problems or (str(exc),):
            print(f"bucketwatch: configuration: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

