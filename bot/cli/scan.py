"""`scan`, `policy` and `who-changed`: the terminal side of the detection core."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from bot.aws.clients import AwsClients
from bot.core.clock import utcnow
from bot.core.config import load_settings
from bot.core.policy import evaluate_document
from bot.core.record import Record
from bot.slack.mrkdwn import strip_controls
from bot.sources.files import FileResult, ScanError, ScanStats, expand_paths, scan, scan_stream
from bot.sources.fleet import refresh_fleet
from bot.sources.who_changed import timeline
from bot.store.database import Store
from bot.store.index import ingest
from detections import Finding

EXIT_OK, EXIT_UNREADABLE = 0, 2


def format_finding(finding: Finding) -> str:
    """Several readable lines per finding for a terminal."""
    when = finding.event_time.strftime("%Y-%m-%d %H:%M:%SZ") if finding.event_time else "time unknown"
    actor = finding.actor
    mfa = {True: "MFA", False: "no MFA", None: "MFA unknown"}[actor.mfa]
    lines = [
        f"[{finding.severity.upper()}] {finding.title}",
        f"    when   {when}   event {finding.event_name} ({finding.event_id or 'no id'})",
        f"    where  account {finding.account or '?'}  region {finding.region or '?'}"
        + (f"  bucket {finding.bucket}" if finding.bucket else "  (account-wide)"),
        f"    who    {actor.display} [{actor.kind}, {mfa}] {actor.arn}",
        f"    from   {finding.source_ip or '?'} using {finding.agent_kind}: {finding.user_agent[:120]}",
    ]
    lines += [f"    change {change}" for change in finding.changes]
    # Caller-chosen text (user agents, session names) must not carry terminal escape sequences.
    return "\n".join(strip_controls(line) for line in lines)


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total < 20 or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr, leave=False)


def cli_scan(args: argparse.Namespace) -> int:
    store = Store(load_settings(dotenv=Path(".env")).db_path) if args.index else None
    stats = ScanStats()
    try:
        if args.paths == ["-"]:
            results: Any = [scan_stream(sys.stdin.buffer, index=args.index)]
            total = 1
        else:
            paths = expand_paths(args.paths)
            total = len(paths)
            results = scan(paths, index=args.index, workers=args.workers)
    except ScanError as exc:
        print(f"bucketwatch scan: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    bar = _progress(total, not args.no_progress)
    out = sys.stdout
    # A damaged file found inside a directory is bad input (counted, skipped); a file named on the
    # command line that cannot be read is an error the caller must see in the exit code.
    named = {str(Path(p)) for p in args.paths if p != "-" and not Path(p).is_dir()}
    failed_named = []
    for result in results:
        if result.error and result.path in named:
            failed_named.append(result.error)
        _emit(result, args.format, out)
        stats.add(result.stats)
        if store is not None and result.index_records:
            stats.indexed += ingest(store, (Record(r) for r in result.index_records), source="scan")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    summary = f"scanned {stats.files} file(s), {stats.records} record(s): {stats.findings} finding(s)"
    if args.index:
        summary += f", {stats.indexed} new event(s) indexed"
    if stats.malformed:
        summary += f"; {stats.malformed} malformed input(s) skipped"
    print(summary, file=sys.stderr)
    for example in stats.malformed_examples:
        print(f"  skipped {example}", file=sys.stderr)
    for error in failed_named:
        print(f"bucketwatch scan: {error}", file=sys.stderr)
    return EXIT_UNREADABLE if failed_named else EXIT_OK


def _emit(result: FileResult, fmt: str, out: Any) -> None:
    for finding in result.findings:
        if fmt == "jsonl":
            out.write(orjson.dumps(finding.as_dict()).decode() + "\n")
        else:
            out.write(format_finding(finding) + "\n\n")


def cli_policy(args: argparse.Namespace) -> int:
    try:
        data = sys.stdin.buffer.read() if args.path == "-" else Path(args.path).read_bytes()
    except OSError as exc:
        print(f"bucketwatch policy: cannot read {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        document: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        print(f"bucketwatch policy: {args.path} is not JSON", file=sys.stderr)
        return EXIT_UNREADABLE
    verdict = evaluate_document(document, owner_account=args.account)
    print(orjson.dumps(verdict.as_dict(), option=orjson.OPT_INDENT_2).decode())
    return EXIT_OK


def cli_who_changed(args: argparse.Namespace) -> int:
    """The same answer as the slash command: the index first, LookupEvents when it has nothing."""

    settings = load_settings(dotenv=Path(".env"))
    store = Store(settings.db_path)
    aws = AwsClients(settings) if settings.has_accounts else None
    if aws is not None:
        refresh_fleet(settings, aws, store, utcnow())  # AWS_ACCOUNTS=org:…, AWS_REGIONS=all: discovered first
    answer = timeline(store, aws, args.bucket, days=args.days)
    changes = answer.changes
    for where, error in answer.errors.items():
        print(f"bucketwatch who-changed: {where}: {error}", file=sys.stderr)
    if args.format == "jsonl":
        for change in changes:
            print(orjson.dumps(change.as_dict()).decode())
        return EXIT_OK
    source = {"index": "local index", "lookup": "CloudTrail LookupEvents, now in the local index"}.get(
        answer.source, "local index and CloudTrail"
    )
    if not changes:
        print(f"No configuration changes to {args.bucket} in the last {args.days} days ({source}).")
        return EXIT_OK
    print(f"Configuration changes to {args.bucket}, last {args.days} days, newest first ({source}):")
    for c in changes:
        when = c.event_time.strftime("%Y-%m-%d %H:%M:%SZ") if c.event_time else "?"
        print(f"  {when}  {c.actor}  from {c.source_ip or '?'} via {c.agent_kind}  {c.event_name}: {c.summary}")
    return EXIT_OK
