"""The command line: `python -m bot …`, also installed as `bucketwatch`; one module per command here.

Each subcommand lives in its own module and is imported only when chosen, so `--help` and `scan`
start fast. Errors from the core become one clear line and a non-zero exit here, and only here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from bot.core.config import ConfigError, settings_help
from bot.core.shapes import ANY_BUCKET
from bot.store.errors import StoreWriteError

# name → (module:function, one-line help). The order is the order of --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bot.cli.run:cli_run", "run the bot: Socket Mode if SLACK_APP_TOKEN is set, else HTTP on $PORT"),
    "serve": (
        "bot.cli.serve:cli_serve",
        "what the image and PaaS run: `run`, under Litestream (restore, replicate) when a replica is set",
    ),
    "demo": ("bot.cli.demo:cli_demo", "offline end to end: moto for AWS, a local Slack stand-in, a fix applied"),
    "scan": ("bot.cli.scan:cli_scan", "read CloudTrail files/dirs/stdin and print findings"),
    "policy": ("bot.cli.policy:cli_policy", "verdict on a bucket policy, access-point policy or GetBucketAcl output"),
    "poll": ("bot.cli.poll:cli_poll", "one poll cycle of every configured account × region"),
    "backfill": ("bot.cli.poll:cli_backfill", "fill the who-changed index from LookupEvents history"),
    "who-changed": ("bot.cli.who_changed:cli_who_changed", "configuration changes to a bucket, newest first"),
    "worker": (
        "bot.cli.worker:cli_worker",
        "scan worker: trail-file notifications in, S3 writes and findings out to FINDINGS_QUEUE_URL",
    ),
    "digest": ("bot.cli.digest:cli_digest", "print (or post) the daily digest"),
    "doctor": ("bot.cli.doctor:cli_doctor", "check settings, Slack scopes and AWS access; no secrets printed"),
    "manifest": ("bot.cli.manifest:cli_manifest", "print the Slack app manifest for the configured command"),
}


EXIT_STATUS = {
    "scan": (
        "exit status: 0 every file was read (with or without findings; malformed records are counted on\n"
        "stderr and skipped); 1 a file could not be read (corrupt gzip, unreadable), named alone or found\n"
        "in a directory: the rest is still scanned; 2 nothing to scan (no such path, a directory with no\n"
        "CloudTrail log files); 3 the index (--index) cannot be written (disk full, read-only). CloudTrail-\n"
        "Digest files, and side files beside a trail folder's AWSLogs/, are passed over and counted apart.\n"
        "Reads log files {\"Records\": [...]}, JSON Lines, EventBridge events and `aws cloudtrail\n"
        "lookup-events` output (Events[].CloudTrailEvent), JSON arrays (streamed), plain or gzipped; a file\n"
        "may inflate to at most 2 GiB (past that it is skipped, with the reason)."
    ),
    "policy": (
        "reads a bucket or access-point policy, get-bucket-policy or get-bucket-acl output, an ACL with\n"
        "grant headers, or a canned ACL name (public-read).\n"
        "exit status: 0 verdict printed; 1 public, with --fail-if-public; 2 unreadable, or not a policy\n"
        "or an ACL (the message says what it is)."
    ),
    "who-changed": (
        "says first what was asked (the local index, CloudTrail LookupEvents), what failed and what is not\n"
        "configured. exit status: 0 every source asked answered; 1 a CloudTrail look-up failed, so changes\n"
        "may be missing; 2 the index had nothing and CloudTrail could not be asked (AWS_ACCOUNTS not set)."
    ),
}
# `scan … | head -1`: the reader went away. Say nothing and exit as a tool killed by SIGPIPE would
# (128 + 13), so `set -o pipefail` scripts see what they see for `yes | head -1`.
EXIT_BROKEN_PIPE = 141


def bucket_name(text: str) -> str:
    """An argparse type: a bucket name as S3 allows (the slash command's rule), not any text."""
    if not ANY_BUCKET.match(text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a bucket name")
    return text


def positive_int(text: str) -> int:
    """An argparse type: a whole number, 1 or more (`--workers -3`, `--days 0` are refused)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def long_poll_seconds(text: str) -> int:
    """An argparse type: SQS's long-poll wait, 0 to 20 seconds."""
    value = positive_int(text) if text.strip() != "0" else 0
    if value > 20:
        raise argparse.ArgumentTypeError(f"{value} is above 20 (SQS waits at most 20 seconds)")
    return value


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
        name: sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_STATUS.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for name, (_, help_text) in COMMANDS.items()
    }

    p = parsers["scan"]
    p.add_argument("paths", nargs="+", metavar="PATH", help="file, directory, or - for stdin")
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    p.add_argument("--index", action="store_true", help="also store S3 configuration writes in the who-changed index")
    p.add_argument(
        "--workers", type=positive_int, default=None, help="worker processes, 1 or more (default: cores, up to 4)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")

    p = parsers["policy"]
    p.add_argument("path", metavar="FILE", help="JSON file, or - for stdin")
    p.add_argument(
        "--account", help="the bucket owner's 12-digit account id: its own principals are not listed as other accounts"
    )
    p.add_argument("--fail-if-public", action="store_true", help="exit 1 when the verdict is public (for CI gates)")

    p = parsers["who-changed"]
    p.add_argument("bucket", type=bucket_name)
    p.add_argument("--days", type=positive_int, default=90, help="how far back, in days (1 or more; default 90)")
    p.add_argument("--format", choices=("text", "jsonl"), default="text")

    p = parsers["worker"]
    p.add_argument("--queue", help="the notification queue to read (default: the one TRAIL_QUEUE_URLS entry)")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.add_argument("--wait", type=long_poll_seconds, default=20, help="long-poll seconds per receive (0 to 20)")
    p.add_argument("--visibility", type=positive_int, default=300,
                   help="seconds a notification stays hidden while its file is read (1 or more; default 300)")

    parsers["poll"].add_argument("--once", action="store_true", help="run one cycle and exit (required)")
    parsers["backfill"].add_argument(
        "--days", type=positive_int, default=7, help="how far back, in days (1 to 90; default 7)"
    )
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
        code = int(handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit with a traceback
        return code
    except ConfigError as exc:
        # One line per problem, every problem at once: fixing them one run at a time is tedious.
        for problem in exc.problems or (str(exc),):
            print(f"bucketwatch: configuration: {problem}", file=sys.stderr)
        return 2
    except StoreWriteError as exc:  # disk full, read-only file: nothing half-written, one line for a person
        print(f"bucketwatch: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of what is left does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

