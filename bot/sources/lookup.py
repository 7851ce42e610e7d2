"""CloudTrail LookupEvents: S3 configuration writes of one account-region, paced and bounded in cost.

LookupEvents (CloudTrail API reference, "LookupEvents") takes one lookup attribute per call, returns
at most 50 events a page, newest first, and allows about 2 requests per second per account and
region. The strategy, per poll of one account-region:

1. One call filtered on `EventSource = s3.amazonaws.com` over the window. An idle account-region
   (≤ 50 S3 management events in the window) is done in this one call.
2. While further pages are mostly writes, keep paging: each such page holds ≥ 25 writes, so the
   pages cost is at most writes/25 (+1).
3. Once a page is mostly reads (Get*/List*/Head* from scanners, Config, the console…) and the pages
   still to come — guessed from the time the pages so far covered — outnumber the event names below,
   paging on would cost one call per 50 *reads*. Instead the rest of the window (older than the
   pages taken) is read with one `EventName = …` lookup per name in `LOOKUP_EVENT_NAMES`: the names
   detections watch and the ones that restore a block (auto-resolve). That costs len(names) calls
   plus one per 50 matching writes, whatever the number of reads. So a poll costs about
   min(pages of all S3 events, len(names) + writes/50) + writes/25 + 1.
Other S3 configuration writes (lifecycle, versioning…) reach the who-changed index in modes 1–2 only;
the trail bucket source sees everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from bot.aws.clients import AwsClients, error_message
from bot.core.record import S3_SOURCE, Record
from bot.sources.state import Quarantined, SourceResult
from bot.store.index import is_config_write
from detections import WATCHED_EVENT_NAMES
from detections.allow_tag_added import TAG_WRITES
from detections.restores import RESTORE_EVENTS

PAGE_SIZE = 50
HISTORY = timedelta(days=90)  # LookupEvents serves the last 90 days only
# Data events (object-level) never reach LookupEvents; the trail bucket source reads those.
DATA_EVENT_NAMES = frozenset({"PutObject", "CopyObject", "PutObjectAcl", "CreateMultipartUpload"})
# Writes that close an exposure: auto-resolve must see them even in a read-heavy window.
RESTORE_EVENT_NAMES = RESTORE_EVENTS
LOOKUP_EVENT_NAMES: tuple[str, ...] = tuple(
    sorted((WATCHED_EVENT_NAMES | RESTORE_EVENT_NAMES | TAG_WRITES) - DATA_EVENT_NAMES)
)
# A page with fewer writes than this share of its events is "dominated by reads".
WRITE_SHARE = 0.5
# Just under CloudTrail's 2 requests/s: AWS counts on its side, and our request times jitter.
DEFAULT_RATE = 1.8


class TokenBucket:
    """Paces calls to `rate` per second (burst 1), across threads.

    Hand-made on purpose: botocore's adaptive retry mode only turns its own rate limiter on after a
    throttling error and then tunes it reactively; it does not know CloudTrail's documented quota.
    Pacing up front means normal polls never get throttled at all. Hooked on `before-send`, so every
    HTTP attempt — retries included — waits for a token.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for the next slot; returns seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def before_send(self, **_: Any) -> None:
        self.acquire()


@dataclass(frozen=True)
class LookupTarget:
    """One account × region to poll."""

    account: str
    region: str

    @property
    def source(self) -> str:
        return f"lookup:{self.account}:{self.region}"


def paced_client(
    aws: AwsClients,
    target: LookupTarget,
    rate: float,
    *,
    pace_clock: Callable[[], float] = time.monotonic,
    pace_sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """The account-region's CloudTrail client, with a token bucket on every LookupEvents attempt."""
    client = aws.client("cloudtrail", target.account, target.region)
    # unique_id: registering again (another Poller on the same cached client) keeps the first bucket,
    # so one client is always paced by exactly one bucket.
    bucket = TokenBucket(rate, clock=pace_clock, sleep=pace_sleep)
    client.meta.events.register(
        "before-send.cloudtrail.LookupEvents", bucket.before_send, unique_id="bucketwatch-lookup-pace"
    )
    return client


def window_start(watermark: datetime | None, now: datetime, lookback: timedelta) -> datetime:
    """From the watermark minus the overlap (events arrive up to 15 min late), within 90 days."""
    start = (watermark or now) - lookback
    return max(min(start, now - lookback), now - HISTORY)


class _Window:
    """Accumulates one account-region window's pages."""

    def __init__(self, result: SourceResult):
        self.result = result
        self.ids: set[str] = set()

    def take(self, events: list[dict[str, Any]]) -> int:
        """Keep the configuration writes of one page; returns how many of its events were writes."""
        writes = 0
        for entry in events:
            self.result.seen += 1
            if str(entry.get("ReadOnly", "")).lower() != "true":
                writes += 1
            when = entry.get("EventTime")
            if isinstance(when, datetime) and (self.result.newest_event is None or when > self.result.newest_event):
                self.result.newest_event = when  # lag: see bot.sources.event_lag
            try:
                raw = orjson.loads(entry.get("CloudTrailEvent") or b"")
                problem = "" if isinstance(raw, dict) else f"CloudTrailEvent is a {type(raw).__name__}, not an object"
            except orjson.JSONDecodeError as exc:
                problem = f"CloudTrailEvent is not JSON ({exc.msg})"
            if problem:
                # Counted and kept, never fatal: one bad entry must not cost the window it sits in.
                self.result.malformed += 1
                whole = orjson.dumps(entry, default=str).decode()  # the whole entry: EventId, time, text
                self.result.quarantine.append(Quarantined(f"LookupEvents entry: {problem}", whole))
                continue
            record = Record(raw)
            if record.event_id and record.event_id not in self.ids and is_config_write(record):
                self.ids.add(record.event_id)
                self.result.records.append(record)
        return writes


def _pages_left(start: datetime, boundary: datetime, end: datetime, pages: int) -> float:
    """Pages still to come on EventSource, guessed from how much time the pages so far covered."""
    covered = (end - boundary).total_seconds()
    left = (boundary - start).total_seconds()
    if left <= 0:
        return 0.0
    return float("inf") if covered <= 0 else pages * left / covered


def fetch_window(
    client: Any,
    result: SourceResult,
    start: datetime,
    end: datetime,
    *,
    names: tuple[str, ...] = LOOKUP_EVENT_NAMES,
) -> None:
    """Read [start, end] into `result` (strategy in the module docstring). Raises on AWS errors;
    whatever was read before the error stays in `result`."""
    window = _Window(result)

    def page(attribute: dict[str, str], until: datetime, token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "LookupAttributes": [attribute],
            "StartTime": start,
            "EndTime": until,
            "MaxResults": PAGE_SIZE,
        }
        if token:
            kwargs["NextToken"] = token
        result.calls += 1
        response: dict[str, Any] = client.lookup_events(**kwargs)
        return response

    token: str | None = None
    by_source = {"AttributeKey": "EventSource", "AttributeValue": S3_SOURCE}
    pages = 0
    while True:
        response = page(by_source, end, token)
        pages += 1
        events = response.get("Events") or []
        writes = window.take(events)
        token = response.get("NextToken")
        if not token:
            return
        times = [e["EventTime"] for e in events if isinstance(e.get("EventTime"), datetime)]
        boundary = min(times) if times else end
        if writes < len(events) * WRITE_SHARE and _pages_left(start, boundary, end, pages) > len(names):
            break
    # Read-dominated and long: the pages taken cover [boundary, end]; look up the rest by name.
    # EndTime is inclusive, so events sharing the boundary second are read again (and deduplicated).
    for name in names:
        token = None
        while True:
            response = page({"AttributeKey": "EventName", "AttributeValue": name}, boundary, token)
            window.take(response.get("Events") or [])
            token = response.get("NextToken")
            if not token:
                break


def poll_target(
    aws: AwsClients,
    target: LookupTarget,
    *,
    watermark: datetime | None,
    now: datetime,
    lookback: timedelta,
    rate: float = DEFAULT_RATE,
    start: datetime | None = None,
    pace_clock: Callable[[], float] = time.monotonic,
    pace_sleep: Callable[[float], None] = time.sleep,
) -> SourceResult:
    """One account-region's window as a SourceResult; errors (AccessDenied…) recorded, not raised."""
    result = SourceResult(source=target.source, kind="lookup")
    began = time.monotonic()
    try:
        client = paced_client(aws, target, rate, pace_clock=pace_clock, pace_sleep=pace_sleep)
        fetch_window(client, result, start or window_start(watermark, now, lookback), now)
    except Exception as exc:  # one account's failure (AccessDenied, throttled out, no creds) never stops the others
        result.error = error_message(exc)
    else:
        # The whole window up to `now` was read: once handled, nothing before it needs reading again
        # except what the lookback overlap re-reads.
        result.watermark = now
    result.seconds = time.monotonic() - began
    return result
