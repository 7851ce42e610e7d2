"""Who changed a bucket: the local index first, then CloudTrail LookupEvents by ResourceName.

The index reaches beyond CloudTrail's 90 days, so it answers when it has anything for the bucket and
period. When it has nothing (a bucket the poller never saw change, a fresh install), ask LookupEvents
with `AttributeKey=ResourceName` in the alert's account-region (or every configured one), store what
it returns in the index, and answer from the index again. The answer says which source it came from.

LookupEvents allows about 2 requests/s per account-region, and the poller needs them (it paces itself
at 1.8/s on the same client). Anyone may type `who-changed <any name>`, so the fallback has its own
small budget per account-region (FALLBACK_BURST calls, refilled at FALLBACK_RATE/s: at most a tenth of
the quota over time); when it is spent the answer says so instead of taking the poller's calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from bot.aws.clients import AwsClients, error_message
from bot.core.clock import utcnow
from bot.core.record import Record
from bot.sources.lookup import DEFAULT_RATE, HISTORY, PAGE_SIZE, LookupTarget, paced_client
from bot.store.database import Store
from bot.store.index import Change, ingest, is_config_write, who_changed

log = logging.getLogger(__name__)

# A bucket name can appear in many events (every object read); a timeline needs the recent ones.
MAX_PAGES = 10
MAX_TARGETS = 32
# Anyone may type `/bucketwatch who-changed <name>`: bound what names nobody ever changed can cost.
MAX_FALLBACKS = 2  # LookupEvents fan-outs running at once, bot-wide
BUSY_WAIT = 2.0  # seconds a look-up waits for a free slot before answering "busy"
MISS_TTL = timedelta(minutes=5)  # how long "LookupEvents found nothing" is remembered per bucket
BUSY = "busy: other look-ups are running; try again in a minute"
FALLBACK_BURST = 10  # LookupEvents calls who-changed may make at once per account-region
FALLBACK_RATE = 0.18  # calls/s refilled per account-region: a tenth of the poller's 1.8/s pace
SPENT = "the LookupEvents budget for who-changed is used up here (the poller needs the rest); try again in a minute"


@dataclass
class Timeline:
    """The answer: changes newest first, which source answered, and what could not be read."""

    bucket: str
    days: int
    changes: list[Change]
    source: str  # index | lookup | none
    errors: dict[str, str] = field(default_factory=dict)  # lookup:<account>:<region> → error


class LookupGuard:
    """Bounds the LookupEvents fallback: a few at once bot-wide, and recent "nothing found" remembered.

    One per bot (held by the caller, e.g. in Services.extra), shared by every listener thread.
    """

    def __init__(self, *, max_running: int = MAX_FALLBACKS, wait: float = BUSY_WAIT,
                 miss_ttl: timedelta = MISS_TTL, burst: int = FALLBACK_BURST, rate: float = FALLBACK_RATE,
                 clock: Callable[[], float] = time.monotonic, pace_clock: Callable[[], float] = time.monotonic,
                 pace_sleep: Callable[[float], None] = time.sleep):
        self.slots = threading.BoundedSemaphore(max_running)
        self.wait, self.miss_ttl = wait, miss_ttl
        self.burst, self.rate, self.clock = burst, rate, clock
        # The clock and sleep of the clients' LookupEvents pacing (paced_client), e.g. a test's own.
        self.pace_clock, self.pace_sleep = pace_clock, pace_sleep
        self._misses: dict[tuple[Any, ...], tuple[datetime, Timeline]] = {}
        self._budget: dict[str, tuple[float, float]] = {}  # source → (calls left, when counted)
        self._lock = threading.Lock()

    def spend(self, source: str) -> bool:
        """Take one LookupEvents call from `source`'s who-changed budget; False when it is spent."""
        with self._lock:
            now = self.clock()
            left, at = self._budget.get(source, (float(self.burst), now))
            left = min(float(self.burst), left + (now - at) * self.rate)
            if left < 1:
                self._budget[source] = (left, now)
                return False
            self._budget[source] = (left - 1, now)
            return True

    def remembered(self, key: tuple[Any, ...], now: datetime) -> Timeline | None:
        with self._lock:
            for old in [k for k, (at, _) in self._misses.items() if now - at >= self.miss_ttl]:
                del self._misses[old]  # expired entries go, so the map stays as small as recent misses
            hit = self._misses.get(key)
        return hit[1] if hit is not None else None

    def remember(self, key: tuple[Any, ...], now: datetime, answer: Timeline) -> None:
        with self._lock:
            self._misses[key] = (now, answer)


class BudgetSpent(Exception):
    """The who-changed LookupEvents budget of this account-region is used up for now."""


def lookup_resource(
    client: Any, bucket: str, start: datetime, end: datetime, *, max_pages: int = MAX_PAGES,
    spend: Callable[[], bool] | None = None,
) -> list[Record]:
    """S3 configuration writes naming `bucket`, from one account-region's LookupEvents (newest first).

    `spend()` is asked before each call; when it says no, BudgetSpent (or, after a first page, what was read)."""
    records: list[Record] = []
    token: str | None = None
    for page in range(max_pages):
        if spend is not None and not spend():
            if page == 0:
                raise BudgetSpent(SPENT)
            break
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
    guard: LookupGuard | None = None,
) -> Timeline:
    """The bucket's configuration changes over `days`, newest first, from the index or LookupEvents.

    With a `guard`, the LookupEvents fallback waits for a free slot (else answers "busy") and a recent
    "nothing found" for the same bucket, period and targets is answered without asking again.
    """
    now = now or utcnow()
    changes = who_changed(store, bucket, days=days, now=now, limit=limit)
    if changes:
        return Timeline(bucket, days, changes, "index")
    if aws is None:
        return Timeline(bucket, days, [], "none")
    if targets is None:
        targets = [LookupTarget(account, region) for account, region in aws.targets()]
    targets = targets[:MAX_TARGETS]
    if not targets:
        return Timeline(bucket, days, [], "none")
    if guard is None:
        return _lookup(store, aws, bucket, days, targets, now, limit)
    key = (bucket, days, tuple(t.source for t in targets))
    remembered = guard.remembered(key, now)
    if remembered is not None:
        return remembered
    if not guard.slots.acquire(timeout=guard.wait):
        return Timeline(bucket, days, [], "none", {"lookup": BUSY})
    try:
        found = _lookup(store, aws, bucket, days, targets, now, limit, guard)
    finally:
        guard.slots.release()
    if not found.changes and not any(e == SPENT for e in found.errors.values()):
        guard.remember(key, now, found)
    return found


def _lookup(
    store: Store, aws: AwsClients, bucket: str, days: int, targets: list[LookupTarget], now: datetime, limit: int,
    guard: LookupGuard | None = None,
) -> Timeline:
    """Ask every target's LookupEvents (a few at a time), index what names the bucket, answer from the index."""
    start = now - min(timedelta(days=max(days, 1)), HISTORY)
    errors: dict[str, str] = {}
    found: list[Record] = []

    def one(target: LookupTarget) -> tuple[LookupTarget, list[Record] | None, str]:
        spend = (lambda: guard.spend(target.source)) if guard is not None else None
        try:
            if guard is None:
                client = paced_client(aws, target, DEFAULT_RATE)
            else:
                client = paced_client(
                    aws, target, DEFAULT_RATE, pace_clock=guard.pace_clock, pace_sleep=guard.pace_sleep
                )
            return target, lookup_resource(client, bucket, start, now, spend=spend), ""
        except BudgetSpent:
            return target, None, SPENT
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
