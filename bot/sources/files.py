"""Read CloudTrail from files, directories and stdin, and find what detections match.

Speed: decompression is the floor. Each file is inflated as a stream (bot.sources.inflate: memory
does not grow with the file; a per-file cap stops zip bombs) and a log file's bytes are scanned
for the few records that matter, whatever their key order (bot.sources.logscan); other shapes and
anything the byte scan cannot take are read exactly (bot.sources.reader). Files go to worker
processes in batches (one result per batch, not per file: 100k tiny files cost little pickling),
and with `index` the workers also build the who-changed index rows, so the parent only inserts.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import IO

from bot.core.record import S3_SOURCE, Record
from bot.sources.inflate import InputError, Opener, bytes_opener, file_opener, inflate
from bot.sources.reader import ScanStats, malformed, read_records
from bot.store.rows import IndexRow, index_row, is_config_write, is_index_name
from detections import WATCHED_EVENT_NAMES, Finding, evaluate

_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".gz", ".ndjson")
_LOGS = "AWSLogs"  # CloudTrail writes under <prefix>/AWSLogs/; what lies beside it is not the trail
_DIGEST = "CloudTrail-Digest"  # digest files hold hashes of log files, not records
MAX_STDIN = 2 << 30

__all__ = ["FileResult", "InputError", "LogFiles", "ScanError", "ScanStats", "expand_paths", "find_log_files", "scan",
           "scan_file", "scan_stream"]  # fmt: skip


class ScanError(Exception):
    """A path could not be read at all (missing, unreadable, not CloudTrail)."""


@dataclass
class FileResult:
    """What one file, or one batch of files, gave: findings, index rows, and the files that failed."""

    stats: ScanStats
    findings: list[Finding]
    index_rows: list[IndexRow] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, why it could not be read)

    def add(self, other: FileResult) -> None:
        self.stats.add(other.stats)
        self.findings += other.findings
        self.index_rows += other.index_rows
        self.errors += other.errors


_WATCHED = frozenset(name.encode() for name in WATCHED_EVENT_NAMES)


def wanted(index: bool) -> Callable[[bytes], bool]:
    """Which S3 event names (bytes, as written) the byte scan must parse: those a detection watches,
    and with `index` every configuration write the who-changed index keeps."""
    if index:
        return lambda name: name in _WATCHED or is_index_name(name.decode("utf-8", "replace"))
    return _WATCHED.__contains__


def scan_input(opener: Opener, label: str, index: bool = False) -> FileResult:
    """Findings (and with `index` the index rows) of one input. A file that cannot be read is named in
    `errors` (not counted as malformed: it is said once, as such); nothing read from it counts."""
    stats = ScanStats(files=1)
    findings: list[Finding] = []
    rows: list[IndexRow] = []
    try:
        for raw in read_records(opener, stats, label=label, wanted=wanted(index)):
            source = raw.get("eventSource")
            if isinstance(source, str) and source.strip() != S3_SOURCE:
                continue  # neither a finding nor an index row can come from another service's record
            record = Record(raw)
            found = evaluate(record)
            findings += found
            if index and record.event_id and is_config_write(record):
                rows.append(index_row(record, "scan", found))
    except InputError as exc:
        return FileResult(ScanStats(files=1), [], [], [(label, str(exc))])
    stats.findings = len(findings)
    return FileResult(stats, findings, rows)


def scan_file(path: Path | str, index: bool = False) -> FileResult:
    return scan_input(file_opener(path), str(path), index)


def scan_batch(paths: list[str], index: bool = False) -> FileResult:
    """Several files in one worker call: one result to send back."""
    total = FileResult(ScanStats(), [])
    for path in paths:
        total.add(scan_file(path, index))
    return total


def is_digest_file(path: Path | str) -> bool:
    """A CloudTrail-Digest file (`AWSLogs/<acct>/CloudTrail-Digest/…`, `…_CloudTrail-Digest_…`): hashes, no records."""
    return _DIGEST in Path(path).parts or f"_{_DIGEST}_" in os.path.basename(path)


@dataclass
class LogFiles:
    """What the paths named: log files to scan, and digest, side and other files passed over (counted)."""

    files: list[Path] = field(default_factory=list)
    digests: int = 0
    ignored: int = 0  # not a CloudTrail suffix (.json, .json.gz, .jsonl, …)
    side: list[Path] = field(default_factory=list)  # beside a trail folder's AWSLogs/ (manifest.json, …)
    unreadable: list[str] = field(default_factory=list)  # folders that could not be listed: "path: reason"


def find_log_files(paths: Iterable[str]) -> LogFiles:
    """Files named, and CloudTrail log files under directories (AWSLogs/… layout), sorted; digests apart.

    A directory that holds an `AWSLogs/` tree is a trail folder: only the files under `AWSLogs/` are
    read, and the others beside it (manifest.json, truth.jsonl, notes) go to `side`. Elsewhere every
    .json/.jsonl/.gz file is read. A file named on the command line is always read (digests aside).
    A missing path, or a directory with no log file in it, is a ScanError: scanning nothing must not
    pass for "nothing found".
    """
    out = LogFiles()
    for name in paths:
        path = Path(name)
        if path.is_dir():
            try:
                trail = (path / _LOGS).is_dir()
            except OSError as exc:  # the folder cannot be searched: said, and the exit says a file was not read
                out.unreadable.append(f"{name}: cannot be read ({exc.strerror or exc})")
                continue
            found = _walk(name, trail=trail)
            if not found.files and not found.unreadable:
                passed = f"{found.digests} CloudTrail-Digest file(s) and {found.ignored} other file(s) passed over"
                raise ScanError(f"{name}: no CloudTrail log files in this directory ({passed})")
            out.files += found.files
            out.digests += found.digests
            out.ignored += found.ignored
            out.side += found.side
            out.unreadable += found.unreadable
        elif path.exists():
            if is_digest_file(path):
                out.digests += 1
            else:
                out.files.append(path)
        else:
            raise ScanError(f"no such file or directory: {name}")
    return out


def _walk(top: str, *, trail: bool) -> LogFiles:
    found: list[str] = []
    side: list[str] = []
    out = LogFiles()
    seen: set[tuple[int, int]] = set()  # (device, inode) of each folder walked: a link back up is not a loop

    def unreadable(exc: OSError) -> None:
        out.unreadable.append(f"{exc.filename}: cannot be read ({exc.strerror or exc})")

    # Links are followed (a trail folder assembled from links to where the logs are), each folder once.
    for root, dirs, files in os.walk(top, onerror=unreadable, followlinks=True):
        try:
            here = os.stat(root)
        except OSError as exc:
            unreadable(exc)
            dirs[:] = []
            continue
        if (here.st_dev, here.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((here.st_dev, here.st_ino))
        dirs.sort()
        # Plain strings here, not Path objects: a trail folder can hold 100,000s of files.
        parts = os.path.relpath(root, top).split(os.sep)
        in_logs, digests = _LOGS in parts, _DIGEST in parts
        for f in sorted(files):
            if not f.endswith(_SUFFIXES):
                out.ignored += 1
            elif digests or f"_{_DIGEST}_" in f:
                out.digests += 1
            else:
                (found if in_logs or not trail else side).append(os.path.join(root, f))
    out.files = list(map(Path, found))
    out.side = list(map(Path, side))
    return out


def expand_paths(paths: Iterable[str]) -> list[Path]:
    """The log files `find_log_files` finds (digest and side files left out)."""
    return find_log_files(paths).files


def _batches(paths: list[Path], workers: int) -> list[list[str]]:
    # Small enough that the workers share the work evenly, large enough that 100k tiny files are a few
    # hundred round trips, not 100k.
    size = max(1, min(512, len(paths) // (workers * 16)))
    names = [str(p) for p in paths]
    return [names[i : i + size] for i in range(0, len(names), size)]


def scan(paths: list[Path], *, index: bool = False, workers: int | None = None) -> Iterator[FileResult]:
    """Scan files in batches, in order; several worker processes when there is enough work."""
    workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if workers <= 1 or len(paths) < 4:
        for path in paths:
            yield scan_file(path, index)
        return
    batches = _batches(paths, workers)
    with ProcessPoolExecutor(max_workers=min(workers, len(batches))) as pool:
        yield from pool.map(scan_batch, batches, repeat(index))


def scan_stream(stream: IO[bytes], *, index: bool = False) -> FileResult:
    """Standard input: a whole document, JSON Lines, or gzip of either (spooled: a reader may start over)."""
    with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
        shutil.copyfileobj(stream, spool)
        if spool.tell() > MAX_STDIN:
            raise ScanError("stdin: larger than 2 GiB: not read")

        def open_chunks() -> Iterator[bytes]:
            spool.seek(0)
            yield from inflate(iter(lambda: spool.read(1 << 20), b""), label="stdin")

        result = scan_input(open_chunks, "stdin", index)
    if result.errors:
        raise ScanError(result.errors[0][1])
    return result


def stdin_bytes() -> IO[bytes]:
    return sys.stdin.buffer


def parse_blob(blob: bytes, stats: ScanStats, *, label: str = "", index: bool = False) -> Iterator[Record]:
    """Records in one input's bytes, any shape (gzip too): all of them, or those the byte scan keeps."""
    try:
        for raw in read_records(bytes_opener(blob, label=label), stats, label=label, wanted=wanted(index)):
            yield Record(raw)
    except InputError as exc:
        malformed(stats, label, str(exc).removeprefix(f"{label}: "))
