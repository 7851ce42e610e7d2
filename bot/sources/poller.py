"""The poll cycle: every account × region through LookupEvents, every trail bucket, one at a time.

Sources fetch concurrently (a thread pool; each account-region paced at CloudTrail's 2 requests/s);
their results are handled one by one in the polling thread, in this order: drop events already
seen → store the configuration writes in the who-changed index → `on_records` (the alert engine) →
only then, in one transaction, mark them seen and move the watermark. If `on_records` raises, nothing
is marked and the watermark stays, so the next poll hands the same records over again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.aws.clients import AwsClients
from bot.core.clock import utcnow
from bot.core.config import Settings
from bot.core.record import Record
from bot.sources.findings import findings_source_name, poll_findings
from bot.sources.health import SourceHealth, source_health
from bot.sources.lookup import DEFAULT_RATE, HISTORY, LookupTarget, poll_target
from bot.sources.sqs import QueueResult, TrailQueue, poll_queue
from bot.sources.state import (
    SourceResult,
    SourceState,
    all_states,
    load_state,
    mark_seen,
    prune_seen,
    record_outcome,
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
        # Large organisations read the trail bucket instead; their accounts stay listed for the roles the
        # live verdict and the fix use (LOOKUP_POLLING=false).
        self.targets = (
            [LookupTarget(a.account_id, r) for a in settings.accounts for r in settings.regions]
            if settings.lookup_polling
            else []
        )
        self.locations = [TrailLocation.parse(t) for t in settings.trail_buckets]
        self.queues = [TrailQueue.parse(u) for u in settings.trail_queue_urls]
        # What scan workers found in the trail (bot.sources.worker): the bot reads it, workers read the files.
        self.findings = [TrailQueue.parse(settings.findings_queue_url)] if settings.findings_queue_url else []
        self._one_at_a_time = threading.Lock()

    def source_names(self) -> list[str]:
        return (
            [t.source for t in self.targets] + [loc.source for loc in self.locations] + [q.source for q in self.queues]
            + [findings_source_name(q) for q in self.findings]
        )

    def poll_once(self) -> PollReport:
        """One cycle over every source; a failing source is recorded and the others go on."""
        with self._one_at_a_time:
            report = PollReport()
            now = self.clock()
            states = all_states(self.store)
            count = len(self.targets) + len(self.locations) + len(self.queues) + len(self.findings)
            if not count:
                return report
            with ThreadPoolExecutor(max_workers=min(self.max_workers, count), thread_name_prefix="poll") as pool:
                futures: list[Future[SourceResult]] = [
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
                    for target in self.targets
                ]
                region = self.settings.regions[0]
                futures += [
                    pool.submit(
                        poll_location, self.aws, self.store, loc, region=region, now=now,
                        lookback=self.lookback, max_files=self.max_files,
                    )
                    for loc in self.locations
                ]
                futures += [pool.submit(poll_queue, self.aws, queue, region=region) for queue in self.queues]
                futures += [pool.submit(poll_findings, self.aws, queue, region=region) for queue in self.findings]
                for future in as_completed(futures):
                    self._handle(future.result(), report)
            self._prune(now)
            return report

    def _handle(self, result: SourceResult, report: PollReport) -> None:
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
            report.sources.append(
                SourceReport(result.source, result.seen, 0, 0, result.calls, result.seconds, result.error)
            )
            return
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
        report.sources.append(
            SourceReport(
                result.source, result.seen, len(new), len(findings), result.calls, result.seconds, result.error
            )
        )

    def _prune(self, now: datetime) -> None:
        # No window starts before the oldest watermark minus the lookback: ids older than that are
        # never served again. Keep at least a day, and at most 30 days for a source that stays broken.
        states = all_states(self.store).values()
        watermarks = [s.watermark for s in states if s.watermark and s.source.startswith("lookup:")]
        oldest_start = min(watermarks, default=now) - self.lookback - timedelta(hours=1)
        cutoff = max(now - timedelta(days=30), min(now - timedelta(days=1), oldest_start))
        prune_seen(self.store, cutoff)
        prune_read_files(self.store)

    def health(self) -> list[SourceHealth]:
        """Every configured source, polled or not yet, judged (and its lag measured) now."""
        return source_health(self.store, self.clock(), self.source_names())

    def backfill(self, days: int, progress: Callable[[str, int, str | None], None] | None = None) -> BackfillReport:
        """Fill the who-changed index from LookupEvents history (≤ 90 days); alerts nothing, moves no watermark."""
        report = BackfillReport()
        now = self.clock()
        start = now - min(timedelta(days=max(days, 1)), HISTORY)
        if not self.targets:
            return report
        workers = min(self.max_workers, len(self.targets))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            futures = [
                pool.submit(
                    poll_target, self.aws, t, watermark=None, now=now, lookback=self.lookback, rate=self.rate,
                    start=start, pace_clock=self.pace_clock, pace_sleep=self.pace_sleep,
                )
                for t in self.targets
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








