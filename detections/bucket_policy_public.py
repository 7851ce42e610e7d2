"""Public bucket policy: PutBucketPolicy whose policy is public by AWS's own definition."""

from bot.core.policy import Verdict, evaluate_policy
from bot.core.record import Record
from detections.base import Change, Detection


def verdict(record: Record) -> Verdict:
    return evaluate_policy(record.param("bucketPolicy"), owner_account=record.account or None)


def rule(record: Record) -> bool:
    return verdict(record).public


def title(record: Record) -> str:
    return f"Bucket {record.bucket or '?'} policy made public"


def changes(record: Record) -> list[Change]:
    return [Change("bucket policy", "?", reason) for reason in verdict(record).reasons]


DETECTION = Detection(
    id="bucket_policy_public",
    name="Public bucket policy",
    severity="critical",
    runbook=(
        "The new bucket policy allows anonymous or any-account access. Unless this bucket is a reviewed "
        "public site, re-enable Block Public Access (BlockPublicPolicy and RestrictPublicBuckets stop it), "
        "then fix the policy statement named in the card."
    ),
    event_names=frozenset({"PutBucketPolicy"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
)
