"""Where records come from (LookupEvents, trail buckets) and the state every source shares.

A source fetches; it never stores. It returns a `SourceResult` holding the S3 configuration writes
it read, and the poller stores them, hands them on, and only then marks them seen and moves the
source's watermark (`commit`), so a crash or a failing callback never skips an event.

Input a source cannot read (a LookupEvents entry whose CloudTrailEvent is not a JSON object, a log
file that is not gzip or JSON, a record that is not an object) never fails a poll: it is counted,
skipped, and kept in the `quarantine` table (written with the source's outcome) for a person to read.
Each entry is kept once per source (looked up by a hash of its text), for QUARANTINE_DAYS, and at most
QUARANTINE_KEEP per source (the newest): a hostile or broken input cannot grow the database without end.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
import sqlite_utils

from bot.core.clock import iso, parse_iso
from bot.core.metrics import POLL_ERRORS, POLLS
from bot.core.record import Record
from bot.store.database import Store

log = logging.getLogger(__name__)
# Raw text kept per quarantined entry: enough to see what was wrong, bounded for a hostile input.
QUARANTINE_RAW_CHARS = 64_000
QUARANTINE_KEEP = 1_000  # rows per source: the newest are the ones a person looks at
QUARANTINE_DAYS = 30
# The reason of a queue message set aside after too many receives (bot.sources.sqs): counted apart
# from malformed input, since it may be well-formed and only failing.
SET_ASIDE = "set aside after"


@dataclass(frozen=True)
class Quarantined:
    """One piece of input a source could not read: why, and its text."""

    reason: str
    raw: str


@dataclass
class SourceResult:
    """What one source (one account-region, or one trail bucket) read in one poll."""

    source: str  # poller_state key: lookup:<account>:<region>, trail:<bucket>/<prefix>, sqs:<queue>, accounts:…
    kind: str  # lookup | trail | queue: the `source` column of the who-changed index
    records: list[Record] = field(default_factory=list)  # S3 configuration writes, in-memory deduplicated
    seen: int = 0  # every record the source returned, reads included
    calls: int = 0  # AWS requests made
    malformed: int = 0
    quarantine: list[Quarantined] = field(default_factory=list)  # the malformed input itself
    error: str | None = None  # set: the watermark stays where it was
    # Shown in health as last_error while the poll still counts as a success (a trail backlog).
    warning: str | None = None
    watermark: datetime | None = None  # where the watermark moves once the records are handled
    newest_event: datetime | None = None  # newest eventTime among everything read, reads included
    seconds: float = 0.0
    commit: Callable[[sqlite_utils.Database], None] | None = None  # source-specific progress (trail files)


@dataclass(frozen=True)
class SourceState:
    """One poller_state row."""

    source: str
    watermark: datetime | None = None
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None
    lag_seconds: float | None = None  # as measured at the last attempt; `lag(now)` for a fresh figure
    events_seen: int = 0
    newest_event: datetime | None = None

    def lag(self, now: datetime) -> float | None:
        """Seconds between `now` and the newest event this source has ever returned (see `event_lag`)."""
        return event_lag(self.newest_event, now)


def event_lag(newest_event: datetime | None, now: datetime) -> float | None:
    """now − the newest event time seen: how far behind real time the freshest thing we know is.

    Not now − watermark: the watermark moves to the poll's own "now" on every successful poll (the
    window to read next starts there, minus the overlap), so that difference is always about zero.
    The newest event's age instead adds up CloudTrail's delivery delay (typically 5–15 minutes),
    the poll interval, and any time the source has been failing. On a quiet account-region it also
    grows with the quiet (no events, nothing newer to see): read it next to "last success".
    None until the source has returned at least one event.
    """
    if newest_event is None:
        return None
    return max(0.0, (now - newest_event).total_seconds())


def load_state(store: Store, source: str) -> SourceState:
    rows = list(store.db.table("poller_state").rows_where("source = ?", [source]))
    if not rows:
        return SourceState(source)
    row = rows[0]
    return SourceState(
        source=source,
        watermark=parse_iso(row["watermark"]),
        last_success=parse_iso(row["last_success"]),
        last_attempt=parse_iso(row["last_attempt"]),
        last_error=row["last_error"] or None,
        lag_seconds=row["lag_seconds"],
        events_seen=row["events_seen"] or 0,
        newest_event=parse_iso(row.get("newest_event")),
    )


def all_states(store: Store) -> dict[str, SourceState]:
    return {row["source"]: load_state(store, row["source"]) for row in store.db.table("poller_state").rows}


def record_outcome(db: sqlite_utils.Database, result: SourceResult, now: datetime) -> None:
    """Last attempt, newest event, lag and quarantine always; last success and watermark only when the
    whole window was handled."""
    previous = list(db.table("poller_state").rows_where("source = ?", [result.source]))
    seen_total = (previous[0]["events_seen"] or 0 if previous else 0) + result.seen
    row: dict[str, object] = {"source": result.source, "last_attempt": iso(now), "events_seen": seen_total}
    # Events read in a failed window were still seen: they count toward the newest event (lag), even
    # though the watermark stays and the window is read again.
    newest = max(
        (t for t in (parse_iso(previous[0].get("newest_event")) if previous else None, result.newest_event) if t),
        default=None,
    )
    if newest is not None:
        row["newest_event"] = iso(newest)
    row["lag_seconds"] = event_lag(newest, now)
    if result.error is None:
        row["last_success"] = iso(now)
        row["last_error"] = result.warning  # None clears an earlier error or warning
        if result.watermark is not None:
            row["watermark"] = iso(result.watermark)
    else:
        row["last_error"] = result.error
    db.table("poller_state").upsert(row, pk="source")
    quarantine(db, result.source, result.quarantine, now)
    POLLS.labels(source=result.source).inc()
    if result.error is not None:
        POLL_ERRORS.labels(source=result.source).inc()


def quarantine(db: sqlite_utils.Database, source: str, entries: Iterable[Quarantined], now: datetime) -> int:
    """Keep unreadable input for a person to look at; returns the rows added.

    The lookback overlap (and a window read again after a failure) serves the same bad entry on
    several polls: an entry already kept for this source (same text hash) is not added twice.
    Rows older than QUARANTINE_DAYS, and beyond the newest QUARANTINE_KEEP of the source, go.
    """
    added = 0
    for entry in entries:
        raw = entry.raw[:QUARANTINE_RAW_CHARS]
        cursor = db.execute(
            "INSERT OR IGNORE INTO quarantine (at, source, reason, raw, raw_hash) VALUES (?, ?, ?, ?, ?)",
            [iso(now), source, entry.reason[:500], raw, raw_hash(raw)],
        )
        added += cursor.rowcount or 0
    if added:
        log.warning("%s: %d malformed entr%s quarantined", source, added, "y" if added == 1 else "ies")
    db.execute(
        "DELETE FROM quarantine WHERE source = ? AND (at < ? OR id < (SELECT min(id) FROM"
        " (SELECT id FROM quarantine WHERE source = ? ORDER BY id DESC LIMIT ?)))",
        [source, iso(now - timedelta(days=QUARANTINE_DAYS)), source, QUARANTINE_KEEP],
    )
    return added


def raw_hash(raw: str) -> str:
    """The dedup key of a quarantined entry's (already truncated) text."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def quarantine_counts(store: Store) -> dict[str, int]:
    """Malformed entries quarantined per source (shown by `status`; the rows are in the `quarantine` table)."""
    rows = store.db.execute(
        "select source, count(*) from quarantine where reason not like ? group by source order by source",
        [SET_ASIDE + "%"],
    )
    return {str(source): int(count) for source, count in rows}


def set_aside_counts(store: Store, since: datetime | None = None) -> dict[str, int]:
    """Queue messages set aside after too many receives, per source (kept in the `quarantine` table)."""
    rows = store.db.execute(
        "select source, count(*) from quarantine where reason like ? and at >= ? group by source order by source",
        [SET_ASIDE + "%", iso(since) if since else ""],
    )
    return {str(source): int(count) for source, count in rows}


def unseen(store: Store, records: Iterable[Record]) -> list[Record]:
    """Records whose event id is not in `seen_events` (and not repeated within `records`)."""
    out: list[Record] = []
    pending: dict[str, Record] = {}
    for record in records:
        if record.event_id and record.event_id not in pending:
            pending[record.event_id] = record
    if not pending:
        return out
    known = {
        row[0]
        for row in store.db.execute(
            "select event_id from seen_events where event_id in (select value from json_each(?))",
            [orjson.dumps(list(pending)).decode()],
        )
    }
    return [r for event_id, r in pending.items() if event_id not in known]


def mark_seen(db: sqlite_utils.Database, records: Iterable[Record], now: datetime) -> None:
    rows = [{"event_id": r.event_id, "seen_at": iso(now)} for r in records if r.event_id]
    if rows:
        db.table("seen_events").insert_all(rows, pk="event_id", replace=True, batch_size=500)


def prune_seen(store: Store, before: datetime) -> int:
    """Forget event ids seen before `before` (no window reaches back that far any more)."""
    with store.atomic() as db:
        cursor = db.execute("delete from seen_events where seen_at < ?", [iso(before)])
        return cursor.rowcount or 0
