"""Read CloudTrail from files, directories and stdin, and find what detections match.

Speed: decompression, not JSON, is the floor. Most records are not S3 writes, so in a canonical
CloudTrail log file (compact `{"Records":[{"eventVersion":…},…]}`) we find S3 records by byte
search and parse only those, one record slice at a time. Anything that does not look canonical,
or a slice that does not parse alone, falls back to parsing the whole document: never wrong, only
slower. Files are spread over worker processes (one per core).
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import orjson
from isal import igzip, isal_zlib

from bot.core.record import Record, unwrap
from detections import WATCHED_EVENT_NAMES, Finding, evaluate

_S3_NEEDLE = b'"eventSource":"s3.amazonaws.com"'
_S3_NEEDLE_SPACED = b'"eventSource": "s3.amazonaws.com"'
_CANONICAL_START = b'{"Records":[{"eventVersion":'
_RECORD_START = b'},{"eventVersion":'
_NAME_KEY = b'"eventName":"'
# isal's stub types `error` as an instance; it is the class raised on bad deflate data or a bad CRC.
_CORRUPT_GZIP: tuple[type[Exception], ...] = (
    gzip.BadGzipFile, EOFError, ValueError, cast("type[Exception]", isal_zlib.error)
)
_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".gz", ".ndjson")


class ScanError(Exception):
    """A path could not be read at all (missing, unreadable, not CloudTrail)."""


@dataclass
class ScanStats:
    """Counts over a scan; `full_parses` are inputs that missed the fast path (bench checks it stays 0)."""

    files: int = 0
    records: int = 0
    malformed: int = 0
    findings: int = 0
    indexed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    full_parses: int = 0

    def add(self, other: ScanStats) -> None:
        self.files += other.files
        self.records += other.records
        self.malformed += other.malformed
        self.findings += other.findings
        self.indexed += other.indexed
        self.full_parses += other.full_parses
        self.malformed_examples.extend(other.malformed_examples[: 5 - len(self.malformed_examples)])


def _interesting_name(name: bytes, index: bool) -> bool:
    text = name.decode("utf-8", "replace")
    if text in WATCHED_EVENT_NAMES:
        return True
    return index and text.startswith(("Put", "Delete", "Create", "Restore"))


def _fast_records(blob: bytes, index: bool) -> tuple[list[dict[str, Any]], int] | None:
    """S3 records of interest from a canonical log file, or None to fall back to a full parse."""
    if not blob.startswith(_CANONICAL_START) or _S3_NEEDLE_SPACED in blob:
        return None
    out: list[dict[str, Any]] = []
    total = blob.count(b'"eventVersion":')
    pos = blob.find(_S3_NEEDLE)
    while pos != -1:
        start = blob.rfind(_RECORD_START, 0, pos)
        start = len(b'{"Records":[') if start == -1 else start + 2
        end = blob.find(_RECORD_START, pos)
        end = len(blob.rstrip()) - 2 if end == -1 else end + 1
        piece = blob[start:end]
        name_at = piece.find(_NAME_KEY)
        if name_at != -1:
            name_end = piece.find(b'"', name_at + len(_NAME_KEY))
            if _interesting_name(piece[name_at + len(_NAME_KEY) : name_end], index):
                try:
                    record = orjson.loads(piece)
                except orjson.JSONDecodeError:
                    return None  # not one record per slice after all: let the full parse decide
                if not isinstance(record, dict):
                    return None
                out.append(record)
        pos = blob.find(_S3_NEEDLE, end)
    return out, total


def parse_blob(blob: bytes, stats: ScanStats, *, label: str = "", index: bool = False) -> Iterator[Record]:
    """Records in one file's bytes: a JSON document (any envelope) or JSON Lines. Counts bad input."""
    fast = _fast_records(blob, index)
    if fast is not None:
        records, total = fast
        stats.records += total
        yield from (Record(r) for r in records)
        return
    stats.full_parses += 1
    try:
        documents: Iterable[Any] = [orjson.loads(blob)]
    except orjson.JSONDecodeError:
        documents = _json_lines(blob, stats, label)
    for document in documents:
        records = unwrap(document)
        if not records:
            _malformed(stats, label, "not a CloudTrail record or envelope")
        for raw in records:
            stats.records += 1
            if not isinstance(raw, dict):
                _malformed(stats, label, "record is not a JSON object")
                continue
            yield Record(raw)


def _json_lines(blob: bytes, stats: ScanStats, label: str) -> Iterator[Any]:
    for number, line in enumerate(blob.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            _malformed(stats, f"{label}:{number}", f"invalid JSON ({exc.msg})")


def _malformed(stats: ScanStats, where: str, why: str) -> None:
    stats.malformed += 1
    if len(stats.malformed_examples) < 5:
        stats.malformed_examples.append(f"{where}: {why}")


def read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when it is gzip (by magic number, not by name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScanError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gunzip(data)
    except _CORRUPT_GZIP as exc:
        raise ScanError(f"{path}: corrupt gzip ({exc})") from exc


def gunzip(data: bytes) -> bytes:
    """Gzip bytes inflated: one member (every CloudTrail file) in one call, several members too."""
    # igzip.decompress checks for further members through a buffered reader and costs about twice as
    # much as a single inflate; the trailer's CRC and length are still checked here.
    inflater = isal_zlib.decompressobj(31)
    out = inflater.decompress(data)
    if not inflater.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")
    if inflater.unused_data.strip(b"\0"):
        return igzip.decompress(data)  # concatenated members
    return out


def is_digest_file(path: Path) -> bool:
    """A CloudTrail-Digest file (`AWSLogs/<acct>/CloudTrail-Digest/…`, `…_CloudTrail-Digest_…`): hashes, no records."""
    return "CloudTrail-Digest" in path.parts or "_CloudTrail-Digest_" in path.name


@dataclass
class LogFiles:
    """What the paths named: log files to scan, and digest and other files passed over (counted)."""

    files: list[Path] = field(default_factory=list)
    digests: int = 0
    ignored: int = 0  # not a CloudTrail suffix (.json, .json.gz, .jsonl, …)


def find_log_files(paths: Iterable[str]) -> LogFiles:
    """Files named, and CloudTrail log files under directories (AWSLogs/… layout), sorted; digests apart.

    A missing path, or a directory with no log file in it, is a ScanError: scanning nothing must not
    pass for "nothing found".
    """
    out = LogFiles()
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = LogFiles()
            for root, _dirs, files in os.walk(path):
                for f in sorted(files):
                    child = Path(root) / f
                    if not f.endswith(_SUFFIXES):
                        found.ignored += 1
                    elif is_digest_file(child):
                        found.digests += 1
                    else:
                        found.files.append(child)
            if not found.files:
                passed = f"{found.digests} CloudTrail-Digest file(s) and {found.ignored} other file(s) passed over"
                raise ScanError(f"{name}: no CloudTrail log files in this directory ({passed})")
            out.files += found.files
            out.digests += found.digests
            out.ignored += found.ignored
        elif path.exists():
            if is_digest_file(path):
                out.digests += 1
            else:
                out.files.append(path)
        else:
            raise ScanError(f"no such file or directory: {name}")
    return out


def expand_paths(paths: Iterable[str]) -> list[Path]:
    """The log files `find_log_files` finds (digest files left out)."""
    return find_log_files(paths).files


@dataclass
class FileResult:
    stats: ScanStats
    findings: list[Finding]
    index_records: list[dict[str, Any]]
    error: str | None = None
    path: str = ""


def scan_file(path: Path, index: bool = False) -> FileResult:
    """Findings (and, with `index`, S3 write records to store) of one file. Runs in a worker."""
    stats = ScanStats(files=1)
    try:
        blob = read_bytes(path)
    except ScanError as exc:
        # A damaged file in a big tree is bad input: counted and skipped, never fatal.
        _malformed(stats, str(path), str(exc))
        return FileResult(stats, [], [], error=str(exc), path=str(path))
    result = scan_blob(blob, stats, label=str(path), index=index)
    result.path = str(path)
    return result


def scan_blob(blob: bytes, stats: ScanStats, *, label: str, index: bool = False) -> FileResult:
    findings: list[Finding] = []
    keep: list[dict[str, Any]] = []
    for record in parse_blob(blob, stats, label=label, index=index):
        found = evaluate(record)
        findings.extend(found)
        if index and record.is_s3 and record.succeeded and not record.read_only:
            keep.append(record.raw)
    stats.findings += len(findings)
    return FileResult(stats, findings, keep)


def scan(
    paths: list[Path],
    *,
    index: bool = False,
    workers: int | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> Iterator[FileResult]:
    """Scan files in order of completion; several worker processes when there is enough work."""
    workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if workers <= 1 or len(paths) < 4:
        for path in paths:
            yield scan_file(path, index)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunk = max(1, min(16, len(paths) // (workers * 8)))
        yield from pool.map(scan_file, paths, [index] * len(paths), chunksize=chunk)


def scan_stream(stream: IO[bytes], *, index: bool = False) -> FileResult:
    """Standard input: a whole document, JSON Lines, or gzip of either."""
    blob = stream.read()
    if blob[:2] == b"\x1f\x8b":
        try:
            blob = gunzip(blob)
        except _CORRUPT_GZIP as exc:
            raise ScanError(f"stdin: corrupt gzip ({exc})") from exc
    return scan_blob(blob, ScanStats(files=1), label="stdin", index=index)


def stdin_bytes() -> IO[bytes]:
    return sys.stdin.buffer
