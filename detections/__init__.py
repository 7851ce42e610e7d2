"""The detection registry: every detection, in one visible tuple, and `evaluate` over it.

Each module holds one detection; its true and false cases sit beside it in `<id>.cases.json`.
tests/test_detection_registry.py walks this tuple.
"""

from __future__ import annotations

from bot.core.record import Record
from detections import (
    access_point_policy_public,
    account_bpa_deleted,
    account_bpa_weakened,
    allow_tag_added,
    bucket_acl_public,
    bucket_bpa_deleted,
    bucket_bpa_weakened,
    bucket_created_public,
    bucket_policy_cross_account,
    bucket_policy_public,
    object_acl_public,
    ownership_acls_enabled,
    website_enabled,
)
from detections.base import Change, Detection, Finding, make_finding

REGISTRY: tuple[Detection, ...] = (
    bucket_bpa_weakened.DETECTION,
    bucket_bpa_deleted.DETECTION,
    account_bpa_weakened.DETECTION,
    account_bpa_deleted.DETECTION,
    bucket_acl_public.DETECTION,
    object_acl_public.DETECTION,
    bucket_policy_public.DETECTION,
    bucket_policy_cross_account.DETECTION,
    bucket_created_public.DETECTION,
    access_point_policy_public.DETECTION,
    ownership_acls_enabled.DETECTION,
    website_enabled.DETECTION,
    allow_tag_added.DETECTION,
)

BY_ID = {d.id: d for d in REGISTRY}
# Every event name any detection looks at: the scanner rules out all other records cheaply.
WATCHED_EVENT_NAMES: frozenset[str] = frozenset().union(*(d.event_names for d in REGISTRY))


def evaluate(record: Record) -> list[Finding]:
    """All findings for one record, computed once per record (they travel with it: `Record.memo`).

    Never raises: a detection that trips on a hostile record is skipped."""
    return list(record.memo("findings", _evaluate))


def _evaluate(record: Record) -> tuple[Finding, ...]:
    if record.event_name not in WATCHED_EVENT_NAMES or not record.succeeded or not record.is_s3:
        return ()
    findings = []
    for detection in REGISTRY:
        if record.event_name in detection.event_names:
            try:
                if detection.matches(record):
                    findings.append(make_finding(detection, record))
            except Exception:  # noqa: S112 - a rule bug must not stop a poll; the property tests hunt these
                continue
    return tuple(findings)


__all__ = ["BY_ID", "REGISTRY", "WATCHED_EVENT_NAMES", "Change", "Detection", "Finding", "evaluate"]
