"""Findings to and from the JSON stored in alert_findings.finding.

The stored text is the `scan --format jsonl` dict plus two keys that let a Finding be rebuilt
exactly: `actor_detail` (the Actor's fields) and `change_list` (each Change as [what, before, after]).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from bot.core.clock import parse_iso
from bot.core.record import Actor
from detections.base import Change, Finding

# Keys only the codec needs; readers of the jsonl shape never see them.
_PRIVATE_KEYS = ("actor_detail", "change_list")


def finding_json(finding: Finding) -> str:
    """The Finding as stored text: its jsonl dict plus what is needed to rebuild it."""
    data = finding.as_dict()
    data["actor_detail"] = asdict(finding.actor)
    data["change_list"] = [[c.what, c.before, c.after] for c in finding.changes]
    return json.dumps(data)


def finding_from_json(raw: str) -> Finding:
    """Rebuild a Finding from stored text; missing keys (older rows) fall back to neutral values."""
    data = json.loads(raw)
    detail = data.get("actor_detail")
    actor = Actor(**detail) if isinstance(detail, dict) else Actor("Unknown", "", "")
    get = data.get
    return Finding(
        get("detection", ""), get("severity", "low"), get("title", ""), get("event_id", ""),
        parse_iso(get("event_time")), get("event_name", ""), get("account", ""), get("region", ""),
        get("bucket"), actor, get("source_ip", ""), get("user_agent", ""), get("agent_kind", ""),
        tuple(Change(*c) for c in get("change_list", [])), bool(get("public", True)),
        get("object_key") or "", get("access_point") or "",
    )


def finding_dict(raw: str) -> dict[str, Any]:
    """Stored text as the `scan --format jsonl` dict (without the codec's own keys)."""
    data: dict[str, Any] = json.loads(raw)
    for key in _PRIVATE_KEYS:
        data.pop(key, None)
    return data
