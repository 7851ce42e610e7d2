"""Public bucket ACL: PutBucketAcl granting AllUsers or AuthenticatedUsers (canned, grants, or headers)."""

from bot.core.record import Record
from detections.base import Change, Detection, acl_changes, acl_severity, acl_verdict


def rule(record: Record) -> bool:
    return acl_verdict(record).public


def title(record: Record) -> str:
    grants = acl_verdict(record).public_grants
    perms = ", ".join(sorted({f"{g['grantee']} {g['permission']}" for g in grants}))
    return f"Bucket {record.bucket or '?'} ACL made public ({perms})"


def changes(record: Record) -> list[Change]:
    return acl_changes(acl_verdict(record))


DETECTION = Detection(
    id="bucket_acl_public",
    name="Public bucket ACL",
    severity="high",
    runbook=(
        "The bucket ACL grants access to everyone (AllUsers) or to any AWS account (AuthenticatedUsers). "
        "Re-enable Block Public Access (IgnorePublicAcls neutralises it at once), then set the ACL back to "
        "private. WRITE or WRITE_ACP grants let strangers plant data or take the bucket over."
    ),
    event_names=frozenset({"PutBucketAcl"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
    severity_for=lambda record: acl_severity(acl_verdict(record), "high"),
)
