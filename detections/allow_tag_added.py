"""The allow tag written: PutBucketTagging sets `bucketwatch:public=allowed` on a bucket.

The tag tells bucketwatch "public on purpose" (bot.alerts.allow_tag), so whoever can tag a bucket could
otherwise silence every later alert on it. The bot never writes this tag itself (a responder's exception
lives in its own audited allow list), so every write of it is reported, and this finding is never
silenced by the tag it reports (`silenced_by_tag=False`).

CloudTrail spells the tag set several ways: `Tagging.TagSet.Tag` holding a list or a single tag,
`TagSet` holding the list itself, `Key`/`Value` or `key`/`value`, old-era values wrapped in lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot.core.record import Record, get_ci, text
from detections.base import Change, Detection

# The tag bot.aws.tags reads (it imports them from here: detections sit below bot.aws).
TAG_KEY = "bucketwatch:public"
TAG_VALUE = "allowed"
# The writes of a bucket's tag set: the sources fetch both even though only a Put can add the tag, because
# either can remove it (bot.alerts.tag_removal).
TAG_WRITES = frozenset({"PutBucketTagging", "DeleteBucketTagging"})
_DEPTH = 6  # TagSet → Tag → [tags]: a little slack for wrappers, never a walk through hostile nesting


def _tags(value: Any, depth: int = _DEPTH) -> Iterator[dict[str, Any]]:
    """Every tag object ({Key, Value} in any case) under a TagSet, whatever the nesting."""
    if depth < 0:
        return
    if isinstance(value, list):
        for item in value:
            yield from _tags(item, depth - 1)
    elif isinstance(value, dict):
        if get_ci(value, "Key") is not None:
            yield value
        else:
            yield from _tags(get_ci(value, "Tag"), depth - 1)


def tag_value(record: Record) -> str | None:
    """The value the request gave `bucketwatch:public` (trimmed, lower case); None when it set no such tag."""
    tagging = get_ci(record.params, "Tagging")
    while isinstance(tagging, list) and len(tagging) == 1:  # old-era records wrap objects in lists
        tagging = tagging[0]
    tag_set = get_ci(tagging, "TagSet") if isinstance(tagging, dict) else get_ci(record.params, "TagSet")
    for tag in _tags(tag_set):
        if text(get_ci(tag, "Key")) == TAG_KEY:
            return text(get_ci(tag, "Value")).lower()
    return None


def rule(record: Record) -> bool:
    return tag_value(record) == TAG_VALUE


def removes_allow_tag(record: Record) -> bool:
    """The write leaves the bucket without the allow tag: DeleteBucketTagging, or a PutBucketTagging whose
    new tag set (the call replaces the whole set) lacks it or gives it another value."""
    if record.event_name == "DeleteBucketTagging":
        return True
    return record.event_name == "PutBucketTagging" and tag_value(record) != TAG_VALUE


def title(record: Record) -> str:
    return f"Bucket {record.bucket or '?'} tagged {TAG_KEY}={TAG_VALUE}"


def changes(record: Record) -> list[Change]:
    return [Change(f"tag {TAG_KEY}", "?", TAG_VALUE)]


DETECTION = Detection(
    id="allow_tag_added",
    name="Allow tag written on a bucket",
    severity="low",
    runbook=(
        f"The bucket now carries {TAG_KEY}={TAG_VALUE}, which tells bucketwatch it is public on purpose: later "
        "changes to it are posted as one quiet line, not a card. bucketwatch never writes this tag itself "
        "(a responder's exception lives in its allow list), so someone else did. Confirm with its owner that "
        "the bucket is meant to be public; if not, remove the tag, and use Mark as expected for real exceptions."
    ),
    event_names=frozenset({"PutBucketTagging"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
    public=False,
    silenced_by_tag=False,
)
