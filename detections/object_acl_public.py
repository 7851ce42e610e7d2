"""Public object ACL: PutObjectAcl, PutObject, CopyObject or CreateMultipartUpload setting a public ACL.

S3 data events. A multipart upload takes its ACL when it starts (CreateMultipartUpload carries the
canned ACL or grant headers); the object appears with it on CompleteMultipartUpload.
"""

from bot.core.record import Record
from detections.base import Change, Detection, acl_changes, acl_severity, acl_verdict


def rule(record: Record) -> bool:
    return acl_verdict(record).public


def title(record: Record) -> str:
    key = record.object_key or "?"
    return f"Object {key} in bucket {record.bucket or '?'} made public by {record.event_name}"


def changes(record: Record) -> list[Change]:
    key = record.object_key or "?"
    return [Change(f"{c.what} on {key}", c.before, c.after) for c in acl_changes(acl_verdict(record))]


DETECTION = Detection(
    id="object_acl_public",
    name="Public object ACL",
    severity="medium",
    runbook=(
        "One object was given a public ACL. If the bucket's Block Public Access (IgnorePublicAcls) is on it "
        "is not reachable; otherwise re-enable Block Public Access and reset the object's ACL to private."
    ),
    event_names=frozenset({"PutObjectAcl", "PutObject", "CopyObject", "CreateMultipartUpload"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
    severity_for=lambda record: acl_severity(acl_verdict(record), "medium"),
)
