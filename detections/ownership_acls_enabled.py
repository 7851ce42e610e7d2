"""Precursor: object ownership moved away from BucketOwnerEnforced, so ACLs apply again."""

from bot.core.record import Record, text
from detections.base import Change, Detection, find_key


def _ownership(record: Record) -> str:
    return text(find_key(record.params, "ObjectOwnership"))


def rule(record: Record) -> bool:
    if record.event_name == "DeleteBucketOwnershipControls":
        return True
    value = _ownership(record)
    return bool(value) and value != "BucketOwnerEnforced"


def title(record: Record) -> str:
    return f"ACLs re-enabled on bucket {record.bucket or '?'} (object ownership no longer enforced)"


def changes(record: Record) -> list[Change]:
    after = "deleted" if record.event_name == "DeleteBucketOwnershipControls" else _ownership(record)
    return [Change("ObjectOwnership", "?", after)]


DETECTION = Detection(
    id="ownership_acls_enabled",
    name="Bucket ACLs re-enabled",
    severity="low",
    runbook=(
        "Not public by itself: with ownership no longer BucketOwnerEnforced, ACLs take effect again, the "
        "usual first step before a public ACL. Confirm the reason with the actor."
    ),
    event_names=frozenset({"PutBucketOwnershipControls", "DeleteBucketOwnershipControls"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
    public=False,
)
