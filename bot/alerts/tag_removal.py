"""The allow tag taken away: what it accepted is no longer anyone's say-so.

A bucket's `bucketwatch:public=allowed` tag accepts its changes (bot.alerts.allow_tag). Removing it
(DeleteBucketTagging, or a PutBucketTagging whose new tag set lacks it: the call replaces the whole set)
ends that acceptance, as an expiring exception does:

- the bucket's cached tag is dropped at once, so the next change is judged without it (not up to
  TAG_TTL later);
- an open alert about the tag being written (allow_tag_added) is resolved by it (bot.alerts.restore);
- the latest alert the tag accepted re-opens if the bucket is still public, or if that cannot be
  told (checked live), saying who removed the tag. Its quiet line becomes the card, and the reason is
  broadcast (bot.slack.notifier).
"""

from __future__ import annotations

from bot.alerts.allow_tag import TAG_LABEL
from bot.core.record import Record
from detections.allow_tag_added import TAG_KEY, TAG_VALUE, TAG_WRITES, removes_allow_tag


def writes_tags(record: Record) -> bool:
    """A successful write of a bucket's tag set (which may add, keep or remove the allow tag)."""
    return record.event_name in TAG_WRITES and record.succeeded and bool(record.bucket)


def reopen_reason(record: Record, public_now: bool | None) -> str:
    who = record.actor.display or "someone"
    now = "the bucket is still public" if public_now else "whether the bucket is still public could not be checked"
    return f"the bucket tag {TAG_KEY}={TAG_VALUE} that accepted it was removed by {who}; {now}"


__all__ = ["TAG_LABEL", "TAG_WRITES", "removes_allow_tag", "reopen_reason", "writes_tags"]
