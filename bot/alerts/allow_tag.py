"""Exceptions from the allow list or, failing that, from the bucket's own tag `bucketwatch:public=allowed`.

A bucket's owner can say "public on purpose" where the bucket is defined (Terraform, CloudFormation)
instead of in Slack. The tag never silences on its own: what it accepts is posted as a quiet line
(bot.slack.notifier) and listed in the digest, and writing the tag is a finding of its own
(detections/allow_tag_added.py) that the tag cannot accept. `AllowedPublic` is AlertService's
exceptions_fn: the allow list first (no AWS call), then the tag, read with the account's read-only
role and kept for a few minutes per bucket so a bulk upload of public objects costs one GetBucketTagging.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from bot.alerts.lifecycle import Alert, AlertStatus
from bot.aws.tags import ALLOW_TAG_KEY, ALLOW_TAG_VALUE, tag_allows

TAG_TTL = 300.0
TAG_LABEL = f"bucket tag {ALLOW_TAG_KEY}={ALLOW_TAG_VALUE}"


@dataclass(frozen=True)
class TagAllowance:
    """Stands in for an exception row when the bucket's tag accepts it (no id, owner or expiry)."""

    bucket: str
    account: str
    id: int | None = None
    reason: str = TAG_LABEL
    owner: str = ""
    expires_at: datetime | None = None
    marker: str = TAG_LABEL  # AlertService closes suppressed alerts "by" this


def accepted_by_tag(alert: Alert) -> bool:
    """Whether the alert was closed because its bucket carries the tag (shown as a quiet line, not a card)."""
    return alert.status == AlertStatus.ACCEPTED and alert.closed_by == TAG_LABEL


def buckets_accepted_by_tag(db: sqlite_utils.Database) -> int:
    """Buckets with changes their own tag accepted (shown as quiet lines; `status` counts them)."""
    sql = "SELECT count(DISTINCT resource_key) FROM alerts WHERE status = 'accepted' AND closed_by = ?"
    return int(db.execute(sql, [TAG_LABEL]).fetchone()[0])


class AllowedPublic:
    """`allowed(bucket, account, access_point)` → the covering exception row, a TagAllowance, or None."""

    def __init__(self, active_for: Callable[[str | None, str | None, str | None], Any], s3_for: Callable[[str], Any], *,
                 ttl: float = TAG_TTL, clock: Callable[[], float] = time.monotonic):
        self.active_for, self.s3_for = active_for, s3_for
        self.ttl, self.clock = ttl, clock
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def __call__(self, bucket: str | None, account: str | None, access_point: str | None = None) -> Any:
        row = self.active_for(bucket, account, access_point)
        if row is not None or not bucket or not account or access_point:
            return row  # account and access-point alerts have no bucket tag that speaks for them
        return TagAllowance(bucket, account) if self.tagged(bucket, account) else None

    def forget(self, bucket: str, account: str) -> None:
        """The bucket's tags were just written: read them again next time, not up to `ttl` later."""
        with self._lock:
            self._cache.pop((account, bucket), None)

    def tagged(self, bucket: str, account: str) -> bool:
        """Whether the bucket carries the tag; errors other than AccessDenied / NoSuchBucket propagate."""
        now, key = self.clock(), (account, bucket)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        allowed = tag_allows(self.s3_for(account), bucket)
        with self._lock:
            self._cache[key] = (now + self.ttl, allowed)
        return allowed
