"""What a detection is, and what it produces: a Finding with the change spelled out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.core.bpa import FLAGS
from bot.core.policy import Verdict, acl_parts, evaluate_acl
from bot.core.record import Actor, Record, first, get_ci, text

SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Change:
    """One thing that changed: `BlockPublicPolicy: true → false`. Unknown `before` is shown as '?'."""

    what: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.what}: {self.before} → {self.after}"


@dataclass(frozen=True)
class Detection:
    """A registered detection: metadata plus `rule`, `title` and `changes` over a Record."""

    id: str
    name: str
    severity: str
    runbook: str
    event_names: frozenset[str]
    rule: Callable[[Record], bool]
    title: Callable[[Record], str]
    changes: Callable[[Record], list[Change]]
    module_file: str
    public: bool = True  # False: precursor or cross-account, shown but not "public now"
    severity_for: Callable[[Record], str] | None = None
    # The access point a finding is about (its alert, exception and fix are scoped to it), if any.
    access_point: Callable[[Record], str] | None = None
    # False: the bucket's own allow tag never hides this finding (it reports the tag itself); an
    # exception a responder set in the allow list still does.
    silenced_by_tag: bool = True

    @property
    def cases_path(self) -> Path:
        return Path(self.module_file).with_suffix(".cases.json")

    def matches(self, record: Record) -> bool:
        """Cheap gates first (event source, name, success), then the rule."""
        if record.event_name not in self.event_names or not record.is_s3 or not record.succeeded:
            return False
        return self.rule(record)


@dataclass(frozen=True)
class Finding:
    """What the bot tells a channel about one record that one detection matched."""

    detection: str
    severity: str
    title: str
    event_id: str
    event_time: datetime | None
    event_name: str
    account: str
    region: str
    bucket: str | None
    actor: Actor
    source_ip: str
    user_agent: str
    agent_kind: str
    changes: tuple[Change, ...] = field(default_factory=tuple)
    public: bool = True
    object_key: str = ""  # object-level events (PutObjectAcl, PutObject, CopyObject) only
    access_point: str = ""  # access-point findings only: the access point's name

    def as_dict(self) -> dict[str, Any]:
        """The `scan --format jsonl` shape (DESIGN.md lists the required keys)."""
        return {
            "event_id": self.event_id,
            "event_time": self.event_time.isoformat().replace("+00:00", "Z") if self.event_time else None,
            "event_name": self.event_name,
            "detection": self.detection,
            "severity": self.severity,
            "account": self.account,
            "region": self.region,
            "bucket": self.bucket,
            "actor": self.actor.display,
            "actor_arn": self.actor.arn,
            "actor_type": self.actor.kind,
            "mfa": self.actor.mfa,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "agent_kind": self.agent_kind,
            "title": self.title,
            "changes": [str(c) for c in self.changes],
            "public": self.public,
            "object_key": self.object_key or None,
            "access_point": self.access_point or None,
        }


UNKNOWN = "unknown"
BPA_DETECTIONS = frozenset({"bucket_bpa_weakened", "bucket_bpa_deleted", "account_bpa_weakened", "account_bpa_deleted"})


def on_off(after: str) -> str:
    """A Block Public Access flag the way the card's "Block Public Access now" lines say it: on / off."""
    return {"false": "off", "true": "on"}.get(after, after.replace("(false)", "(off)"))


def card_changes(finding: Finding) -> tuple[Change, ...]:
    """The changes in the card's words when no index can tell the before value (`scan`, `poll --once`).

    A before value one record cannot know is `unknown` (`none (new bucket)` for a bucket just created);
    Block Public Access flags read `on` / `off`.
    """
    bpa = finding.detection in BPA_DETECTIONS
    new = finding.detection == "bucket_created_public"
    out = []
    for c in finding.changes:
        before = ("none (new bucket)" if new else UNKNOWN) if c.before == "?" else c.before
        out.append(Change(c.what, before, on_off(c.after) if bpa else c.after))
    return tuple(out)


def make_finding(detection: Detection, record: Record) -> Finding:
    severity = detection.severity_for(record) if detection.severity_for else detection.severity
    return Finding(
        detection=detection.id,
        severity=severity,
        title=detection.title(record),
        event_id=record.event_id,
        event_time=record.event_time,
        event_name=record.event_name,
        account=record.account,
        region=record.region,
        bucket=record.bucket,
        actor=record.actor,
        source_ip=record.source_ip,
        user_agent=record.user_agent,
        agent_kind=record.agent_kind,
        changes=tuple(detection.changes(record)),
        public=detection.public,
        object_key=record.object_key,
        access_point=detection.access_point(record) if detection.access_point else "",
    )


def bpa_config(record: Record) -> dict[str, Any] | None:
    """The Block Public Access configuration a Put carried, or None when absent."""
    config = get_ci(record.params, "PublicAccessBlockConfiguration")
    config = first(config)
    return config if isinstance(config, dict) else None


def bpa_flags(config: dict[str, Any]) -> dict[str, bool]:
    """Each of the four flags; S3 treats a flag left out of a Put as false."""
    return {flag: text(get_ci(config, flag)).lower() == "true" for flag in FLAGS}


def find_key(value: Any, name: str, depth: int = 4) -> Any:
    """First value under key `name` (case-insensitive) in nested request parameters."""
    if depth < 0:
        return None
    if isinstance(value, dict):
        found = get_ci(value, name)
        if found is not None:
            return found
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = find_key(child, name, depth - 1)
        if found is not None:
            return found
    return None


def acl_verdict(record: Record) -> Verdict:
    """The ACL a request set (canned header, explicit grants, or grant headers wherever they sit), judged."""
    return evaluate_acl(record.params)


def acl_said(record: Record) -> bool:
    """Whether a record carries the ACL it set (canned header, grants, or grant headers)."""
    return acl_parts(record.params).said


def acl_changes(verdict: Verdict) -> list[Change]:
    return [Change(f"ACL grant to {g['grantee']}", "?", g["permission"]) for g in verdict.public_grants]


def acl_severity(verdict: Verdict, base: str) -> str:
    """Public write or ACP permissions are worse than read."""
    return "critical" if verdict.severe else base
