"""The poll cycle: every account × region through LookupEvents, every trail bucket, one at a time.

Sources fetch concurrently (a thread pool; each account-region paced at CloudTrail's 2 requests/s);
their results are handled one by one in the polling thread, in this order: drop events already
seen → store the configuration writes in the who-changed index → `on_records` (the alert engine) →
only then, in one transaction, mark them seen and move the watermark. If `on_records` raises, nothing
is marked and the watermark stays, so the next poll hands the same records over again.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bot.aws import AwsClients
from bot.config import Settings, load_settings
from bot.events import Record
from bot.index import ingest
from bot.sources import (
    SourceResult,
    SourceState,
    all_states,
    load_state,
    mark_seen,
    prune_seen,
    record_outcome,
    unseen,
)
from bot.sources.lookup import DEFAULT_RATE, HISTORY, LookupTarget, poll_target
from bot.sources.sqs import QueueResult, TrailQueue, poll_queue
from bot.sources.trail_bucket import TrailLocation, poll_location, prune_read_files
from bot.store import Store, utcnow
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


# A source whose last success is older than this is "late" (several POLL_SECONDS cycles missed).
STALE_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class SourceHealth:
    """One source's health: the one rule `status`, App Home and the digest show."""

    source: str
    last_success: datetime | None
    lag_seconds: float | None  # now − the newest event this source returned (bot.sources.event_lag)
    last_error: str | None
    last_attempt: datetime | None = None
    checked_at: datetime | None = None  # when this was measured; staleness is judged against it
    stale_after: timedelta = STALE_AFTER

    @property
    def failing(self) -> bool:
        """An error counts until a later attempt succeeds (last_error may stay set after a success)."""
        if not self.last_error:
            return False
        return self.last_success is None or (self.last_attempt is not None and self.last_attempt > self.last_success)

    @property
    def stale(self) -> bool:
        """Never succeeded, or not for longer than `stale_after` before `checked_at`."""
        if self.last_success is None:
            return True
        return self.checked_at is not None and self.checked_at - self.last_success > self.stale_after

    @property
    def healthy(self) -> bool:
        return not (self.failing or self.stale)

    @property
    def ok(self) -> bool:
        """Same as `healthy` (the name bot.messages reads)."""
        return self.healthy


def source_health(
    store: Store, now: datetime, names: list[str] | None = None, *, stale_after: timedelta = STALE_AFTER
) -> list[SourceHealth]:
    """Health of `names` (polled or not yet), or of every source in poller_state when None."""
    states = all_states(store)
    out = []
    for name in states if names is None else names:
        state = states.get(name, SourceState(name))
        out.append(
            SourceHealth(
                name, state.last_success, state.lag(now), state.last_error, state.last_attempt, now, stale_after
            )
        )
    return out


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
    ):
        self.settings = settings
        self.store = store
        self.aws = aws
        self.on_records = on_records or _no_op
        self.clock = clock
        self.rate = rate
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
        self._one_at_a_time = threading.Lock()

    def source_names(self) -> list[str]:
        return (
            [t.source for t in self.targets] + [loc.source for loc in self.locations] + [q.source for q in self.queues]
        )

    def poll_once(self) -> PollReport:
        """One cycle over every source; a failing source is recorded and the others go on."""
        with self._one_at_a_time:
            report = PollReport()
            now = self.clock()
            states = all_states(self.store)
            count = len(self.targets) + len(self.locations) + len(self.queues)
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
                    start=start,
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


def _format_source(s: SourceReport) -> str:
    state = f"ERROR {s.error}" if s.error else "ok"
    counts = f"seen {s.seen}, new {s.new}, findings {s.findings}, {s.calls} call(s), {s.seconds:.1f}s"
    return f"  {s.source}  {state}  {counts}"


def _open(settings: Settings, on_records: OnRecords | None = None) -> Poller:
    return Poller(settings, Store(settings.db_path), AwsClients(settings), on_records=on_records)


def cli_poll(args: argparse.Namespace, *, on_records: OnRecords | None = None) -> int:
    """`poll --once`: one cycle; prints findings on the new records and one line per source."""
    from bot.cli_scan import format_finding

    if not getattr(args, "once", False):
        print(
            "bucketwatch poll: only `poll --once` is supported; the bot polls every POLL_SECONDS inside"
            " `python -m bot run`.",
            file=sys.stderr,
        )
        return 2
    settings = load_settings(dotenv=Path(".env"))
    if not settings.accounts and not settings.trail_buckets and not settings.trail_queue_urls:
        print(
            "bucketwatch poll: nothing to poll: set AWS_ACCOUNTS (and AWS_REGIONS), TRAIL_BUCKETS or TRAIL_QUEUE_URLS.",
            file=sys.stderr,
        )
        return 2
    if on_records is not None:
        report = _open(settings, on_records).poll_once()
        posted = ""
    else:
        # The same wiring as `run`: new records become alerts (stored, then posted through the outbox), so
        # nothing this cycle marks as seen is lost to the running bot.
        from bot.app import build_services, build_web_client

        services = build_services(settings, build_web_client(settings), Store(settings.db_path), AwsClients(settings))
        report = services.poller.poll_once()
        pending = len(services.outbox.pending())
        posted = (
            f"; {pending} Slack message(s) queued for the running bot (no SLACK_BOT_TOKEN/ALERT_CHANNEL here)"
            if pending
            else ""
        )
    for finding in report.findings:
        print(format_finding(finding) + "\n")
    print(f"polled {len(report.sources)} source(s):")
    for source in sorted(report.sources, key=lambda s: s.source):
        print(_format_source(source))
    print(
        f"{len(report.new_records)} new configuration change(s), {len(report.findings)} finding(s),"
        f" {len(report.errors)} source(s) with errors{posted}"
    )
    return 1 if report.errors else 0


def cli_backfill(args: argparse.Namespace) -> int:
    """`backfill --days N`: the who-changed index from LookupEvents history, with a progress bar."""
    settings = load_settings(dotenv=Path(".env"))
    if not settings.accounts:
        print("bucketwatch backfill: set AWS_ACCOUNTS (and AWS_REGIONS) first.", file=sys.stderr)
        return 2
    days = int(getattr(args, "days", 7))
    if days > 90:
        print("bucketwatch backfill: LookupEvents keeps 90 days; reading 90.", file=sys.stderr)
    poller = _open(settings)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(poller.targets), unit="account-region", file=sys.stderr, leave=False)

    def progress(source: str, added: int, error: str | None) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(source)

    report = poller.backfill(days, progress)
    if bar is not None:
        bar.close()
    print(
        f"backfill: {report.indexed} configuration change(s) indexed from {report.seen} S3 event(s) in"
        f" {len(poller.targets)} account-region(s) over {min(days, 90)} day(s)"
    )
    for source, error in sorted(report.errors.items()):
        print(f"  {source}  ERROR {error}")
    return 1 if report.errors else 0
