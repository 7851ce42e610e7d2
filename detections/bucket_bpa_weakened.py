"""Bucket Block Public Access weakened: a PutBucketPublicAccessBlock that sets any flag false."""

from bot.core.record import Record
from detections.base import Change, Detection, bpa_config, bpa_flags


def _off(record: Record) -> list[str]:
    config = bpa_config(record)
    if config is None:
        return []  # No configuration in the record: the new settings are unknown, nothing shows a weakening.
    return [flag for flag, on in bpa_flags(config).items() if not on]


def rule(record: Record) -> bool:
    return bool(_off(record))


def title(record: Record) -> str:
    off = _off(record)
    what = "all four Block Public Access flags" if len(off) == 4 else ", ".join(off)
    return f"Block Public Access weakened on bucket {record.bucket or '?'}: {what} turned off"


def changes(record: Record) -> list[Change]:
    return [Change(flag, "?", "false") for flag in _off(record)]


DETECTION = Detection(
    id="bucket_bpa_weakened",
    name="Bucket Block Public Access weakened",
    severity="high",
    runbook=(
        "Ask the actor why the bucket's guard was lowered. Unless the bucket must serve the public, "
        "press Re-enable Block Public Access; check the live verdict for a policy or ACL now in effect."
    ),
    event_names=frozenset({"PutBucketPublicAccessBlock"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
)
