"""Bucket Block Public Access deleted: DeleteBucketPublicAccessBlock leaves all four flags off."""

from bot.core.bpa import FLAGS
from bot.core.record import Record
from detections.base import Change, Detection


def rule(record: Record) -> bool:
    return True  # The event name alone says it: the bucket-level guard is gone.


def title(record: Record) -> str:
    return f"Block Public Access removed from bucket {record.bucket or '?'}"


def changes(record: Record) -> list[Change]:
    return [Change(flag, "?", "deleted (false)") for flag in FLAGS]


DETECTION = Detection(
    id="bucket_bpa_deleted",
    name="Bucket Block Public Access deleted",
    severity="high",
    runbook=(
        "The bucket's Block Public Access configuration was deleted, so only the account-level setting "
        "still guards it. Re-enable it unless the bucket is meant to be public, then check the live verdict."
    ),
    event_names=frozenset({"DeleteBucketPublicAccessBlock"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
)
