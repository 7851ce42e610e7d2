"""Cross-account bucket policy: not public, but grants fixed other accounts access (lower severity)."""

from bot.core.record import Record
from detections.base import Change, Detection
from detections.bucket_policy_public import verdict


def rule(record: Record) -> bool:
    v = verdict(record)
    return not v.public and bool(v.cross_account_principals)


def title(record: Record) -> str:
    principals = ", ".join(verdict(record).cross_account_principals)
    return f"Bucket {record.bucket or '?'} policy grants other accounts access: {principals}"


def changes(record: Record) -> list[Change]:
    return [Change("cross-account principal", "?", p) for p in verdict(record).cross_account_principals]


DETECTION = Detection(
    id="bucket_policy_cross_account",
    name="Cross-account bucket policy",
    severity="medium",
    runbook=(
        "Not public: the policy names specific other AWS accounts. Check each account is one of yours or a "
        "known partner; an unknown account is a classic exfiltration backdoor."
    ),
    event_names=frozenset({"PutBucketPolicy"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
    public=False,
)
