"""The daily digest: the last 24 h of alerts, what is still open, exceptions ending, poller health.

Reads the alert tables directly, exceptions through bot.exceptions and poller health through
bot.poller (the one "healthy" rule), so it needs only the store; the live re-check is an injected
callable. The figures, as a reader can check them on cards:
- window: the 24 h before `now`; the chart's days are local days in DIGEST_TZ.
- new: alerts opened in the window. open / acknowledged: status right now.
- fixed / accepted / resolved: alerts that moved to that status in the window (alert_history,
  or alerts.acknowledged_at / closed_at for alerts written without history).
- time to acknowledge: opened_at → acknowledgement, over alerts acknowledged in the window.
- accepted by tag: alerts the bucket's own tag bucketwatch:public=allowed accepted, with the changes
  it accepted in the window (what changed, by whom); never silent, so never "all quiet" either.
- time to fix: opened_at → fixed or resolved (the exposure ended, by the button or by a later
  event), over alerts fixed or resolved in the window. Accepted alerts were not fixed.
- quiet: nothing opened, closed, open or expiring, at least one source configured and polled, and
  every one healthy → what was watched, then one "all quiet" line. With no source configured (or none
  polled yet) the digest says so first and is never "all quiet".
- when: at DIGEST_TIME (within ON_TIME of it). A bot that was down at DIGEST_TIME today — it has sent
  a digest on an earlier day, or its own post failed today — catches up when it is back, and the
  digest says it is late. A bot starting for the first time waits for DIGEST_TIME.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient

# Rendering lives in bot.digest_render; QUIET_LINE, chart_lines and the rest stay importable from here.
from bot.alerts.asks import AskStore, ask_figures
from bot.alerts.digest import (
    CHART_DAYS,
    FIX_STATUSES,
    MAX_RECHECKS,
    WINDOW,
    Figures,
    OpenAlert,
    Recheck,
    accepted_by_tag,
)
from bot.alerts.exceptions import EXPIRING_WITHIN, ExceptionList, ExceptionRow
from bot.alerts.lifecycle import CLOSED
from bot.core.clock import iso, parse_iso, utcnow
from bot.slack.digest import Digest, Fmt, render
from bot.slack.errors import slack_failure
from bot.slack.mrkdwn import inert
from bot.sources.health import STALE_AFTER, source_health
from bot.store.database import Store

log = logging.getLogger(__name__)




# A post this long after DIGEST_TIME is a catch-up (the scheduler's cron job may fire up to an hour late).
ON_TIME = timedelta(hours=1)


class DigestPostError(RuntimeError):
    """The digest could not be posted; the day's claim was released so a later run retries."""




@dataclass(frozen=True)
class ExpiryReminder:
    exception_id: int
    account: str | None
    bucket: str | None
    alert_id: int | None  # the latest alert on that bucket (its thread gets the reminder)
    still_public: bool | None  # None: not re-checked (no accepted alert) or could not tell
    reopen_alert_id: int | None  # accepted alert whose bucket is still public: the caller re-opens it
    text: str
    channel: str | None = None
    ts: str | None = None




def _when(value: Any) -> datetime | None:
    try:
        return parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        return None


# ---- the service ---------------------------------------------------------------------------------
class DigestService:
    """Builds the digest from the store, posts it once per local day, sends exception-expiry reminders."""

    def __init__(
        self,
        store: Store,
        *,
        tz: str,
        digest_time: str = "09:00",
        clock: Callable[[], datetime] = utcnow,
        recheck: Recheck | None = None,
        poller_stale_after: timedelta = STALE_AFTER,
        sources: Callable[[], list[str]] | None = None,
        muted: Callable[[str], bool] | None = None,
        min_severity: str = "",
    ):
        self.store, self.tz, self.zone = store, tz, ZoneInfo(tz)
        hh, _, mm = digest_time.partition(":")
        self.due = (int(hh), int(mm))
        self.clock, self.recheck, self.poller_stale_after = clock, recheck, poller_stale_after
        # The configured sources' names (the poller's): the digest says when there are none.
        self.sources = sources
        self.muted, self.min_severity = muted, min_severity  # MIN_SEVERITY: counted here, not carded
        self._failed_day: str | None = None  # a day whose post failed in this process: retried when late

    def build(self, now: datetime | None = None, *, note: str = "") -> Digest:
        """The digest for `now` (default: the clock); `note` is said first (e.g. that it is late)."""
        fig = self.figures(now)
        fig.note = note
        return render(fig, self.zone)

    def figures(self, now: datetime | None = None) -> Figures:
        """Every figure of the digest as data (see the module docstring for definitions)."""
        now = now or self.clock()
        since = now - WINDOW
        fig = Figures(now=now, day=now.astimezone(self.zone).date(), tz=self.tz, min_severity=self.min_severity)
        days = [fig.day - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
        # SQL narrows by text with a day's margin (other writers' time formats); exact bounds in Python.
        start = datetime.combine(days[0], datetime.min.time(), self.zone)
        lo, hi = iso(start - timedelta(days=2)), iso(now + timedelta(days=1))
        per_day: dict[date, int] = {}
        sql = "SELECT opened_at, severity FROM alerts WHERE opened_at BETWEEN ? AND ?"
        for opened_at, severity in self._rows(sql, lo, hi):
            at = _when(opened_at)
            if at is not None and at <= now:
                fig.new += 1 if at > since else 0
                # Below MIN_SEVERITY: no card was posted, so the digest is where they are seen.
                fig.muted += 1 if at > since and self.muted is not None and self.muted(severity or "") else 0
                local_day = at.astimezone(self.zone).date()
                per_day[local_day] = per_day.get(local_day, 0) + 1
        fig.chart = [(d, per_day.get(d, 0)) for d in days]

        moves = self._moves(since, now, lo, hi)
        for status in CLOSED:
            setattr(fig, status, sum(1 for _, s in moves if s == status))
        moved = sorted({a for a, _ in moves})
        marks = ",".join("?" * len(moved))
        sql = f"SELECT id, opened_at FROM alerts WHERE id IN ({marks})"  # noqa: S608 (placeholders only)
        opened = {a: _when(at) for a, at in self._rows(sql, *moved)} if moved else {}
        for alert_id in moved:
            start_at = opened.get(alert_id)
            if start_at is None:
                continue
            if (alert_id, "acknowledged") in moves:
                fig.ack_times.append(max(timedelta(), moves[(alert_id, "acknowledged")] - start_at))
            ended = [moves[(alert_id, s)] for s in FIX_STATUSES if (alert_id, s) in moves]
            if ended:
                fig.fix_times.append(max(timedelta(), min(ended) - start_at))

        for r in self._rows("SELECT id, account, region, bucket, status, opened_at, acknowledged_by, access_point"
                            " FROM alerts WHERE status IN ('open', 'acknowledged') ORDER BY opened_at, id"):
            at = _when(r[5])
            if at is not None:
                alert = OpenAlert(r[0], r[1] or "", r[2] or "", r[3] or None, r[4], at, r[6] or None, r[7] or None)
                fig.open_alerts.append(alert)
        fig.open = sum(1 for a in fig.open_alerts if a.status == "open")
        fig.acknowledged = len(fig.open_alerts) - fig.open
        self._recheck_open(fig)
        fig.asks = ask_figures(AskStore(self.store).since(since, now))

        fig.by_tag = accepted_by_tag(self.store.db, since, now)
        fig.expiring = ExceptionList(self.store, clock=lambda: now).expiring(EXPIRING_WITHIN)
        fig.sources = self.sources() if self.sources is not None else None
        fig.pollers = source_health(self.store, now, fig.sources, stale_after=self.poller_stale_after)
        fig.pollers.sort(key=lambda p: (p.healthy, p.source))  # what needs a look comes first
        return fig

    def _rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(self.store.db.execute(sql, list(params)).fetchall())

    def _moves(
        self, since: datetime, now: datetime, lo: str | None, hi: str | None
    ) -> dict[tuple[int, str], datetime]:
        """(alert, status) → earliest move to that status inside the window."""
        found: dict[tuple[int, str], datetime] = {}
        rows = self._rows("SELECT alert_id, status_to, at FROM alert_history WHERE at BETWEEN ? AND ?",
                          lo, hi)
        # Alerts written without a history line still count, from the alert's own columns.
        for alert_id, status, ack_at, closed_at in self._rows(
            "SELECT id, status, acknowledged_at, closed_at FROM alerts"
            " WHERE acknowledged_at BETWEEN ? AND ? OR closed_at BETWEEN ? AND ?", lo, hi, lo, hi
        ):
            rows += [(alert_id, "acknowledged", ack_at), (alert_id, status, closed_at)]
        for alert_id, status, at_text in rows:
            at = _when(at_text)
            if at is None or status not in ("acknowledged", *CLOSED) or not since < at <= now:
                continue
            if (alert_id, status) not in found or at < found[(alert_id, status)]:
                found[(alert_id, status)] = at
        return found

    def _recheck_open(self, fig: Figures) -> None:
        verdicts: dict[tuple[str, str | None, str], bool | None] = {}
        fig.rechecked = self.recheck is not None
        for alert in fig.open_alerts:
            key = (alert.account, alert.bucket, alert.region)
            if key not in verdicts:
                if self.recheck is None or len(verdicts) >= MAX_RECHECKS:
                    fig.recheck_skipped += 1
                    continue
                verdicts[key] = self._check(*key)
            if verdicts[key] is None:
                fig.recheck_unknown += 1
            elif verdicts[key]:
                fig.still_public.append(alert)

    def _check(self, account: str, bucket: str | None, region: str) -> bool | None:
        if self.recheck is None:
            return None
        try:
            return self.recheck(account, bucket, region)
        except Exception:
            # One unreadable bucket must not cost the whole digest.
            log.warning("re-check of %s/%s in %s failed", account, bucket, region, exc_info=True)
            return None

    def post(self, slack: WebClient, channel: str, now: datetime | None = None, *, note: str = "") -> str | None:
        """Post the digest to `channel` now; returns the message ts."""
        digest = self.build(now, note=note)
        response = slack.chat_postMessage(channel=channel, text=digest.text, blocks=inert(digest.blocks))
        return response.get("ts")

    def send_if_due(self, slack: WebClient, channel: str, now: datetime | None = None) -> bool:
        """Post today's digest at DIGEST_TIME if nobody has yet; True when this call posted.

        On time means within ON_TIME after DIGEST_TIME. Later than that it is a catch-up, sent only
        when the bot was down at DIGEST_TIME today (it has sent a digest on an earlier day, or this
        process's post failed today), and the digest says it is late; a bot starting for the first
        time waits for DIGEST_TIME. The day is claimed (a digest_runs row with sent_at NULL) before
        posting, so two workers never both post; a failed post deletes the claim. A crash between
        claim and post skips that day: never twice wins over always once.
        """
        now = now or self.clock()
        local = now.astimezone(self.zone)
        if (local.hour, local.minute) < self.due:
            return False
        day = local.date().isoformat()
        due_at = datetime.combine(local.date(), time(*self.due), self.zone)
        note = ""
        if local - due_at >= ON_TIME:
            if not self._missed(day):
                return False
            note = (f"Sent late: bucketwatch was not running at {self.due[0]:02d}:{self.due[1]:02d} {self.tz}"
                    f" (DIGEST_TIME) and caught up at {local:%H:%M}.")
        with self.store.atomic() as db:
            claimed = db.execute("INSERT OR IGNORE INTO digest_runs (day, sent_at) VALUES (?, NULL)", [day])
        if claimed.rowcount != 1:
            return False
        try:
            self.post(slack, channel, now, note=note)
        except Exception as exc:
            with self.store.atomic() as db:
                db.execute("DELETE FROM digest_runs WHERE day = ? AND sent_at IS NULL", [day])
            self._failed_day = day
            raise DigestPostError(f"digest for {day} not posted ({type(exc).__name__}); will retry") from exc
        with self.store.atomic() as db:
            db.execute("UPDATE digest_runs SET sent_at = ? WHERE day = ?", [iso(self.clock()), day])
        return True

    def _missed(self, day: str) -> bool:
        """Whether today's DIGEST_TIME passed while the bot was down (or its post failed), not before it existed."""
        if self._failed_day == day:
            return True
        return bool(self._rows("SELECT 1 FROM digest_runs WHERE day < ? LIMIT 1", day))

    # ---- exception expiry -------------------------------------------------------------------------
    def expiry_reminders(self, now: datetime | None = None) -> list[ExpiryReminder]:
        """Claim expired, not yet notified exceptions: one reminder each, and which alert to re-open."""
        allow = ExceptionList(self.store, clock=lambda: now or self.clock())
        return [r for row in allow.due_for_expiry_notice() if (r := self._claim(allow, row)) is not None]

    def _claim(self, allow: ExceptionList, row: ExceptionRow) -> ExpiryReminder | None:
        """Claim one reminder (mark_notified: False when another worker sends it); None: nothing to send."""
        if not allow.mark_notified(row.id):
            return None
        try:
            return self._reminder(row, allow)
        except Exception:
            allow.release_notice(row.id)
            raise

    def _reminder(self, row: ExceptionRow, allow: ExceptionList) -> ExpiryReminder | None:
        account, bucket = row.account, row.bucket
        where, params = ("bucket IS NULL", []) if bucket is None else ("bucket = ?", [bucket])
        where, params = ("access_point = ?", [row.access_point]) if row.access_point else (
            where + " AND access_point IS NULL", params)
        if account is not None:  # an exception without an account covered the bucket in every account
            where, params = where + " AND account = ?", [*params, account]
        rows = self._rows(f"SELECT id, account, region, status, channel, ts FROM alerts WHERE {where}"  # noqa: S608
                          " ORDER BY id DESC LIMIT 1", *params)
        alert_id, alert_account, region, status, channel, ts = rows[0] if rows else (None,) * 6
        # A renewed exception still covers the bucket: nothing alerts again, so say nothing, re-open nothing.
        if allow.active_for(bucket, account or alert_account, row.access_point) is not None:
            return None
        f = Fmt(self.zone, slack=True)
        covered = f.where(account, bucket, access_point=row.access_point)
        text = (f"⏰ Exception #{row.id} for {covered} expired {f.when(row.expires_at)}"
                f" (reason: {f.esc(row.reason)}; owner {f.who(row.owner)}). Changes to it alert again from now.")
        still_public = None
        if status == "accepted":
            still_public = self._check(alert_account or "", bucket, region or "")
            text += {
                True: f" It is still public: alert #{alert_id} is re-opened.",
                False: " It is no longer public.",
                None: f" Could not re-check it: alert #{alert_id} stays accepted; check it by hand.",
            }[still_public]
        reopen = alert_id if still_public else None
        return ExpiryReminder(row.id, account, bucket, alert_id, still_public, reopen, text, channel, ts)

    def release_reminder(self, exception_id: int) -> None:
        """Forget that a reminder went out (its post failed) so the next run sends it."""
        ExceptionList(self.store).release_notice(exception_id)

    def notify_expired(
        self,
        slack: WebClient,
        channel: str,
        *,
        reopen: Callable[[int, str], Any] | None = None,
        now: datetime | None = None,
    ) -> list[ExpiryReminder]:
        """Post each expiry reminder (in the card's thread, broadcast, if any); re-open as needed.

        One at a time: claim, re-open, post. A failure releases that one claim (the next run retries it)
        and the rest still go out. Re-opening first means a retried reminder never re-opens twice.
        """
        allow = ExceptionList(self.store, clock=lambda: now or self.clock())
        sent = []
        for row in allow.due_for_expiry_notice():
            try:
                r = self._claim(allow, row)
                if r is None:
                    continue
                if r.reopen_alert_id is not None and reopen is not None:
                    reopen(r.reopen_alert_id, f"exception #{r.exception_id} expired; the bucket is still public")
                # In the card's thread, wherever ROUTES sent the card; else top-level in the alert channel.
                thread = r.ts if r.ts and r.channel else None
                slack.chat_postMessage(channel=r.channel if thread and r.channel else channel, text=r.text,
                                       thread_ts=thread,
                                       reply_broadcast=bool(thread))
            except Exception as exc:
                refused = slack_failure(exc)  # a refused post is one line; anything else keeps its traceback
                log.warning("expiry reminder #%s not sent%s; will retry", row.id, f": {refused}" if refused else "",
                            exc_info=refused is None)
                self.release_reminder(row.id)
                continue
            sent.append(r)
        return sent


