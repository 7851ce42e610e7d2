"""Input bytes as a stream of bounded chunks: gzip inflated on the fly, a cap on what one file may inflate to.

A trail file is read and inflated one piece at a time (isal's streaming inflater), so memory does not
grow with the file: a 1 MB `.json.gz` of 1 GiB of spaces, or a 3 GB log file, costs a few MiB at a
time. What one file may inflate to is capped (MAX_INFLATED); past it the file is skipped whole and
the reason is stated. Several gzip members (`cat a.gz b.gz`) are read one after the other.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

from isal import isal_zlib

READ = 1 << 20  # compressed bytes read at a time
CHUNK = 1 << 20  # inflated bytes handed on at a time (at most)
MAX_INFLATED = 2 << 30  # per file: a zip bomb is skipped, not inflated
BOM = b"\xef\xbb\xbf"
# isal's stub types `error` as an instance; it is the class raised on bad deflate data or a bad CRC.
CORRUPT_GZIP: tuple[type[Exception], ...] = (
    gzip.BadGzipFile, EOFError, ValueError, cast("type[Exception]", isal_zlib.error)
)


class InputError(Exception):
    """A file (or stdin) that cannot be read as input: the message says why, for a person."""


class TooLarge(InputError):
    """The input inflates past the cap."""


Chunks = Iterator[bytes]
Opener = Callable[[], Chunks]


def _reads(stream: IO[bytes]) -> Iterator[bytes]:
    while True:
        piece = stream.read(READ)
        if not piece:
            return
        yield piece


def inflate(pieces: Iterator[bytes], *, label: str, cap: int = MAX_INFLATED) -> Chunks:
    """Raw bytes from `pieces`, gunzipped when they start with gzip's magic number; at most `cap` bytes."""
    first = next(pieces, b"")
    while len(first) < 2:  # a stream may hand its first bytes one at a time
        more = next(pieces, None)
        if more is None:
            break
        first += more
    if first[:2] != b"\x1f\x8b":
        total = 0
        for piece in _prepend(first, pieces):
            total += len(piece)
            if total > cap:
                raise TooLarge(f"{label}: larger than {_size(cap)} (the per-file cap): skipped")
            yield piece
        return
    yield from _gunzip(_prepend(first, pieces), label, cap)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _gunzip(pieces: Iterator[bytes], label: str, cap: int) -> Chunks:
    inflater = isal_zlib.decompressobj(31)
    total = 0
    try:
        for piece in pieces:
            data = piece
            while data:
                if inflater.eof:  # what follows a gzip member: another member, or zero padding
                    if not data.strip(b"\0"):
                        break
                    inflater = isal_zlib.decompressobj(31)
                out = inflater.decompress(data, CHUNK)
                # Input held back by the CHUNK limit, or what follows the member that just ended.
                data = inflater.unconsumed_tail or (inflater.unused_data if inflater.eof else b"")
                if out:
                    total += len(out)
                    if total > cap:
                        raise TooLarge(f"{label}: inflates past {_size(cap)} (the per-file cap): skipped")
                    yield out
        if not inflater.eof:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
    except CORRUPT_GZIP as exc:
        raise InputError(f"{label}: corrupt gzip ({exc})") from exc


def _size(n: int) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def file_opener(path: Path | str, *, cap: int = MAX_INFLATED) -> Opener:
    """A function that opens `path` afresh each time (a reader may start a file over another way)."""

    def open_chunks() -> Chunks:
        try:
            stream = open(path, "rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        with stream:
            try:
                yield from inflate(_reads(stream), label=str(path), cap=cap)
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc

    return open_chunks


def bytes_opener(data: bytes, *, label: str, cap: int = MAX_INFLATED) -> Opener:
    """The same for bytes already in memory (an S3 object's body, a test)."""

    def open_chunks() -> Chunks:
        view = memoryview(data)
        yield from inflate((bytes(view[i : i + READ]) for i in range(0, len(data), READ)), label=label, cap=cap)

    return open_chunks
