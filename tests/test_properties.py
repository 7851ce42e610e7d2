"""Hostile and truncated input never raises: Record, every detection, the index and the scanner."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.policy import evaluate_acl, evaluate_document
from bot.core.record import Record, unwrap
from bot.sources.files import ScanStats, parse_blob
from bot.store.index import is_config_write, summarise
from detections import REGISTRY, evaluate
from detections.base import make_finding

CASE_RECORDS = [case["record"] for d in REGISTRY for case in json.loads(d.cases_path.read_text())]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON-clean scalars (what a file can carry: orjson takes 64-bit integers and finite floats).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Values a hostile or broken exporter might put anywhere: wrong type, nested junk, look-alike text.
junk = json_values | st.sampled_from(
    [
        "",
        "*",
        "public-read",
        "s3.amazonaws.com",
        "2023-01-11 16:01:20",
        'uri="http://acs.amazonaws.com/groups/global/AllUsers"',
        ["public-read"],
        [[]],
        {"AWS": ["*", None]},
        {"Statement": "x"},
        {"Statement": [None, 1, {"Effect": "Allow"}]},
        '{"Statement": {"Effect": "Allow", "Principal": "*"}}',
        "arn:aws:sts::1:assumed-role",
        "arn:aws:s3:::",
        "111122223333.s3-control.us-east-1.amazonaws.com",
        ".s3.",
        2**63 - 1,
        -1,
        1e308,
    ]
)
# Only in memory (an SQS body or a Python caller): values no JSON file can hold.
wild = junk | st.sampled_from([float("nan"), float("inf"), 10**30, b"bytes", ("tuple",), {1: "int key"}])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a record, so a mutation can land on any field at any depth."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.extend(_paths(child, (*prefix, index)))
    return out


@st.composite
def mutated_records(draw: st.DrawFn, values: st.SearchStrategy[Any] = wild) -> dict[str, Any]:
    record = copy.deepcopy(draw(st.sampled_from(CASE_RECORDS)))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(record)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = record
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = copy.deepcopy(draw(values))  # constants in `junk` are shared objects
    return record


def _exercise(raw: Any) -> None:
    record = Record(raw)
    for name in (
        "event_id",
        "event_name",
        "event_source",
        "is_s3",
        "event_time",
        "error_code",
        "succeeded",
        "read_only",
        "params",
        "host",
        "account",
        "region",
        "bucket",
        "object_key",
        "source_ip",
        "user_agent",
        "agent_kind",
        "resource_label",
    ):
        getattr(record, name)
    assert isinstance(record.actor.display, str)
    assert record.bucket is None or isinstance(record.bucket, str)
    # Call every detection directly: evaluate() hides a rule's exception, these tests must see it.
    for detection in REGISTRY:
        if detection.matches(record):
            finding = make_finding(detection, record)
            assert finding.title
            json.dumps(finding.as_dict())
    evaluate(record)
    if is_config_write(record):
        assert summarise(record)
    summarise(record)


@FAST
@given(mutated_records())
def test_mutated_real_shaped_records(raw: dict[str, Any]) -> None:
    _exercise(raw)


@FAST
@given(json_values)
def test_arbitrary_json_values(raw: Any) -> None:
    _exercise(raw)
    unwrap(raw)
    evaluate_document(raw)
    evaluate_acl(raw)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "eventName",
                "eventSource",
                "requestParameters",
                "userIdentity",
                "eventTime",
                "errorCode",
                "resources",
                "recipientAccountId",
                "readOnly",
            ]
        ),
        wild,
        max_size=9,
    ),
    st.sampled_from(sorted({n for d in REGISTRY for n in d.event_names})),
)
def test_watched_event_names_with_junk_fields(raw: dict[str, Any], name: str) -> None:
    raw.setdefault("eventName", name)
    raw.setdefault("eventSource", "s3.amazonaws.com")
    _exercise(raw)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            ["Statement", "Policy", "Grants", "x-amz-acl", "AccessControlList", "x-amz-grant-read", "Version"]
        ),
        junk,
        max_size=4,
    )
)
def test_policy_rule_on_junk_documents(document: dict[str, Any]) -> None:
    verdict = evaluate_document(document)
    assert isinstance(verdict.public, bool) and verdict.reasons
    json.dumps(verdict.as_dict(), default=str)


def _scan(blob: bytes) -> ScanStats:
    stats = ScanStats()
    for record in parse_blob(blob, stats, label="fuzz"):
        evaluate(record)
    return stats


@FAST
@given(st.binary(max_size=300))
def test_parse_blob_random_bytes(blob: bytes) -> None:
    _scan(blob)


@FAST
@given(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b'{"Records":[{"eventVersion":',
            b'{"Records":[{"eventVersion":"1.09","eventSource":"s3.amazonaws.com"',
            b'},{"eventVersion":',
            b'"eventSource":"s3.amazonaws.com"',
            b'"eventName":"PutBucketPolicy"',
            b"\n",
            b"\x1f\x8b",
        ]
    ),
)
def test_parse_blob_near_canonical_bytes(tail: bytes, head: bytes) -> None:
    """Bytes that start like a CloudTrail log file exercise the scanner's byte-search fast path."""
    _scan(head + tail)
    _scan(head + tail + head)


@FAST
@given(st.lists(mutated_records(junk), min_size=1, max_size=4))
def test_parse_blob_canonical_files_of_mutated_records(records: list[dict[str, Any]]) -> None:
    """The fast path and the full parse agree on which records exist and what they find."""
    ordered = [{"eventVersion": "1.09", **r} for r in records]
    compact = json.dumps({"Records": ordered}, separators=(",", ":")).encode()
    spaced = json.dumps({"Records": ordered}, indent=1).encode()
    fast_stats, slow_stats = ScanStats(), ScanStats()
    fast = sorted((f.event_id, f.detection) for r in parse_blob(compact, fast_stats) for f in evaluate(r))
    slow = sorted((f.event_id, f.detection) for r in parse_blob(spaced, slow_stats) for f in evaluate(r))
    assert fast == slow
    assert fast_stats.records == slow_stats.records == len(records)
