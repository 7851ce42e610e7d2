"""Records out of one input, whatever its shape, in bounded memory; bad input counted and set aside.

Shapes (after an optional UTF-8 byte-order mark): a CloudTrail log file `{"Records":[…]}` (byte scan,
bot.sources.logscan, or streamed with ijson when the scan cannot take it), a JSON array of records or
EventBridge envelopes (streamed item by item with ijson), JSON Lines (line by line), or one small
document (a bare record, an envelope). Inputs of up to SMALL bytes are parsed whole: exact and cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ijson
import orjson

from bot.core.record import empty_envelope, unwrap
from bot.sources.inflate import BOM, Chunks, Opener
from bot.sources.logscan import HEAD, LogScanner, Unscannable

SMALL = 256 << 10  # parsed whole
WHOLE_MAX = 16 << 20  # one document that is neither a log file nor JSON Lines, parsed whole up to this
MAX_LINE = 16 << 20  # one JSON line
PEEK = 64 << 10
BAD_KEPT = 100  # malformed pieces kept (with their text) per scan, for the quarantine table
BAD_TEXT = 64_000


@dataclass
class ScanStats:
    """Counts over a scan. `full_parses`: inputs that did not go through the byte scan (the bench checks it)."""

    files: int = 0
    records: int = 0
    malformed: int = 0
    findings: int = 0
    indexed: int = 0
    skipped: int = 0  # side files in a trail folder (manifest.json, truth.jsonl …), not read
    malformed_examples: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (reason within the input, its text)
    full_parses: int = 0

    def add(self, other: ScanStats) -> None:
        self.files += other.files
        self.records += other.records
        self.malformed += other.malformed
        self.findings += other.findings
        self.indexed += other.indexed
        self.skipped += other.skipped
        self.full_parses += other.full_parses
        self.malformed_examples.extend(other.malformed_examples[: 5 - len(self.malformed_examples)])
        self.bad.extend(other.bad[: BAD_KEPT - len(self.bad)])


def malformed(stats: ScanStats, label: str, why: str, *, where: str = "", raw: Any = None) -> None:
    """Count one bad piece of input; keep a few examples, and its text for the quarantine table.

    `where` is `line N` (JSON Lines), `record N` or `item N` within the input, or '' for the whole input.
    """
    stats.malformed += 1
    if where.startswith("line "):
        example, reason = f"{label}:{where[5:]}: {why}", f"{where}: {why}"
    else:
        reason = f"{where} {why}".strip()
        example = f"{label}: {reason}"
    if len(stats.malformed_examples) < 5:
        stats.malformed_examples.append(example)
    if len(stats.bad) < BAD_KEPT:
        if isinstance(raw, bytes | bytearray):
            text = bytes(raw[: BAD_TEXT * 4]).decode("utf-8", "replace")
        elif raw is None:
            text = label
        else:
            text = orjson.dumps(raw, default=str).decode()
        stats.bad.append((reason, text[:BAD_TEXT]))


def read_records(
    opener: Opener, stats: ScanStats, *, label: str, wanted: Callable[[bytes], bool], whole_up_to: int = SMALL
) -> Iterator[Any]:
    """Every record of one input that may matter: all of them, or (byte scan) the S3 ones `wanted` names.

    Raises bot.sources.inflate.InputError when the input cannot be read at all (stats are then untouched
    by what was read of it: nothing of a skipped file counts).
    """
    chunks = opener()
    first, done = _peek(chunks, max(PEEK, whole_up_to + 1))
    if first.startswith(BOM):
        first = first[len(BOM) :]
    if done and len(first) <= whole_up_to:
        stats.full_parses += 1
        yield from whole(first, stats, label)
        return
    if HEAD.match(first):
        found = _byte_scan(first, chunks, stats, wanted)
        if found is not None:
            yield from found
            return
        _close(chunks)  # the exact reader starts the file over
        stats.full_parses += 1
        yield from _items(_restart(opener), "Records.item", stats, label, envelope=False)
        return
    stats.full_parses += 1
    if first.lstrip()[:1] == b"[":
        yield from _items(_prepend(first, chunks), "item", stats, label, envelope=True)
        return
    while not done and b"\n" not in first.lstrip() and len(first) <= MAX_LINE:  # the whole first line
        more = next(chunks, None)
        if more is None:
            done = True
        else:
            first += more
    line = first.lstrip().split(b"\n", 1)[0]
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        # One document over several lines that is not a log file: whole if it fits, else its Records.
        if done:
            yield from whole(first, stats, label)
            return
        _close(chunks)
        yield from _items(_restart(opener), "Records.item", stats, label, envelope=False)
        return
    yield from _json_lines(_prepend(first, chunks), stats, label)


def _close(chunks: Chunks) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _peek(chunks: Chunks, size: int) -> tuple[bytes, bool]:
    first = b""
    for chunk in chunks:
        first += chunk
        if len(first) >= size:
            return first, False
    return first, True


def _prepend(first: bytes, chunks: Chunks) -> Chunks:
    yield first
    yield from chunks


def _restart(opener: Opener) -> Chunks:
    chunks = opener()
    first = next(chunks, b"")
    yield first[len(BOM) :] if first.startswith(BOM) else first
    yield from chunks


def _byte_scan(first: bytes, chunks: Chunks, stats: ScanStats, wanted: Callable[[bytes], bool]) -> list[Any] | None:
    """The records `wanted` names, by byte scan; None when the file needs the exact reader."""
    scanner = LogScanner(wanted)
    out: list[Any] = []
    try:
        out.extend(scanner.feed(first))
        for chunk in chunks:
            out.extend(scanner.feed(chunk))
        out.extend(scanner.finish())
    except Unscannable:
        return None
    stats.records += scanner.records
    return out


class _Stream:
    """Chunks as the file-like object ijson reads."""

    def __init__(self, chunks: Chunks):
        self._chunks = chunks
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._rest) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._rest += chunk
        if size < 0:
            out, self._rest = self._rest, b""
        else:
            out, self._rest = self._rest[:size], self._rest[size:]
        return out


def _items(chunks: Chunks, prefix: str, stats: ScanStats, label: str, *, envelope: bool) -> Iterator[Any]:
    """Array items streamed with ijson (its C backend): one item in memory at a time."""
    number = 0
    try:
        for item in ijson.items(_Stream(chunks), prefix, use_float=True):
            number += 1
            records = unwrap(item) if envelope else [item]
            if not records and not empty_envelope(item):
                malformed(stats, label, "is not a CloudTrail record or envelope", where=f"item {number}", raw=item)
            for raw in records:
                stats.records += 1
                if isinstance(raw, dict):
                    yield raw
                else:
                    malformed(stats, label, "is not a JSON object", where=f"record {number}", raw=raw)
    except ijson.JSONError as exc:
        malformed(stats, label, f"invalid JSON after {number} item(s) ({str(exc)[:120]})")


def whole(blob: bytes, stats: ScanStats, label: str) -> Iterator[Any]:
    """One document (any envelope) or JSON Lines, parsed whole: exact record and malformed counts."""
    try:
        documents: list[Any] = [orjson.loads(blob)]
    except orjson.JSONDecodeError:
        yield from _json_lines(iter([blob]), stats, label)
        return
    yield from _documents(documents, stats, label, "")


def _documents(documents: list[Any], stats: ScanStats, label: str, where: str) -> Iterator[Any]:
    for document in documents:
        records = unwrap(document)
        if not records and not empty_envelope(document):
            malformed(stats, label, "not a CloudTrail record or envelope", where=where, raw=document)
        for number, raw in enumerate(records, 1):
            stats.records += 1
            if isinstance(raw, dict):
                yield raw
            else:
                malformed(stats, label, "is not a JSON object", where=f"{where + ' ' if where else ''}record {number}",
                          raw=raw)  # fmt: skip


def _json_lines(chunks: Chunks, stats: ScanStats, label: str) -> Iterator[Any]:
    rest = b""
    number = 0
    skipping = False
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            number += 1
            if skipping:  # the end of a line that was too long
                skipping = False
                continue
            yield from _line(line, number, stats, label)
        if len(rest) > MAX_LINE:
            number += 1
            malformed(stats, label, f"line longer than {MAX_LINE >> 20} MiB", where=f"line {number}", raw=rest[:200])
            rest, skipping = b"", True
    if rest and not skipping:
        yield from _line(rest, number + 1, stats, label)


def _line(line: bytes, number: int, stats: ScanStats, label: str) -> Iterator[Any]:
    if not line.strip():
        return
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        malformed(stats, label, f"invalid JSON ({exc.msg})", where=f"line {number}", raw=line)
        return
    yield from _documents([document], stats, label, f"line {number}")
