"""`scan`: CloudTrail files, directories or stdin through every detection, findings printed.

Exit status (also in `scan --help`): 0 every file was read, with or without findings (malformed
records are counted on stderr and skipped); 1 a file could not be read (corrupt gzip, unreadable),
whether it was named alone or found in a directory — the rest is still scanned; 2 nothing to scan
(no such path, a directory with no CloudTrail log file); 3 the index (`--index`) cannot be written
(bot.cli turns StoreWriteError into one line). CloudTrail-Digest files hold hashes, not records: they
are passed over and counted apart, as are side files beside a trail folder's `AWSLogs/`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Protocol

import orjson
from tqdm import tqdm

from bot.slack.mrkdwn import strip_controls
from bot.sources.files import FileResult, ScanError, ScanStats, find_log_files, scan, scan_stream
from bot.store.rows import IndexRow
from detections import Finding
from detections.base import UNKNOWN, card_changes

EXIT_OK, EXIT_UNREADABLE_FILE, EXIT_NOTHING_TO_SCAN = 0, 1, 2


def format_finding(finding: Finding) -> str:
    """Several readable lines per finding for a terminal, in the card's words (`unknown → off`)."""
    when = finding.event_time.strftime("%Y-%m-%d %H:%M:%SZ") if finding.event_time else f"time {UNKNOWN}"
    actor = finding.actor
    mfa = {True: "MFA", False: "no MFA", None: f"MFA {UNKNOWN}"}[actor.mfa]
    lines = [
        f"[{finding.severity.upper()}] {finding.title}",
        f"    when   {when}   event {finding.event_name} ({finding.event_id or 'no id'})",
        f"    where  account {finding.account or UNKNOWN}  region {finding.region or UNKNOWN}"
        + (f"  bucket {finding.bucket}" if finding.bucket else "  (account-wide)"),
        f"    who    {actor.display} [{actor.kind}, {mfa}] {actor.arn}",
        f"    from   {finding.source_ip or UNKNOWN} using {finding.agent_kind}: {finding.user_agent[:120]}",
    ]
    lines += [f"    change {change}" for change in card_changes(finding)]
    # Caller-chosen text (user agents, session names) must not carry terminal escape sequences.
    return "\n".join(strip_controls(line) for line in lines)


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total < 20 or not sys.stderr.isatty():
        return None

    return tqdm(total=total, unit="file", file=sys.stderr, leave=False)


class _Index(Protocol):
    def add(self, rows: list[IndexRow]) -> int: ...

    def finish(self) -> int: ...


def _open_index() -> _Index:
    # Imported only for --index, as bot.cli imports each command only when chosen: the store brings
    # sqlite-utils, about 0.25 CPU s of start-up a plain scan does not need (docs/benchmarks.md §1).
    from bot.cli.scan_index import IndexWriter

    return IndexWriter()


def cli_scan(args: argparse.Namespace) -> int:
    index = _open_index() if args.index else None
    stats = ScanStats()
    unreadable: list[str] = []
    digests, side = 0, []
    results: Any
    if "-" in args.paths and len(args.paths) > 1:
        print("bucketwatch scan: - (standard input) must be the only path", file=sys.stderr)
        return EXIT_NOTHING_TO_SCAN
    try:
        if args.paths == ["-"]:
            try:
                results = [scan_stream(sys.stdin.buffer, index=args.index)]
            except ScanError as exc:  # corrupt gzip on stdin: the same exit as a corrupt file
                results, unreadable = [], [str(exc)]
                stats.files = 1
            total = 1
        else:
            found = find_log_files(args.paths)
            digests, side, unreadable = found.digests, found.side, list(found.unreadable)
            if not found.files and not unreadable:
                raise ScanError(f"nothing to scan: {digests} CloudTrail-Digest file(s) only (hashes, not records)")
            total = len(found.files)
            results = scan(found.files, index=args.index, workers=args.workers)
    except ScanError as exc:
        print(f"bucketwatch scan: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_SCAN
    bar = _progress(total, not args.no_progress)
    for result in results:  # one file, or a batch of files from one worker
        # Files that could not be read are said once, below; a damaged file is not a malformed record.
        unreadable += [error for _path, error in result.errors]
        _emit(result, args.format, sys.stdout)
        stats.add(result.stats)
        if index is not None:  # rows built in the workers from the findings they made: the parent only inserts
            stats.indexed += index.add(result.index_rows)
        if bar is not None:
            bar.update(result.stats.files)
    if index is not None:
        stats.indexed += index.finish()
    if bar is not None:
        bar.close()
    sys.stdout.flush()
    print(_summary(stats, args.index, len(unreadable), digests, side), file=sys.stderr)
    for example in stats.malformed_examples:
        print(f"  skipped {example}", file=sys.stderr)
    for error in unreadable:
        print(f"bucketwatch scan: {error}", file=sys.stderr)
    return EXIT_UNREADABLE_FILE if unreadable else EXIT_OK


def _summary(stats: ScanStats, index: bool, unreadable: int, digests: int, side: list[Path]) -> str:
    summary = f"scanned {stats.files} file(s), {stats.records} record(s): {stats.findings} finding(s)"
    if unreadable:
        summary += f"; {unreadable} file(s) could not be read (listed below)"
    if index:
        summary += f", {stats.indexed} new event(s) indexed"
    if stats.malformed:
        summary += f"; {stats.malformed} malformed input(s) skipped"
    if digests:
        summary += f"; {digests} CloudTrail-Digest file(s) passed over (hashes, not records)"
    if side:
        names = ", ".join(sorted({p.name for p in side})[:3])
        summary += f"; {len(side)} side file(s) beside the trail not read ({names})"
    return summary


def _emit(result: FileResult, fmt: str, out: Any) -> None:
    for finding in result.findings:
        if fmt == "jsonl":
            out.write(orjson.dumps(finding.as_dict()).decode() + "\n")
        else:
            out.write(format_finding(finding) + "\n\n")
