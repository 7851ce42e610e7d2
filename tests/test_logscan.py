"""The byte scan of log files agrees with a full parse, whatever the key order, spacing and chunking."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.record import Record
from bot.sources.files import wanted
from bot.sources.inflate import bytes_opener
from bot.sources.logscan import LogScanner, Unscannable
from bot.sources.reader import ScanStats, read_records, whole
from detections import evaluate
from tests.test_properties import CASE_RECORDS, FAST, junk, mutated_records


def _order(value: Any, how: str, rng: random.Random) -> Any:
    if isinstance(value, list):
        return [_order(v, how, rng) for v in value]
    if not isinstance(value, dict):
        return value
    keys = list(value)
    if how == "alphabetical":
        keys.sort()
    elif how == "reversed":
        keys.reverse()
    elif how == "random":
        rng.shuffle(keys)
    return {k: _order(value[k], how, rng) for k in keys}


def _file(records: list[Any], how: str, spacing: str, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    body = {"Records": [_order(r, how, rng) for r in records]}
    if spacing == "compact":
        return json.dumps(body, separators=(",", ":")).encode()
    if spacing == "indent":
        return json.dumps(body, indent=2).encode()
    return json.dumps(body).encode()  # ", " and ": "


def _found(records: list[Record]) -> list[tuple[str, str]]:
    return sorted((f.event_id, f.detection) for r in records for f in evaluate(r))


def _byte_scan(blob: bytes, cuts: list[int]) -> tuple[list[tuple[str, str]], int, int]:
    """Findings, record count and parsed count of the byte scan fed in pieces cut at `cuts`."""
    scanner = LogScanner(wanted(True))
    out: list[Any] = []
    edges = [0, *sorted(c % (len(blob) + 1) for c in cuts), len(blob)]
    pieces = [blob[a:b] for a, b in itertools.pairwise(edges) if b > a]
    first, rest = pieces[0], pieces[1:]
    while len(first) < 64 and rest:  # the caller hands at least the head in the first piece
        first += rest.pop(0)
    for piece in [first, *rest]:
        out += scanner.feed(piece)
    out += scanner.finish()
    return _found([Record(r) for r in out]), scanner.records, scanner.parsed


def _full(blob: bytes) -> tuple[list[tuple[str, str]], int]:
    stats = ScanStats()
    return _found([Record(r) for r in whole(blob, stats, "t")]), stats.records


@pytest.mark.parametrize("how", ["canonical", "alphabetical", "reversed", "random"])
@pytest.mark.parametrize("spacing", ["compact", "spaced", "indent"])
def test_every_case_record_in_every_order_and_spacing(how: str, spacing: str) -> None:
    blob = _file(CASE_RECORDS, how, spacing, seed=3)
    found, count, parsed = _byte_scan(blob, [7919 * n for n in range(1, 40)])
    assert (found, count) == _full(blob)
    assert found  # the case files hold true cases
    assert parsed < len(CASE_RECORDS)  # reads and other services were ruled out without a parse


@FAST
@given(
    st.lists(mutated_records(junk), min_size=1, max_size=6),
    st.sampled_from(["canonical", "alphabetical", "reversed", "random"]),
    st.sampled_from(["compact", "spaced", "indent"]),
    st.lists(st.integers(0, 10**6), max_size=8),
)
def test_byte_scan_agrees_with_a_full_parse(records: list[Any], how: str, spacing: str, cuts: list[int]) -> None:
    """Through `read_records`: the byte scan, or the exact reader where it declines; never a different answer."""
    blob = _file(records, how, spacing)
    stats = ScanStats()
    raws = list(read_records(lambda: iter([blob]), stats, label="t", wanted=wanted(True), whole_up_to=0))
    full, count = _full(blob)
    assert _found([Record(r) for r in raws]) == full
    assert stats.records == count == len(records)
    # And fed in odd pieces, when the byte scan takes the file at all.
    try:
        assert _byte_scan(blob, cuts)[0] == full
    except Unscannable:  # the scan may decline; it never answers wrongly
        pass


def test_nested_separators_on_both_sides_of_the_key() -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "a", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "b", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "c", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:*",
             "Resource": "arn:aws:s3:::b"},
        ],
    }  # fmt: skip
    record = {
        "resources": [{"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}, {"accountId": "111122223333"}],
        "eventSource": "s3.amazonaws.com",
        "requestParameters": {"bucketName": "b", "bucketPolicy": policy},
        "eventName": "PutBucketPolicy",
        "eventID": "nested-1",
        "eventTime": "2025-03-04T10:00:00Z",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
    }
    noise = {**record, "eventName": "GetBucketPolicy", "eventID": "noise", "readOnly": True}
    for spacing in ("compact", "spaced", "indent"):
        blob = _file([noise, record, noise], "canonical", spacing)
        found, count, _ = _byte_scan(blob, [])
        assert found == [("nested-1", "bucket_policy_public")] and count == 3


def test_text_that_looks_like_a_record_inside_strings_is_not_one() -> None:
    fake = json.dumps({"eventSource": "s3.amazonaws.com", "eventName": "DeleteBucketPublicAccessBlock"})
    record = {
        "eventVersion": "1.09", "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
        "eventID": "bg", "userAgent": fake + '},{"eventSource":"s3.amazonaws.com"', "requestParameters": {"x": fake},
    }  # fmt: skip
    blob = _file([record] * 3, "alphabetical", "compact")
    assert _byte_scan(blob, [100, 200]) == ([], 3, 0)


def test_a_byte_order_mark_and_a_large_file_take_the_byte_scan() -> None:
    records = [*CASE_RECORDS] * 40
    blob = b"\xef\xbb\xbf" + _file(records, "alphabetical", "compact")
    assert len(blob) > 256 << 10
    stats = ScanStats()
    raws = list(read_records(bytes_opener(blob, label="bom"), stats, label="bom", wanted=wanted(False)))
    assert stats.full_parses == 0 and stats.records == len(records)
    assert _found([Record(r) for r in raws]) == _found([Record(r) for r in records])


def test_json_lines_with_a_long_first_line_are_read_line_by_line() -> None:
    long = {**CASE_RECORDS[0], "userAgent": "x" * 100_000}
    lines = [json.dumps(long)] + [json.dumps(r) for r in CASE_RECORDS * 3]
    blob = "\n".join(lines).encode()
    assert len(blob) > 256 << 10
    stats = ScanStats()
    raws = list(read_records(bytes_opener(blob, label="l"), stats, label="l", wanted=wanted(False)))
    assert stats.malformed == 0 and stats.records == len(raws) == len(lines)


@pytest.mark.parametrize("how", ["canonical", "random"])
def test_every_seam_between_pieces(how: str) -> None:
    """Pieces are scanned where they lie and only the seam is joined: cut the file at every offset of a
    stretch around a record boundary (a key, the S3 value, a separator split in two) and in even pieces of
    sizes that put zero, one, two or many keys in a piece."""
    blob = _file(CASE_RECORDS[:30], how, "compact", seed=5)
    full = _full(blob)
    middle = blob.index(b'"eventSource"', len(blob) // 2)
    for cut in range(middle - 700, middle + 700, 7):
        assert _byte_scan(blob, [cut, cut + 900])[:2] == full
    for size in (97, 1000, 1500, 2500, 4000, 9000):
        assert _byte_scan(blob, list(range(size, len(blob), size)))[:2] == full
