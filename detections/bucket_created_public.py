"""Bucket created public: CreateBucket with a public canned ACL or a public grant header."""

from bot.core.record import Record
from detections.base import Change, Detection, acl_changes, acl_severity, acl_verdict


def rule(record: Record) -> bool:
    return acl_verdict(record).public


def title(record: Record) -> str:
    return f"Bucket {record.bucket or '?'} created with a public ACL"


def changes(record: Record) -> list[Change]:
    return [Change("bucket", "absent", "created"), *acl_changes(acl_verdict(record))]


DETECTION = Detection(
    id="bucket_created_public",
    name="Bucket created public",
    severity="high",
    runbook=(
        "A new bucket was created with a public ACL. Confirm it is meant to serve the public; otherwise "
        "re-enable Block Public Access and switch Object Ownership to BucketOwnerEnforced."
    ),
    event_names=frozenset({"CreateBucket"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
    severity_for=lambda record: acl_severity(acl_verdict(record), "high"),
)
