"""The hand-labelled real corpus (../shared/corpus): every record and policy gets AWS's answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.core.policy import evaluate_document
from bot.core.record import Record
from detections import evaluate
from tests.conftest import CORPUS

ABSENT = not CORPUS.is_dir()
SKIP = pytest.mark.skipif(ABSENT, reason="../shared/corpus is absent")


def _lines(name: str) -> list[dict[str, Any]]:
    """Parametrize needs the list at collection time, so read it here when the folder exists."""
    path = CORPUS / name
    if ABSENT or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


EVENTS = _lines("events.jsonl")
POLICIES = _lines("policies.jsonl")


@SKIP
def test_corpus_is_present_and_labelled(corpus: Path) -> None:
    assert len(EVENTS) >= 10 and len(POLICIES) >= 10
    assert {e["label"] for e in EVENTS} == {"public", "not_public"}
    assert {p["public"] for p in POLICIES} == {True, False}


@SKIP
@pytest.mark.parametrize("entry", EVENTS, ids=[f"{i}-{e['kind']}" for i, e in enumerate(EVENTS)])
def test_event_label(corpus: Path, entry: dict[str, Any]) -> None:
    findings = evaluate(Record(entry["record"]))
    public = [f for f in findings if f.public]
    assert bool(public) is (entry["label"] == "public"), entry.get("note", "")
    for finding in public:
        assert finding.title and finding.changes


@SKIP
@pytest.mark.parametrize("entry", POLICIES, ids=[f"{i}-{p['type']}" for i, p in enumerate(POLICIES)])
def test_policy_label(corpus: Path, entry: dict[str, Any]) -> None:
    verdict = evaluate_document(entry["policy"])
    assert verdict.public is entry["public"], entry.get("why", "")
    assert verdict.reasons, "every verdict explains itself"


@SKIP
@pytest.mark.parametrize("entry", POLICIES[:10], ids=[f"{i}" for i in range(min(10, len(POLICIES)))])
def test_policy_as_json_text_gets_the_same_answer(corpus: Path, entry: dict[str, Any]) -> None:
    """Records carry policies as objects or as JSON text; both must give one verdict."""
    as_text = entry["policy"] if isinstance(entry["policy"], str) else json.dumps(entry["policy"])
    assert evaluate_document(as_text).public is entry["public"]


@SKIP
def test_background_traffic_raises_nothing(corpus: Path) -> None:
    """413 real unrelated records: EC2, SSM, STS, S3 reads. None is a public exposure."""
    import gzip

    from bot.core.record import unwrap

    records = unwrap(json.loads(gzip.decompress((corpus / "background-real.json.gz").read_bytes())))
    assert len(records) > 100
    assert [f for r in records for f in evaluate(Record(r))] == []


@SKIP
@pytest.mark.parametrize("entry", POLICIES, ids=[f"{i}-{p['type']}" for i, p in enumerate(POLICIES)])
def test_policy_reasons_read_as_sentences(corpus: Path, entry: dict[str, Any]) -> None:
    """A responder reads the reasons: each a sentence; a public verdict names the statement or the grant."""
    verdict = evaluate_document(entry["policy"])
    for reason in verdict.reasons:
        assert reason[0].isupper() and reason.endswith("."), reason
        assert "None" not in reason and "{'" not in reason, reason
    if verdict.public:
        assert all(r.startswith(("Statement ", "Canned ACL ", "The ACL grants ")) for r in verdict.reasons)
    else:
        assert verdict.reasons[0].startswith("Not public")
