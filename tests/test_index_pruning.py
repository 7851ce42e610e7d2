"""The index keeps raw records without their forensic-only fields (bot.store.packing.FORENSIC_ONLY): on
every record we have (the corpus, its background traffic, the detections' own cases), the pruned record
gives every detection the same verdict, the Record view the same values, the card's "before" values and
restores the same answers as the full record does."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.prior import RULES
from bot.alerts.restore import restoration
from bot.core.record import Record
from bot.store.packing import prune
from bot.store.rows import index_row, is_config_write, summarise
from detections import REGISTRY, evaluate
from detections.base import Change
from standins.cloudtrail import s3_record

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"
# Every value the Record view offers (its properties), compared one by one.
VIEW = sorted(name for name in dir(Record) if isinstance(getattr(Record, name), property | type(Record.event_id)))


def _case_records() -> Iterator[tuple[str, Any]]:
    for detection in REGISTRY:
        if detection.cases_path.exists():
            for case in json.loads(detection.cases_path.read_text()):
                yield f"{detection.id}:{case['name']}", case["record"]


def _corpus_records() -> Iterator[tuple[str, Any]]:
    for n, line in enumerate((CORPUS / "events.jsonl").read_text().splitlines()):
        if line.strip():
            yield f"corpus:{n}", json.loads(line)["record"]
    with gzip.open(CORPUS / "background-real.json.gz") as fh:
        for n, raw in enumerate(json.load(fh)["Records"]):
            yield f"background:{n}", raw


def _own_records() -> Iterator[tuple[str, Any]]:
    """Our own records for what is read outside requestParameters: a delete's response (a delete marker is
    no restore), the bucket from the TLS host header alone, a federated session named by its principal."""
    base = s3_record("DeleteObject", bucket="h1-ledger", params={"key": "a/b.txt"})
    yield "delete marker", {**base, "responseElements": {"x-amz-delete-marker": "true"}}
    yield "delete", {**base, "responseElements": None}
    tls = s3_record("PutBucketAcl", params={"x-amz-acl": "public-read"})
    del tls["requestParameters"]["bucketName"], tls["requestParameters"]["Host"]
    host = {"tlsVersion": "TLSv1.2", "clientProvidedHostHeader": "h1-x.s3.amazonaws.com"}
    yield "tls host", {**tls, "tlsDetails": host}
    federated = s3_record("PutBucketPolicy", params={"bucketPolicy": {"Statement": []}})
    yield "federated", {**federated, "userIdentity": {"type": "FederatedUser", "principalId": "111122223333:ivan",
                                                      "accessKeyId": "ASIAEXAMPLE", "sessionContext": {
                                                          "attributes": {"creationDate": "2025-06-30T10:00:00Z",
                                                                         "mfaAuthenticated": "false"}}}}  # fmt: skip


@cache
def _changes_by_detection() -> dict[str, list[Change]]:
    """Every change any finding of these records holds, by detection: what the card asks "before" values for."""
    out: dict[str, list[Change]] = {}
    records = list(_case_records()) + list(_own_records()) + (list(_corpus_records()) if CORPUS.is_dir() else [])
    for _, raw in records:
        for finding in evaluate(Record(raw)):
            out.setdefault(finding.detection, []).extend(finding.changes)
    return out


def _same_everywhere(raw: Any) -> None:
    full, pruned = Record(raw), Record(prune(raw))
    assert {n: getattr(pruned, n) for n in VIEW} == {n: getattr(full, n) for n in VIEW}
    for check in REGISTRY:
        assert check.matches(pruned) == check.matches(full), check.id
    assert evaluate(pruned) == evaluate(full)
    assert restoration(pruned) == restoration(full)
    assert is_config_write(pruned) == is_config_write(full)
    assert summarise(pruned) == summarise(full)
    # This record as the previous write a card reads its "before" values from (bot.alerts.prior).
    for detection, (names, describe) in RULES.items():
        if full.event_name in names:
            for change in _changes_by_detection().get(detection, []):
                assert describe(change, pruned) == describe(change, full), (detection, change)


CASES = [pytest.param(raw, id=name) for name, raw in [*_case_records(), *_own_records()]]


@pytest.mark.parametrize("raw", CASES)
def test_detection_cases_read_the_same_pruned(raw: Any) -> None:
    _same_everywhere(raw)


def test_corpus_reads_the_same_pruned() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the labelled corpus is not at {CORPUS}")
    records = list(_corpus_records())
    assert len(records) > 400
    for _, raw in records:
        _same_everywhere(raw)


def test_the_index_keeps_the_pruned_record_and_nothing_forensic() -> None:
    raw: dict[str, Any] = {
        "eventVersion": "1.09", "eventID": "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "requestID": "K2V9Q1ZX7T4M8N3P",
        "eventTime": "2025-06-30T11:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "PutBucketAcl",
        "awsRegion": "us-east-2", "recipientAccountId": "111122223333", "sourceIPAddress": "198.51.100.4",
        "userAgent": "aws-cli/2.15.30", "sharedEventID": "9b1c", "vpcEndpointId": "vpce-0a1b2c3d",
        "userIdentity": {"type": "AssumedRole", "accessKeyId": "ASIAZ7Q2EXAMPLE", "accountId": "111122223333",
                         "arn": "arn:aws:sts::111122223333:assumed-role/Admin/ivan",
                         "sessionContext": {"attributes": {"creationDate": "2025-06-30T10:59:01Z",
                                                           "mfaAuthenticated": "true"}}},
        "requestParameters": {"acl": "", "x-amz-acl": "public-read"},
        "additionalEventData": {"x-amz-id-2": "Zm9vYmFyYmF6cXV4", "SignatureVersion": "SigV4"},
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": "h1-ledger.s3.us-east-2.amazonaws.com"},
    }  # fmt: skip
    kept: dict[str, Any] = index_row(Record(raw), "scan").record()
    assert kept == prune(raw) != raw
    text = json.dumps(kept)
    for gone in ("requestID", "eventVersion", "sharedEventID", "vpcEndpointId", "additionalEventData", "x-amz-id-2",
                 "accessKeyId", "creationDate", "tlsVersion", "cipherSuite"):  # fmt: skip
        assert gone not in text
    # What the detections and the card read is all there: the bucket comes from the TLS host header here.
    assert Record(kept).bucket == "h1-ledger" and Record(kept).actor.mfa is True
    assert [f.detection for f in evaluate(Record(kept))] == ["bucket_acl_public"]
    assert raw["requestID"] and raw["userIdentity"]["accessKeyId"], "the record given is left as it was"
