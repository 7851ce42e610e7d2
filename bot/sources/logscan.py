"""The byte scan of a CloudTrail log file (`{"Records":[…]}`): parse only the S3 records that matter.

Most records of a trail are not S3 configuration writes, and a full JSON parse of every record costs
several times the decompression. So the inflated bytes are searched, chunk by chunk while they are
fresh, for what rules a record in or out, whatever the key order and spacing:

- every record has exactly one `"eventSource"` key: counting that key counts the records (one pass);
- an S3 record holds `"eventSource":"s3.amazonaws.com"` (spaces allowed, or the value in a list):
  a second pass finds the string `"s3.amazonaws.com"` and looks back for the key;
- its `"eventName"` is read next to it (CloudTrail's order puts it just after, alphabetical order
  just before) or else searched between the neighbouring records' `eventSource` keys;
- only a record whose name a detection watches (or, for the index, an S3 configuration write) is
  parsed. Its bounds are found by trying the `},{` separators around it nearest first: a slice
  parses as one JSON object only when it is exactly the record (a slice from or to a separator
  nested inside it is not one value), so orjson checks every guess.

A key inside a string cannot match (JSON escapes the quotes around it), so text planted in a user
agent or a policy string never looks like a record. Anything that does not fit (no `},{` pair parses,
a record larger than MAX_WINDOW, a file that does not end like a log file, records without an
`eventSource` key) raises `Unscannable` and the caller reads the file the slow, exact way. Not
recognised: JSON `\\u` escapes of plain letters inside these two keys or their values (no JSON writer
produces them). Hand-written because no JSON library skips unneeded records at these speeds: every
parser here (orjson, ijson, msgspec) builds or validates all of them. The two passes use StringZilla's
SIMD `count` and `find` (2-4× CPython's `bytes.count`/`bytes.find` here, on the same memory): with
them the scan costs a small fraction of the decompression.

Chunks are scanned where they lie: only the seam between the held tail and the next chunk (up to its
second key) is joined, so the bytes are not copied again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from stringzilla import Str

ES = b'"eventSource"'
S3_VALUE = b'"s3.amazonaws.com"'
_ES_COMPACT = b'"eventSource":"'
_NAME_AFTER = b',"eventName":"'
_NAME_KEY = b'"eventName":"'
_NAME_ANY = b'"eventName"'
_COMPACT_KEY = len(_ES_COMPACT) - 1  # from the key to its value's opening quote
_ES_BEFORE = re.compile(rb'"eventSource"\s*:[\s\[]*"$')
_NAME = re.compile(rb'"eventName"\s*:\s*(?:"([^"\\]*)"|.)')
_SEP = re.compile(rb"\}\s*,\s*\{")
HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[\s*')
_EMPTY_TAIL = re.compile(rb"\]\s*\}\s*$")
MAX_WINDOW = 8 << 20  # bytes one record (with its neighbours' keys) may span before the slow path takes over
MAX_ATTEMPTS = 256  # separator pairs tried for one record


class Unscannable(Exception):
    """This file needs the exact (slower) reader."""


class LogScanner:
    """Feed inflated chunks of one log file (`feed`, then `finish`); interesting records come back as dicts.

    `wanted(name)` says whether a record with this eventName (bytes, as written) must be parsed. `records` counts every
    record seen. The first chunk must start at `HEAD` (the caller checked it).
    """

    def __init__(self, wanted: Callable[[bytes], bool]):
        self.wanted = wanted
        self.records = 0
        self.parsed = 0
        self._buf = b""
        self._text = Str(b"")
        self._lo = 0  # `eventSource` keys before this offset are done
        self._head: int | None = None  # offset of the first record while the buffer starts at the file start

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        if self._head is None and not self._buf:
            match = HEAD.match(chunk)
            if match is None:
                raise Unscannable("not a log file")
            self._head = match.end()
        lo = self._lo
        if not self._buf:
            self._use(chunk)
        else:
            # The held record (its key at `lo` in the tail) ends in this chunk or later. Only the seam is
            # joined: the tail and the chunk up to its second key, which holds the records on either side
            # of the seam with their neighbours' keys; the rest of the chunk is scanned where it lies.
            text = Str(chunk)
            first = text.find(ES)
            second = text.find(ES, first + len(ES)) if first != -1 else -1
            if second == -1:  # fewer than two keys: a record near the chunk's size; hold it all
                self._use(self._buf + chunk)
            else:
                self._use(self._buf + chunk[: second + len(ES)])
                yield from self._scan(lo, len(self._buf) - len(ES), final=False)
                self._use(chunk)
                self._head = None
                lo = second
        buf = self._buf
        cut = self._text.rfind(ES, lo)
        if cut <= lo:
            if len(buf) - lo > MAX_WINDOW:
                raise Unscannable("a record larger than the scan window")
            if cut == -1:  # no key yet (the file's start): hold everything
                self._lo = lo
                return
        else:
            yield from self._scan(lo, cut, final=False)
        # Keep from the key before the cut: the held record's start lies between the two keys.
        keep = max(self._text.rfind(ES, 0, cut), 0)
        self._buf = buf[keep:]
        self._lo = cut - keep
        if keep:
            self._head = None

    def finish(self) -> Iterator[dict[str, Any]]:
        self._use(self._buf)
        buf = self._buf
        if self._head is not None and self._lo == 0 and self._text.find(ES) == -1:
            if _EMPTY_TAIL.match(buf, self._head):
                return  # {"Records":[]}
            raise Unscannable("records without an eventSource key")
        if not _ends_like_log(buf):
            raise Unscannable("does not end like a log file")
        yield from self._scan(self._lo, len(buf), final=True)

    def _use(self, buf: bytes) -> None:
        """Scan `buf` from now on (StringZilla's view of it shares its memory: no copy)."""
        self._buf = buf
        self._text = Str(buf)

    def _scan(self, lo: int, cut: int, *, final: bool) -> Iterator[dict[str, Any]]:
        """The records whose `eventSource` keys lie in [lo, cut) of the buffer."""
        buf, text = self._buf, self._text
        self.records += text.count(ES, lo, cut)
        find, startswith, adjacent, wanted = text.find, buf.startswith, self._adjacent_name, self.wanted
        stop = min(len(buf), cut + 128)  # the value of a key before `cut` starts within a few bytes of it
        at = find(S3_VALUE, lo, stop)
        while at != -1:
            # The key before the value (`"s3.amazonaws.com"` is a whole string: a host name never matches).
            if startswith(_ES_COMPACT, at - _COMPACT_KEY):
                key = at - _COMPACT_KEY
            else:
                key = self._key_before(at)
            if key >= cut:
                break
            if key >= lo:
                name = adjacent(key, at)  # most S3 records are reads: ruled out by the name beside the value
                if name is None or wanted(name):
                    record = self._record(key, name, final)
                    if record is not None:
                        yield record
            at = find(S3_VALUE, at + len(S3_VALUE), stop)

    def _key_before(self, at: int) -> int:
        """Where the `"eventSource"` key (spaced, or its value in a list) whose value starts at `at` is, or -1."""
        match = _ES_BEFORE.search(self._buf, max(0, at - 64), at + 1)
        return match.start() if match else -1

    def _record(self, key: int, name: bytes | None, final: bool) -> dict[str, Any] | None:
        """The record whose key is at `key`, parsed; None when no name near it is wanted (`name` unknown)."""
        buf, text = self._buf, self._text
        prev = text.rfind(ES, 0, key)
        nxt = text.find(ES, key + len(ES))
        left = prev + len(ES) if prev != -1 else 0
        right = nxt if nxt != -1 else len(buf)
        if name is None and not self._any_wanted(left, right):
            return None
        starts = [m.end() - 1 for m in _SEP.finditer(buf, left, key)][::-1]
        if prev == -1 and self._head is not None:
            starts.append(self._head)
        ends = [m.start() + 1 for m in _SEP.finditer(buf, key, right)]
        if nxt == -1 and final:
            ends.append(_tail_end(buf))
        view = memoryview(buf)
        attempts = 0
        for start in starts:
            for end in ends:
                attempts += 1
                if attempts > MAX_ATTEMPTS:
                    raise Unscannable("too many nested separators around a record")
                try:
                    value = orjson.loads(view[start:end])
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(value, dict):
                    raise Unscannable("a record that is not an object")
                self.parsed += 1
                return value
        raise Unscannable("no record bounds around an S3 record")

    def _adjacent_name(self, key: int, at: int) -> bytes | None:
        """The record's eventName when it sits right beside eventSource (CloudTrail's order, alphabetical)."""
        buf = self._buf
        after = at + len(S3_VALUE)
        if buf.startswith(_NAME_AFTER, after):  # CloudTrail's own order: eventName follows eventSource
            start = after + len(_NAME_AFTER)
            return _plain(buf[start : buf.find(b'"', start)])
        if buf[key - 2 : key] == b'",':  # alphabetical order: eventName just before
            start = buf.rfind(_NAME_KEY, max(0, key - 256), key)
            if start != -1:
                name = buf[start + len(_NAME_KEY) : key - 2]
                if b'"' not in name:
                    return _plain(name)
        return None

    def _any_wanted(self, left: int, right: int) -> bool:
        """Any other order or spacing: whether any eventName between the neighbouring records' keys (a
        superset of this record's) is wanted, or is not a plain string, or there is none."""
        buf, find, wanted = self._buf, self._text.find, self.wanted
        seen = False
        at = find(_NAME_ANY, left, right)
        while at != -1:
            start = at + len(_NAME_ANY) + 2
            if buf.startswith(b':"', start - 2):  # compact: the value is read in place
                end = buf.find(b'"', start, right)
                name: bytes | None = _plain(buf[start:end]) if end != -1 else None
                seen = True
            else:
                match = _NAME.match(buf, at, right)
                seen = seen or match is not None
                name = b"" if match is None else _plain(match.group(1))
            if name is None or (name and wanted(name)):
                return True
            at = find(_NAME_ANY, at + len(_NAME_ANY), right)
        return not seen


def _ends_like_log(buf: bytes) -> bool:
    """The buffer ends with a record's `}`, the array's `]` and the object's `}` (whitespace between)."""
    rest = buf.rstrip()
    if not rest.endswith(b"}"):
        return False
    rest = rest[:-1].rstrip()
    return rest.endswith(b"]") and rest[:-1].rstrip().endswith(b"}")


def _tail_end(buf: bytes) -> int:
    """Just after the last record's `}` in a buffer ending `}]}` (checked by the caller)."""
    end = len(buf.rstrip())  # the object's `}`
    end = len(buf[: end - 1].rstrip())  # the array's `]`
    return len(buf[: end - 1].rstrip())


def _plain(name: bytes | None) -> bytes | None:
    return None if name is None or b"\\" in name else name
