"""Who changed a bucket: the local index first, then CloudTrail LookupEvents by ResourceName.

The index reaches beyond CloudTrail's 90 days, so it answers when it has anything for the bucket and
period. When it has nothing (a bucket the poller never saw change, a fresh install), ask LookupEvents
with `AttributeKey=ResourceName` in the alert's account-region (or every configured one), store what
it returns in the index, and answer from the index again. The answer says which source it came from.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from bot.aws import AwsClients, error_message
from bot.events import Record
from bot.index import Change, ingest, is_config_write, who_changed
from bot.sources.lookup import DEFAULT_RATE, HISTORY, PAGE_SIZE, LookupTarget, paced_client
from bot.store import Store, utcnow

log = logging.getLogger(__name__)

# A bucket name can appear in many events (every object read); a timeline needs the recent ones.
MAX_PAGES = 10
MAX_TARGETS = 32


@dataclass
class Timeline:
    """The answer: changes newest first, which source answered, and what could not be read."""

    bucket: str
    days: int
    changes: list[Change]
    source: str  # index | lookup | none
    errors: dict[str, str] = field(default_factory=dict)  # lookup:<account>:<region> → error


def lookup_resource(
    client: Any, bucket: str, start: datetime, end: datetime, *, max_pages: int = MAX_PAGES
) -> list[Record]:
    """S3 configuration writes naming `bucket`, from one account-region's LookupEvents (newest first)."""
    records: list[Record] = []
    token: str | None = None
    for _ in range(max_pages):
        kwargs: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": bucket}],
            "StartTime": start,
            "EndTime": end,
            "MaxResults": PAGE_SIZE,
        }
        if token:
            kwargs["NextToken"] = token
        response = client.lookup_events(**kwargs)
        for entry in response.get("Events") or ():
            try:
                record = Record(orjson.loads(entry.get("CloudTrailEvent") or b""))
            except orjson.JSONDecodeError:
                continue
            # ResourceName also matches events about other resources that mention the name.
            if record.bucket == bucket and is_config_write(record):
                records.append(record)
        token = response.get("NextToken")
        if not token:
            break
    return records


def timeline(
    store: Store,
    aws: AwsClients | None,
    bucket: str,
    *,
    days: int = 90,
    targets: list[LookupTarget] | None = None,
    now: datetime | None = None,
    limit: int = 50,
) -> Timeline:
    """The bucket's configuration changes over `days`, newest first, from the index or LookupEvents."""
    now = now or utcnow()
    changes = who_changed(store, bucket, days=days, now=now, limit=limit)
    if changes:
        return Timeline(bucket, days, changes, "index")
    if aws is None:
        return Timeline(bucket, days, [], "none")
    if targets is None:
        targets = [LookupTarget(a.account_id, r) for a in aws.accounts for r in aws.settings.regions]
    targets = targets[:MAX_TARGETS]
    if not targets:
        return Timeline(bucket, days, [], "none")
    start = now - min(timedelta(days=max(days, 1)), HISTORY)
    errors: dict[str, str] = {}
    found: list[Record] = []

    def one(target: LookupTarget) -> tuple[LookupTarget, list[Record] | None, str]:
        try:
            client = paced_client(aws, target, DEFAULT_RATE)
            return target, lookup_resource(client, bucket, start, now), ""
        except Exception as exc:  # AccessDenied in one account must not hide the others' answer
            return target, None, error_message(exc)

    with ThreadPoolExecutor(max_workers=min(8, len(targets)), thread_name_prefix="who-changed") as pool:
        for target, records, error in pool.map(one, targets):
            if records is None:
                errors[target.source] = error
            else:
                found += records
    if found:
        ingest(store, found, source="lookup")
    changes = who_changed(store, bucket, days=days, now=now, limit=limit)
    return Timeline(bucket, days, changes, "lookup" if changes else "none", errors)
