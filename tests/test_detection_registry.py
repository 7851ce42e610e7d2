"""Meta-test over the detection registry, then every case file beside every detection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.core.record import Record
from detections import BY_ID, REGISTRY, WATCHED_EVENT_NAMES, evaluate
from detections.base import SEVERITIES, Detection


def _cases(detection: Detection) -> list[dict[str, Any]]:
    return json.loads(detection.cases_path.read_text()) if detection.cases_path.exists() else []


CASES = [
    pytest.param(detection, case, id=f"{detection.id}:{case['name']}")
    for detection in REGISTRY
    for case in _cases(detection)
]


def test_registry_ids_are_unique() -> None:
    ids = [d.id for d in REGISTRY]
    assert len(ids) == len(set(ids)) == len(BY_ID)


@pytest.mark.parametrize("detection", REGISTRY, ids=lambda d: d.id)
def test_detection_metadata(detection: Detection) -> None:
    assert detection.id == Path(detection.module_file).stem
    assert detection.severity in SEVERITIES
    assert detection.name.strip()
    assert len(detection.runbook.strip()) > 40, "a runbook tells the responder what to do"
    assert detection.event_names and detection.event_names <= WATCHED_EVENT_NAMES


@pytest.mark.parametrize("detection", REGISTRY, ids=lambda d: d.id)
def test_cases_file_has_true_and_false_cases(detection: Detection) -> None:
    assert detection.cases_path.exists(), f"{detection.cases_path.name} is missing"
    cases = _cases(detection)
    assert isinstance(cases, list)
    for case in cases:
        assert set(case) >= {"name", "expect", "record"}
        assert isinstance(case["expect"], bool) and isinstance(case["record"], dict)
    assert sum(c["expect"] for c in cases) >= 1
    assert sum(not c["expect"] for c in cases) >= 1
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names identify failures: keep them unique"


def test_case_files_belong_to_registered_detections() -> None:
    folder = Path(REGISTRY[0].module_file).parent
    stems = {p.name.removesuffix(".cases.json") for p in folder.glob("*.cases.json")}
    assert stems == set(BY_ID)


@pytest.mark.parametrize(("detection", "case"), CASES)
def test_case(detection: Detection, case: dict[str, Any]) -> None:
    record = Record(case["record"])
    assert detection.matches(record) is case["expect"]
    found = [f for f in evaluate(record) if f.detection == detection.id]
    if not case["expect"]:
        assert not found
        return
    assert len(found) == 1
    finding = found[0]
    assert finding.title.strip() and "?" not in finding.title.split()
    assert finding.changes and all(str(c).strip() for c in finding.changes)
    assert finding.severity in SEVERITIES
    assert finding.event_id == case["record"]["eventID"]
    assert finding.account and finding.region
    assert finding.actor.person
    assert finding.public is detection.public
    if detection.id.startswith("account_") or detection.id.startswith("access_point_"):
        assert finding.bucket is None
    else:
        assert finding.bucket, "bucket-level findings name their bucket"
    row = finding.as_dict()
    json.dumps(row)  # the jsonl shape must serialise
    assert row["detection"] == detection.id


def test_acl_severity_rises_with_write_grants() -> None:
    """A public WRITE_ACP grant is worse than public READ: the card must say so."""
    by_name = {c["name"]: c for c in _cases(BY_ID["bucket_acl_public"])}
    read = evaluate(Record(by_name["explicit grant list with AllUsers READ"]["record"]))
    acp = evaluate(Record(by_name["single-object Grant to AuthenticatedUsers WRITE_ACP"]["record"]))
    assert [f.severity for f in read] == ["high"]
    assert [f.severity for f in acp] == ["critical"]
