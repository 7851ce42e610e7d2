"""The poll cycle: every account × region through LookupEvents, every trail bucket and queue, one at a time.

Sources fetch concurrently (a thread pool; each account-region paced at CloudTrail's 2 requests/s);
their results are handed over one at a time (`hand_over`, also used by the queue listeners' threads),
in this order: drop events already seen → store the configuration writes in the who-changed index →
`on_records` (the alert engine) → only then, in one transaction, mark them seen and move the
watermark. If `on_records` raises, nothing is marked and the watermark stays, so the next poll hands
the same records over again. One lock around the hand-over makes the event-id dedup hold across
paths: the same event from EventBridge, LookupEvents and a trail file makes one alert.

With a queue configured, the scheduled poll (`poll_scheduled`) asks LookupEvents only every
SAFETY_NET_FACTOR-th cycle: the queue brings the events, LookupEvents catches what it would miss.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.aws.clients import AwsClients
from bot.core.clock import utcnow
from bot.core.config import Settings
from bot.core.record import Record
from bot.sources.findings import findings_source_name, poll_findings
from bot.sources.fleet import FleetReport, fleet_source, refresh_fleet
from bot.sources.health import SourceHealth, source_health
from bot.sources.health import late_after as late_after_polls
from bot.sources.lookup import DEFAULT_RATE, HISTORY, LookupTarget, poll_target
from bot.sources.sqs import QueueResult, SqsQueue, poll_queue
from bot.sources.state import (
    SourceResult,
    SourceState,
    all_states,
    load_state,
    mark_seen,
    prune_seen,
    record_outcome,
    set_aside_counts,
    unseen,
)
from bot.sources.trail_bucket import TrailLocation, poll_location, prune_read_files
from bot.store.database import Store
from bot.store.index import ingest
from detections import Finding, evaluate

logger = logging.getLogger(__name__)
OnRecords = Callable[[list[Record]], None]


@dataclass(frozen=True)
class SourceReport:
    """One source's part of a poll."""

    source: str
    seen: int
    new: int
    findings: int
    calls: int
    seconds: float
    error: str | None = None


@dataclass
class PollReport:
    """What one poll cycle read, handed on and found."""

    sources: list[SourceReport] = field(default_factory=list)
    new_records: list[Record] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[SourceReport]:
        return [s for s in self.sources if s.error]


@dataclass
class BackfillReport:
    indexed: int = 0
    seen: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def _no_op(records: list[Record]) -> None:
    return None


class Poller:
    """Runs poll cycles over the configured sources; `on_records` receives each batch of new records."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        aws: AwsClients,
        *,
        on_records: OnRecords | None = None,
        clock: Callable[[], datetime] = utcnow,
        rate: float = DEFAULT_RATE,
        max_workers: int = 32,
        max_files: int = 500,
        pace_clock: Callable[[], float] = time.monotonic,
        pace_sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.store = store
        self.aws = aws
        self.on_records = on_records or _no_op
        self.clock = clock
        self.rate = rate
        self.pace_clock, self.pace_sleep = pace_clock, pace_sleep  # LookupEvents pacing (TokenBucket)
        self.max_workers = max_workers
        self.max_files = max_files
        self.lookback = timedelta(minutes=settings.lookback_minutes)
        self.locations = [TrailLocation.parse(t) for t in settings.trail_buckets]
        self.queues = [SqsQueue.parse(u, "EVENT_QUEUE_URLS") for u in settings.event_queue_urls] + [
            SqsQueue.parse(u, "TRAIL_QUEUE_URLS") for u in settings.trail_queue_urls
            if u not in settings.event_queue_urls
        ]
        self.listening = False  # True once queue listeners run (bot.sources.listener): polls skip the queues
        # What scan workers found in the trail (bot.sources.worker): the bot reads it, workers read the files.
        self.findings = (
            [SqsQueue.parse(settings.findings_queue_url, "FINDINGS_QUEUE_URL")] if settings.findings_queue_url else []
        )
        self._one_at_a_time = threading.Lock()
        self._hand_over = threading.Lock()  # one hand-over at a time: dedup across poll and listener threads
        self._fleet_lock = threading.Lock()
        self._fleet_checked: datetime | None = None
        self._cycles = 0

    @property
    def targets(self) -> list[LookupTarget]:
        """Every account × region LookupEvents reads (the organisation's and enabled regions once discovered).

        Large organisations read the trail bucket or a queue instead; their accounts stay listed for the
        roles the live verdict and the fix use (LOOKUP_POLLING=false).
        """
        if not self.settings.lookup_polling:
            return []
        return [LookupTarget(account, region) for account, region in self.aws.targets()]

    @property
    def lookup_every(self) -> int:
        """Scheduled cycles per LookupEvents poll: SAFETY_NET_FACTOR when a queue brings the events, else 1."""
        return self.settings.safety_net_factor if self.queues else 1

    def source_names(self) -> list[str]:
        fleet = fleet_source(self.settings)
        return (
            ([fleet] if fleet else [])
            + [t.source for t in self.targets]
            + [loc.source for loc in self.locations]
            + [q.source for q in self.queues]
            + [findings_source_name(q) for q in self.findings]
        )

    def refresh_fleet(self) -> FleetReport:
        """Discover the organisation's accounts and enabled regions now (AWS_ACCOUNTS=org:…, AWS_REGIONS=all)."""
        with self._fleet_lock:
            report = refresh_fleet(self.settings, self.aws, self.store, self.clock())
            self._fleet_checked = self.clock()
            return report

    def _fleet_known(self) -> None:
        # The first poll (and `poll --once`, `backfill`) discovers before reading; the scheduler refreshes daily.
        if self._fleet_checked is None and fleet_source(self.settings):
            self.refresh_fleet()

    def poll_scheduled(self) -> PollReport:
        """The scheduler's cycle: trail buckets every time, LookupEvents every `lookup_every`-th time,
        queues only while no listener reads them."""
        cycle, self._cycles = self._cycles, self._cycles + 1
        return self.poll_once(lookup=cycle % self.lookup_every == 0, queues=not self.listening)

    def poll_once(self, *, lookup: bool = True, queues: bool = True) -> PollReport:
        """One cycle over every source; a failing source is recorded and the others go on."""
        self._fleet_known()
        with self._one_at_a_time:
            report = PollReport()
            now = self.clock()
            states = all_states(self.store)
            targets = self.targets if lookup else []
            queue_list = self.queues if queues else []
            count = len(targets) + len(self.locations) + len(queue_list) + len(self.findings)
            if not count:  # e.g. only queues, read by their listeners: the seen ids still need pruning
                self._prune(now)
                return report
            with ThreadPoolExecutor(max_workers=min(self.max_workers, count), thread_name_prefix="poll") as pool:
                futures: list[Future[Any]] = [
                    pool.submit(
                        poll_target,
                        self.aws,
                        target,
                        watermark=states.get(target.source, SourceState(target.source)).watermark,
                        now=now,
                        lookback=self.lookback,
                        rate=self.rate,
                        pace_clock=self.pace_clock,
                        pace_sleep=self.pace_sleep,
                    )
                    for target in targets
                ]
                region = self.settings.home_region
                futures += [
                    pool.submit(
                        poll_location, self.aws, self.store, loc, region=region, now=now,
                        lookback=self.lookback, max_files=self.max_files,
                    )
                    for loc in self.locations
                ]
                futures += [
                    pool.submit(
                        poll_queue, self.aws, queue, region=region,
                        last_error=states.get(queue.source, SourceState(queue.source)).last_error,
                    )
                    for queue in queue_list
                ]
                futures += [pool.submit(poll_findings, self.aws, queue, region=region) for queue in self.findings]
                for future in as_completed(futures):
                    outcome = future.result()
                    self.hand_over_all(outcome if isinstance(outcome, list) else [outcome], report)
            self._prune(now)
            return report

    def hand_over(self, result: SourceResult, report: PollReport | None = None) -> SourceReport:
        """Store, alert and mark seen what one source read (see the module docstring); one at a time."""
        with self._hand_over:
            return self._handle(result, report if report is not None else PollReport())

    def hand_over_all(
        self, results: list[QueueResult] | list[SourceResult], report: PollReport | None = None
    ) -> list[SourceReport]:
        """Hand over the parts of one source's read (a queue's messages that came back go alone).

        Health keeps a failure even when a later part succeeded: the source is failing while one of its
        messages is.
        """
        reports = [self.hand_over(result, report) for result in results]
        failed = next((r.error for r in reports if r.error), None)
        if failed and not reports[-1].error:
            with self.store.atomic() as db:
                record_outcome(db, SourceResult(reports[-1].source, "queue", error=failed), self.clock())
        return reports

    def _handle(self, result: SourceResult, report: PollReport) -> SourceReport:
        if isinstance(result, QueueResult) and result.error is None and not result.warning:
            result.warning = self._set_aside_note(result.source, result.set_aside)
        new = unseen(self.store, result.records)
        findings = [f for record in new for f in evaluate(record)]
        try:
            if new:
                ingest(self.store, new, source=result.kind)
                self.on_records(new)
        except Exception as exc:  # the alert engine failed: keep everything to hand over again next poll
            logger.exception("handling %d record(s) from %s failed", len(new), result.source)
            result.error = f"handling records failed: {type(exc).__name__}: {exc}"[:300]
            with self.store.atomic() as db:
                record_outcome(db, result, self.clock())
            failed = SourceReport(result.source, result.seen, 0, 0, result.calls, result.seconds, result.error)
            report.sources.append(failed)
            return failed
        if isinstance(result, QueueResult):
            result.acknowledge()  # handed over: only now may SQS forget the messages (sets error if it cannot)
        if result.error and result.error != load_state(self.store, result.source).last_error:
            # Logged when it starts; repeats show in poller_state, `status` and the digest.
            logger.warning("%s: %s", result.source, result.error)
        with self.store.atomic() as db:
            now = self.clock()
            mark_seen(db, new, now)
            if result.commit is not None:
                result.commit(db)
            record_outcome(db, result, now)
        report.new_records.extend(new)
        report.findings.extend(findings)
        done = SourceReport(
            result.source, result.seen, len(new), len(findings), result.calls, result.seconds, result.error
        )
        report.sources.append(done)
        return done

    def _set_aside_note(self, source: str, now_set_aside: int) -> str | None:
        """Health's note while a queue has set messages aside in the last day (they stay in `quarantine`)."""
        count = set_aside_counts(self.store, self.clock() - timedelta(days=1)).get(source, 0) + now_set_aside
        return f"{count} message{'s' if count != 1 else ''} set aside in the last 24 h (see status)" if count else None

    def _prune(self, now: datetime) -> None:
        # No window starts before the oldest watermark minus the lookback: ids older than that are
        # never served again. Keep at least a day, and at most 30 days for a source that stays broken.
        # Only sources still read count: a dropped (suspended) account's old watermark holds nothing back.
        reading = {t.source for t in self.targets}
        states = all_states(self.store).values()
        watermarks = [s.watermark for s in states if s.watermark and s.source in reading]
        oldest_start = min(watermarks, default=now) - self.lookback - timedelta(hours=1)
        cutoff = max(now - timedelta(days=30), min(now - timedelta(days=1), oldest_start))
        prune_seen(self.store, cutoff)
        prune_read_files(self.store)

    @property
    def late_after(self) -> timedelta:
        """When a source counts as late: the one rule of every screen and /readyz (bot.sources.health)."""
        return late_after_polls(self.settings.poll_seconds * self.lookup_every)

    def health(self) -> list[SourceHealth]:
        """Every configured source, polled or not yet, judged (and its lag measured) now."""
        return source_health(self.store, self.clock(), self.source_names(), stale_after=self.late_after)

    def backfill(self, days: int, progress: Callable[[str, int, str | None], None] | None = None) -> BackfillReport:
        """Fill the who-changed index from LookupEvents history (≤ 90 days); alerts nothing, moves no watermark."""
        report = BackfillReport()
        self._fleet_known()
        now = self.clock()
        start = now - min(timedelta(days=max(days, 1)), HISTORY)
        targets = self.targets
        if not targets:
            return report
        workers = min(self.max_workers, len(targets))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            futures = [
                pool.submit(
                    poll_target, self.aws, t, watermark=None, now=now, lookback=self.lookback, rate=self.rate,
                    start=start, pace_clock=self.pace_clock, pace_sleep=self.pace_sleep,
                )
                for t in targets
            ]
            for future in as_completed(futures):
                result = future.result()
                added = ingest(self.store, result.records, source="lookup") if result.records else 0
                report.indexed += added
                report.seen += result.seen
                if result.error:
                    report.errors[result.source] = result.error
                if progress is not None:
                    progress(result.source, added, result.error)
        return report


