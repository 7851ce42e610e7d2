"""Before values for a finding's changes, read from the previous matching write in the who-changed index.

A detection sees one record, so it writes `?` where the old value belongs. The alert engine knows
more: the index holds every earlier configuration write, so the last PutBucketPublicAccessBlock says
what each flag was, the last policy whether it was public, and so on. `with_before` fills those in
when a finding is stored; `unknown` is left only when the index has nothing to go on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sqlite_utils

from bot.core.bpa import FLAGS
from bot.core.policy import evaluate_policy
from bot.core.record import Record, get_ci, text
from bot.store.index import indexed_writes
from detections.allow_tag_added import tag_value
from detections.base import (
    BPA_DETECTIONS,
    UNKNOWN,
    Change,
    Finding,
    acl_said,
    acl_verdict,
    bpa_config,
    bpa_flags,
    find_key,
    on_off,
)

# Enough earlier writes to find the one that matters when access points share the account's rows.
_CANDIDATES = 50

# (change, previous write) → the before value, or None when that write does not say.
Describe = Callable[[Change, Record], str | None]


def _flag(change: Change) -> str:
    return change.what.removeprefix("account ")


def _bpa_before(change: Change, prev: Record) -> str | None:
    if prev.event_name.startswith("Delete"):
        return "no configuration (off)"
    config = bpa_config(prev)
    flag = _flag(change)
    if config is None or flag not in FLAGS:
        return None
    return "on" if bpa_flags(config)[flag] else "off"


def _policy_before(change: Change, prev: Record) -> str | None:
    if prev.event_name == "DeleteBucketPolicy":
        return "no policy"
    judged = evaluate_policy(prev.param("bucketPolicy"), owner_account=prev.account or None)
    if not judged.readable:
        return None
    if change.what == "cross-account principal":
        return "already granted" if change.after in judged.cross_account_principals else "not granted"
    return "public" if judged.public else "not public"


def _acl_before(change: Change, prev: Record) -> str | None:
    if prev.event_name == "PutBucketAcl" and not acl_said(prev):
        return None
    grantee = change.what.removeprefix("ACL grant to ")
    held = [g["permission"] for g in acl_verdict(prev).public_grants if g.get("grantee") == grantee]
    return ", ".join(held) if held else "none"


def _ownership_before(change: Change, prev: Record) -> str | None:
    if prev.event_name == "DeleteBucketOwnershipControls":
        return "no ownership controls"
    return text(find_key(prev.params, "ObjectOwnership")) or None


def _website_before(change: Change, prev: Record) -> str | None:
    return "disabled" if prev.event_name == "DeleteBucketWebsite" else "enabled"


def _access_point(record: Record) -> str:
    return text(find_key(record.params, "name"))


def _access_point_before(change: Change, prev: Record) -> str | None:
    if prev.event_name.startswith("Delete"):
        return "no policy"
    policy = find_key(prev.params, "Policy") or find_key(prev.params, "policy")
    if policy is None:
        return "no policy"
    judged = evaluate_policy(policy, owner_account=prev.account or None, kind="access_point_policy")
    return ("public" if judged.public else "not public") if judged.readable else None


def _tag_before(change: Change, prev: Record) -> str | None:
    """A PutBucketTagging replaces the whole tag set: the tag's value in the last one, or not set."""
    if prev.event_name == "DeleteBucketTagging":
        return "no tags"
    if get_ci(prev.params, "Tagging") is None:
        return None  # a record that does not say which tags it set
    return tag_value(prev) or "not set"


_BUCKET_BPA = ({"PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock"}, _bpa_before)
_ACCOUNT_BPA = ({"PutAccountPublicAccessBlock", "DeleteAccountPublicAccessBlock"}, _bpa_before)
_POLICY = ({"PutBucketPolicy", "DeleteBucketPolicy"}, _policy_before)
RULES: dict[str, tuple[set[str], Describe]] = {
    "bucket_bpa_weakened": _BUCKET_BPA,
    "bucket_bpa_deleted": _BUCKET_BPA,
    "account_bpa_weakened": _ACCOUNT_BPA,
    "account_bpa_deleted": _ACCOUNT_BPA,
    "bucket_policy_public": _POLICY,
    "bucket_policy_cross_account": _POLICY,
    "bucket_acl_public": ({"PutBucketAcl", "CreateBucket"}, _acl_before),
    "ownership_acls_enabled": ({"PutBucketOwnershipControls", "DeleteBucketOwnershipControls"}, _ownership_before),
    "website_enabled": ({"PutBucketWebsite", "DeleteBucketWebsite"}, _website_before),
    "allow_tag_added": ({"PutBucketTagging", "DeleteBucketTagging"}, _tag_before),
    "access_point_policy_public": (
        {"PutAccessPointPolicy", "DeleteAccessPointPolicy", "CreateAccessPoint", "DeleteAccessPoint"},
        _access_point_before,
    ),
}


def previous_write(db: sqlite_utils.Database, finding: Finding, names: set[str],
                   match: Callable[[Record], bool] | None = None) -> Record | None:
    """The newest indexed write named in `names` on the finding's bucket (or account) before it."""
    if finding.event_time is None:
        return None
    for raw in indexed_writes(db, finding.account, finding.bucket or "", names, before=finding.event_time,
                              skip_id=finding.event_id, limit=_CANDIDATES):  # fmt: skip
        try:
            record = Record(raw)
        except Exception:  # noqa: S112 - a damaged index row is skipped, not fatal
            continue
        if match is None or match(record):
            return record
    return None


def with_before(db: sqlite_utils.Database, finding: Finding) -> Finding:
    """The finding with each `?` before value read from the index (`unknown` when it has nothing)."""
    bpa = finding.detection in BPA_DETECTIONS
    if not bpa and not any(c.before == "?" for c in finding.changes):
        return finding
    rule = RULES.get(finding.detection)
    prev = None
    if rule is not None:
        # Every access point of an account shares the account's rows: only this one's writes count.
        points = {c.what.removeprefix("access point ").removesuffix(" policy") for c in finding.changes}

        def same_access_point(record: Record) -> bool:
            return _access_point(record) in points

        match = same_access_point if finding.detection == "access_point_policy_public" else None
        prev = previous_write(db, finding, rule[0], match)
    changes = []
    for change in finding.changes:
        before = change.before
        if before == "?" and finding.detection == "bucket_created_public":
            before = "none (new bucket)"
        elif before == "?":
            before = (rule[1](change, prev) if rule is not None and prev is not None else None) or UNKNOWN
        after = on_off(change.after) if bpa else change.after
        changes.append(Change(change.what, before, after))
    return dataclasses.replace(finding, changes=tuple(changes))
