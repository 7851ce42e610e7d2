"""Precursor: static website hosting enabled on a bucket (PutBucketWebsite)."""

from bot.core.record import Record
from detections.base import Change, Detection


def rule(record: Record) -> bool:
    return True


def title(record: Record) -> str:
    return f"Static website hosting enabled on bucket {record.bucket or '?'}"


def changes(record: Record) -> list[Change]:
    return [Change("website hosting", "?", "enabled")]


DETECTION = Detection(
    id="website_enabled",
    name="Static website hosting enabled",
    severity="low",
    runbook=(
        "Not public by itself, but a website endpoint only serves content that is public: expect a public "
        "policy next. Confirm the bucket is meant to be a site."
    ),
    event_names=frozenset({"PutBucketWebsite"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
    public=False,
)
