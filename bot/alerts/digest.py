"""The daily digest's figures as data: counts, response times, what is still open, the chart's days.

bot.services.digest gathers them from the store; bot.slack.digest turns them into words.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlite_utils

from bot.alerts.allow_tag import TAG_LABEL
from bot.alerts.asks import AskFigures
from bot.alerts.codec import finding_from_json
from bot.alerts.exceptions import ExceptionRow
from bot.core.clock import iso, parse_iso
from bot.sources.health import SourceHealth

CHART_DAYS = 14


# A re-check reads several AWS APIs per bucket; past this many the digest says how many it skipped.
MAX_RECHECKS = 100


def median_duration(values: list[timedelta]) -> timedelta | None:
    """The median duration; None for no values."""
    return timedelta(seconds=statistics.median(v.total_seconds() for v in values)) if values else None


WINDOW = timedelta(hours=24)


FIX_STATUSES = ("fixed", "resolved")


Recheck = Callable[[str, str | None, str], bool | None]


@dataclass(frozen=True)
class OpenAlert:
    id: int
    account: str
    region: str
    bucket: str | None  # None: account-level alert
    status: str
    opened_at: datetime
    acknowledged_by: str | None
    access_point: str | None = None


@dataclass(frozen=True)
class TagAccepted:
    """A bucket whose changes in the window its own tag bucketwatch:public=allowed accepted (not alerted)."""

    alert_id: int
    account: str
    region: str
    bucket: str | None
    changes: int  # findings the tag accepted in the window
    latest: datetime
    what: tuple[str, ...]  # what changed (`BlockPublicAcls: on → off`), distinct, newest first
    actors: tuple[str, ...]  # who, distinct, newest first


def accepted_by_tag(db: sqlite_utils.Database, since: datetime, now: datetime) -> list[TagAccepted]:
    """Changes the bucket's tag accepted in (since, now], per alert: the digest's trace of what was not alerted.

    "In the last day", not "still accepted": a tag that accepted nothing new is not news, and the tag
    write itself was reported when it happened (detections/allow_tag_added.py)."""
    sql = ("SELECT a.id, a.account, a.region, a.bucket, f.finding, f.added_at FROM alerts a"
           " JOIN alert_findings f ON f.alert_id = a.id WHERE a.status = 'accepted' AND a.closed_by = ?"
           " AND f.added_at >= ? ORDER BY a.id, f.added_at DESC, f.rowid DESC")
    grouped: dict[int, list[tuple[tuple[str, str, str | None], str, datetime]]] = {}
    for alert_id, account, region, bucket, raw, added in db.execute(sql, [TAG_LABEL, iso(since - WINDOW)]):
        at = parse_iso(added) if isinstance(added, str) else None
        if at is not None and since < at <= now:
            grouped.setdefault(alert_id, []).append(((account or "", region or "", bucket or None), raw, at))
    out = []
    for alert_id, rows in grouped.items():
        findings = [finding_from_json(raw) for _, raw, _ in rows]
        what: dict[str, str] = {}  # per thing changed, its newest change
        for change in (c for f in findings for c in f.changes):
            what.setdefault(change.what, str(change))
        actors = dict.fromkeys(f.actor.display for f in findings)
        (account, region, bucket), _, latest = rows[0]
        out.append(TagAccepted(alert_id, account, region, bucket, len(rows), latest, tuple(what.values()),
                               tuple(actors)))
    return sorted(out, key=lambda t: t.latest, reverse=True)


@dataclass
class Figures:
    """Every figure of the digest as data."""

    now: datetime
    day: date  # local day in DIGEST_TZ
    tz: str
    new: int = 0
    open: int = 0
    acknowledged: int = 0
    fixed: int = 0
    accepted: int = 0
    resolved: int = 0
    ack_times: list[timedelta] = field(default_factory=list)
    fix_times: list[timedelta] = field(default_factory=list)
    open_alerts: list[OpenAlert] = field(default_factory=list)
    still_public: list[OpenAlert] = field(default_factory=list)
    rechecked: bool = False  # a re-check function was wired
    recheck_unknown: int = 0
    recheck_skipped: int = 0
    expiring: list[ExceptionRow] = field(default_factory=list)
    pollers: list[SourceHealth] = field(default_factory=list)
    chart: list[tuple[date, int]] = field(default_factory=list)
    by_tag: list[TagAccepted] = field(default_factory=list)  # accepted by the bucket's own tag (24 h)
    # The sources the settings configure (AWS_ACCOUNTS × AWS_REGIONS, TRAIL_BUCKETS, TRAIL_QUEUE_URLS);
    # [] when none is; None when the digest was not told (then `pollers` is whatever has ever run).
    sources: list[str] | None = None
    note: str = ""  # said above everything else, e.g. that the digest goes out late
    muted: int = 0  # of `new`: below MIN_SEVERITY, so no card was posted
    min_severity: str = ""
    asks: AskFigures = field(default_factory=AskFigures)  # asking the actor, over alerts opened in the window

    @property
    def watched(self) -> bool:
        """At least one source is configured and has been polled: without one, "nothing new" means nothing."""
        return bool(self.pollers) and self.sources != []

    @property
    def ack_median(self) -> timedelta | None:
        return median_duration(self.ack_times)

    @property
    def ack_worst(self) -> timedelta | None:
        return max(self.ack_times, default=None)

    @property
    def fix_median(self) -> timedelta | None:
        return median_duration(self.fix_times)

    @property
    def fix_worst(self) -> timedelta | None:
        return max(self.fix_times, default=None)

    @property
    def quiet(self) -> bool:
        busy = (self.new or self.open or self.acknowledged or self.fixed or self.accepted or self.resolved
                or self.by_tag)
        return not busy and not self.expiring and self.watched and all(p.healthy for p in self.pollers)
