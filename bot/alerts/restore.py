"""Auto-resolve rules: which later events restore the block that detections reported, and what they clear.

`RESTORE_EVENTS` is the one list of event names that can close an exposure (the LookupEvents poller
asks for each of them too); `restoration(record)` is the rule (which detections a successful fix
covers, and the sentence the channel sees); `clear_covered` marks an alert's findings fixed by it;
`restored_later` finds a fix already in the who-changed index for a late-delivered finding.
Lifecycle changes and Slack messages stay in bot.alerts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bot.alerts.codec import finding_json
from bot.core.bpa import FLAGS
from bot.core.clock import iso
from bot.core.policy import evaluate_policy
from bot.core.record import Record, get_ci, text
from bot.store.index import indexed_writes
from detections import REGISTRY
from detections.allow_tag_added import TAG_WRITES, removes_allow_tag
from detections.base import Finding, acl_said, acl_verdict, bpa_config, bpa_flags, find_key
from detections.restores import ALL_RESTORE_EVENTS, DATA_RESTORE_EVENTS


@dataclass(frozen=True)
class Restoration:
    """A later event that closes what some detections opened."""

    covers: frozenset[str]
    reason: str
    # Access points share the account's alert: a fix to one clears only the findings that name it.
    access_point: str | None = None
    # An object-level fix (its ACL made private, or the object deleted) clears only that key's findings.
    object_key: str | None = None
    # A Block Public Access put: the flags now on; a bpa finding clears when every flag it saw off is on.
    flags_on: frozenset[str] | None = None

    def clears(self, detection: str, finding_text: str | None = None) -> bool:
        """Whether this restore closes a finding of `detection` (stored as `finding_text`)."""
        if detection not in self.covers:
            return False
        if self.access_point is not None and detection == "access_point_policy_public":
            return access_point_of(finding_text) == self.access_point
        if self.object_key is not None and detection == "object_acl_public":
            return _stored(finding_text).get("object_key") == self.object_key
        if self.flags_on is not None and detection in _BPA:
            return flags_off_in(finding_text) <= self.flags_on
        return True


_HOW = {"Console": " in the console", "CLI": " with the AWS CLI", "Terraform": " with Terraform",
        "CloudFormation": " with CloudFormation", "SDK": " through an AWS SDK"}
# Bucket-level BPA with all four flags on neutralises every bucket finding except cross-account grants and
# the allow tag: the tag is still on the bucket, ready to make the next weakening a quiet line, so only
# removing it (or deleting the bucket) closes that finding.
_BUCKET_WIDE = frozenset(d.id for d in REGISTRY if d.id not in ("bucket_policy_cross_account", "allow_tag_added")
                         and not d.id.startswith("account_"))
# A deleted bucket exposes nothing: every bucket finding on it is closed, cross-account grants too.
_WHOLE_BUCKET = frozenset(d.id for d in REGISTRY if not d.id.startswith("account_"))
_ACL = frozenset({"bucket_acl_public", "bucket_created_public"})
_ACCESS_POINT = frozenset({"access_point_policy_public"})
_BUCKET_BPA = frozenset({"bucket_bpa_weakened", "bucket_bpa_deleted"})
_ACCOUNT_BPA = frozenset({"account_bpa_weakened", "account_bpa_deleted"})
_BPA = _BUCKET_BPA | _ACCOUNT_BPA


def _stored(finding_text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(finding_text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def flags_off_in(finding_text: str | None) -> frozenset[str]:
    """The Block Public Access flags a stored bpa finding saw turned off (all four when it does not say)."""
    named = {what.removeprefix("account ") for what, *_ in _stored(finding_text).get("change_list") or []
             if isinstance(what, str)}
    return frozenset(named & set(FLAGS)) or frozenset(FLAGS)


def access_point_of(finding_text: str | None) -> str | None:
    """The access point a stored access_point_policy_public finding names (its change says which)."""
    for what, *_ in _stored(finding_text).get("change_list") or []:
        if isinstance(what, str) and what.startswith("access point ") and what.endswith(" policy"):
            return what[len("access point "):-len(" policy")]
    return None


def _bpa(record: Record, by: str) -> Restoration | None:
    config = bpa_config(record)
    if config is None:
        return None
    on = frozenset(flag for flag, value in bpa_flags(config).items() if value)
    if not on:
        return None
    if record.event_name == "PutAccountPublicAccessBlock":
        what = "Account-level Block Public Access"
        covers = _ACCOUNT_BPA
    else:
        what = "Block Public Access"
        # All four flags on neutralise every bucket finding except cross-account grants; fewer only
        # undo the weakening of the flags that are back on.
        covers = _BUCKET_WIDE if len(on) == len(FLAGS) else _BUCKET_BPA
    if len(on) == len(FLAGS):
        return Restoration(covers, f"{what} re-enabled {by}", flags_on=on)
    return Restoration(covers, f"{what} {', '.join(f for f in FLAGS if f in on)} back on {by}", flags_on=on)


def _object(record: Record, by: str) -> Restoration | None:
    key = record.object_key
    # With a versionId the request touched one version, maybe not the public one; a delete marker
    # leaves every version (and its ACL) readable by version id.
    if not key or get_ci(record.params, "versionId") is not None:
        return None
    if record.event_name == "DeleteObject":
        response = record.get("responseElements")
        response = response if isinstance(response, dict) else {}
        if text(get_ci(response, "x-amz-delete-marker")).lower() == "true" or get_ci(response, "x-amz-version-id"):
            return None  # a versioned bucket: the public version is still there
        return Restoration(frozenset({"object_acl_public"}), f"Object {key} deleted {by}", object_key=key)
    if not acl_said(record) or acl_verdict(record).public:
        return None
    return Restoration(frozenset({"object_acl_public"}), f"Object {key} ACL made private {by}", object_key=key)


def _access_point_policy(record: Record, point: str, by: str) -> Restoration | None:
    policy = find_key(record.params, "Policy") or find_key(record.params, "policy")
    if policy is None:
        return None
    judged = evaluate_policy(policy, owner_account=record.account or None, kind="access_point_policy")
    if judged.public or not judged.readable:
        return None
    return Restoration(_ACCESS_POINT, f"Access point {point} policy replaced with a non-public one {by}",
                       access_point=point)


def restoration(record: Record) -> Restoration | None:
    """Whether this successful event restores the block some detections reported, and in whose words."""
    if not record.is_s3 or not record.succeeded or record.event_name not in ALL_RESTORE_EVENTS:
        return None
    name, by = record.event_name, f"by {record.actor.display}{_HOW.get(record.agent_kind, '')}"
    if name in ("PutBucketPublicAccessBlock", "PutAccountPublicAccessBlock"):
        return _bpa(record, by)
    if name in DATA_RESTORE_EVENTS:
        return _object(record, by)
    if name == "DeleteBucket":
        return Restoration(_WHOLE_BUCKET, f"Bucket deleted {by}")
    if name in TAG_WRITES:
        if not removes_allow_tag(record):
            return None
        return Restoration(frozenset({"allow_tag_added"}), f"Allow tag removed {by}")
    if name in ("DeleteAccessPoint", "DeleteAccessPointPolicy", "PutAccessPointPolicy"):
        point = text(find_key(record.params, "name"))
        if not point:
            return None  # which access point is unknown: clearing all of them would be a guess
        if name == "PutAccessPointPolicy":
            return _access_point_policy(record, point, by)
        what = "deleted" if name == "DeleteAccessPoint" else "policy deleted"
        return Restoration(_ACCESS_POINT, f"Access point {point} {what} {by}", access_point=point)
    if name == "PutBucketAcl":
        # A PutBucketAcl whose record carries no ACL says nothing about what it set.
        if not acl_said(record) or acl_verdict(record).public:
            return None
        return Restoration(_ACL, f"Public ACL grants removed {by}")
    if name == "DeleteBucketPolicy":
        return Restoration(frozenset({"bucket_policy_public", "bucket_policy_cross_account"}),
                           f"Bucket policy deleted {by}")
    if name == "PutBucketPolicy":
        judged = evaluate_policy(record.param("bucketPolicy"), owner_account=record.account or None)
        if judged.public or not judged.readable:
            return None
        covers = {"bucket_policy_public"}
        if not judged.cross_account_principals:
            covers.add("bucket_policy_cross_account")
        return Restoration(frozenset(covers), f"Bucket policy replaced with a non-public one {by}")
    if name == "PutBucketOwnershipControls":
        if text(find_key(record.params, "ObjectOwnership")) != "BucketOwnerEnforced":
            return None
        # ACLs disabled: no bucket or object ACL grants anything any more.
        return Restoration(_ACL | {"ownership_acls_enabled", "object_acl_public"},
                           f"ACLs disabled (BucketOwnerEnforced) {by}")
    return Restoration(frozenset({"website_enabled"}), f"Website hosting removed {by}")


def clear_covered(db: sqlite_utils.Database, alert_id: int, record: Record,
                  restored: Restoration) -> list[str] | None:
    """Mark the alert's findings this fix covers as cleared; the detections still open, or None if none cleared.

    Call inside the transaction that also changes the alert's status.
    """
    used = db.execute("SELECT 1 FROM alert_findings WHERE cleared_by = ? LIMIT 1", [record.event_id])
    if used.fetchone():
        return None
    when = iso(record.event_time)
    sql = ("SELECT rowid, detection, event_time, finding FROM alert_findings"
           " WHERE alert_id = ? AND cleared_by IS NULL")
    pending = list(db.execute(sql, [alert_id]).fetchall())
    # Only findings older than the fix are fixed by it (events arrive late and out of order).
    hit = [r for r in pending if restored.clears(r[1], r[3]) and (not r[2] or not when or r[2] <= when)]
    if not hit:
        return None
    db.conn.executemany("UPDATE alert_findings SET cleared_by = ? WHERE rowid = ?",
                        [(record.event_id, r[0]) for r in hit])
    return sorted({r[1] for r in pending if r not in hit})


def restored_later(db: sqlite_utils.Database, finding: Finding) -> tuple[str, str] | None:
    """A fix already in the who-changed index, newer than this (late-delivered) finding: (who, reason)."""
    if finding.event_time is None:
        return None
    for raw in indexed_writes(db, finding.account, finding.bucket or "", ALL_RESTORE_EVENTS, after=finding.event_time):
        try:
            record = Record(raw)
        except Exception:  # noqa: S112 - a damaged index row is skipped, not fatal
            continue
        restored = restoration(record)
        if restored is not None and restored.clears(finding.detection, finding_json(finding)):
            return record.actor.display, restored.reason
    return None
