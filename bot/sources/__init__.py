"""Where records come from (LookupEvents, trail buckets) and the state every source shares.

A source fetches; it never stores. It returns a `SourceResult` holding the S3 configuration writes
it read, and the poller stores them, hands them on, and only then marks them seen and moves the
source's watermark (`commit`), so a crash or a failing callback never skips an event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import sqlite_utils

from bot.events import Record
from bot.store import Store, iso, parse_iso


@dataclass
class SourceResult:
    """What one source (one account-region, or one trail bucket) read in one poll."""

    source: str  # poller_state key: lookup:<account>:<region> or trail:<bucket>/<prefix>
    kind: str  # lookup | trail: the `source` column of the who-changed index
    records: list[Record] = field(default_factory=list)  # S3 configuration writes, in-memory deduplicated
    seen: int = 0  # every record the source returned, reads included
    calls: int = 0  # AWS requests made
    malformed: int = 0
    error: str | None = None  # set: the watermark stays where it was
    watermark: datetime | None = None  # where the watermark moves once the records are handled
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
    lag_seconds: float | None = None
    events_seen: int = 0


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
    )


def all_states(store: Store) -> dict[str, SourceState]:
    return {row["source"]: load_state(store, row["source"]) for row in store.db.table("poller_state").rows}


def record_outcome(db: sqlite_utils.Database, result: SourceResult, now: datetime) -> None:
    """Last attempt always; last success, watermark and lag only when the whole window was handled."""
    previous = list(db.table("poller_state").rows_where("source = ?", [result.source]))
    seen_total = (previous[0]["events_seen"] or 0 if previous else 0) + result.seen
    row: dict[str, object] = {"source": result.source, "last_attempt": iso(now), "events_seen": seen_total}
    if result.error is None:
        row["last_success"] = iso(now)
        row["last_error"] = None
        if result.watermark is not None:
            row["watermark"] = iso(result.watermark)
            row["lag_seconds"] = max(0.0, (now - result.watermark).total_seconds())
    else:
        row["last_error"] = result.error
        watermark = parse_iso(previous[0]["watermark"]) if previous else None
        if watermark is not None:
            row["lag_seconds"] = max(0.0, (now - watermark).total_seconds())
    db.table("poller_state").upsert(row, pk="source")


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
