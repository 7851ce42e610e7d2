"""Alerts: one exposure incident per bucket (or account), its findings, its lifecycle, auto-resolve.

open → acknowledged → fixed / accepted / resolved, every change a row in alert_history. The engine
knows nothing of Slack: it reports what happened as an `AlertEvent` (bot.alerts.events) to `notify`,
inside the transaction that made the change, and a notifier (bot.slack.notifier) says it. Which
events count as a fix lives in bot.alerts.restore; how findings are stored in bot.alerts.codec; their
before values come from bot.alerts.prior; the Alert row and its statuses are in bot.alerts.lifecycle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from bot.alerts.allow_tag import TagAllowance, accepted_by_tag
from bot.alerts.codec import finding_json
from bot.alerts.events import AlertEvent, AlertEventKind, Notify, ignore
from bot.alerts.lifecycle import (
    ALLOWED_FROM,
    CLOSED,
    SYSTEM,
    Alert,
    AlertChange,
    AlertNotFound,
    AlertStateError,
    AlertStatus,
    is_public_detection,
    resource_key,
)
from bot.alerts.prior import with_before
from bot.alerts.queries import AlertReader
from bot.alerts.restore import Restoration, clear_covered, restoration, restored_later
from bot.alerts.tag_removal import removes_allow_tag, reopen_reason, writes_tags
from bot.core.clock import iso, utcnow
from bot.core.exposure import ExposureVerdict
from bot.core.record import Record
from bot.store.database import Store
from detections import BY_ID, evaluate
from detections.base import SEVERITIES, Finding

log = logging.getLogger(__name__)

# Live re-checks per detection per alert when findings are added: a bulk upload of public objects must
# not cost thousands of AWS reads. Past it the card says its verdict predates the latest changes.
RECHECK_CAP = 5

# (account, bucket or None, region, object keys whose ACLs the alert is about) → the live verdict
VerdictFn = Callable[[str, str | None, str, tuple[str, ...]], ExposureVerdict | None]
# (account, region, access point) → that access point's live verdict; an access point's alert never takes the
# account's verdict (it would talk about buckets, not the access point).
AccessPointVerdictFn = Callable[[str, str, str], ExposureVerdict | None]
# (bucket, account) → an exception row (or anything with id/owner/reason/expires_at, or a `marker`) or None.
# (bucket, account, access point) → the exception covering exactly that target, or None.
ExceptionsFn = Callable[[str | None, str | None, str | None], Any]


class AlertService(AlertReader):
    """Turns records into alerts and moves alerts through their lifecycle; reports each change to `notify`."""

    def __init__(self, store: Store, *, verdict_fn: VerdictFn | None = None,
                 exceptions_fn: ExceptionsFn | None = None, notify: Notify = ignore,
                 clock: Callable[[], datetime] = utcnow, access_point_verdict_fn: AccessPointVerdictFn | None = None):
        super().__init__(store)
        self.verdict_fn = verdict_fn
        self.access_point_verdict_fn = access_point_verdict_fn
        self.exceptions_fn = exceptions_fn
        self.notify = notify
        self.clock = clock
        # One writer of alerts per process: a poll thread and a button press must not both open a card.
        self._lock = threading.RLock()

    # ---- records in ----------------------------------------------------------------------------
    def process(self, records: Iterable[Record]) -> list[AlertChange]:
        """Evaluate detections on each record, open/extend/resolve alerts, enqueue the Slack messages."""
        # Oldest first, so a fix processed in the same batch as the change it undoes resolves it.
        ordered = sorted(records, key=lambda r: iso(r.event_time) or "")
        changes: list[AlertChange] = []
        for record in ordered:
            if not record.event_id:
                continue  # Without an event id a repeat could not be recognised.
            if writes_tags(record):
                changes += self._tags_written(record)
            restored = restoration(record)
            found = list(evaluate(record))
            if restored is not None:
                # A put that turns some Block Public Access flags back on and leaves others off both
                # restores and exposes: the incident stays open with the new finding, not a new card.
                changes += self._restore(record, restored, sorted({f.detection for f in found}))
            for finding in found:
                change = self._handle(finding)
                if change is not None:
                    changes.append(change)
        return changes

    def _tags_written(self, record: Record) -> list[AlertChange]:
        """A bucket's tag set was written: its cached tag is forgotten, and if the allow tag is gone the
        latest alert it accepted re-opens unless the bucket is known not to be public (bot.alerts.tag_removal)."""
        forget = getattr(self.exceptions_fn, "forget", None)
        if callable(forget):
            forget(record.bucket, record.account)
        if not removes_allow_tag(record):
            return []
        key = resource_key(record.account, record.bucket)
        latest = list(self._t("alerts").rows_where("resource_key = ?", [key], order_by="id desc", limit=1))
        if not latest or not accepted_by_tag(alert := Alert.from_row(latest[0])):
            return []
        if self.exceptions_fn is not None and self.exceptions_fn(record.bucket, record.account, None) is not None:
            return []  # tagged again since, or on the allow list: still accepted
        verdict = self.recheck(alert.id)
        public_now = verdict.public_now if verdict is not None else None
        if public_now is False:
            return []  # closed it stays: nothing is public to accept any more
        try:
            self.reopen(alert.id, reopen_reason(record, public_now))
        except AlertStateError:
            return []  # moved on meanwhile (a press, another process)
        return [AlertChange(alert.id, "reopened", record.event_id, alert.detection, AlertStatus.OPEN)]

    def _seen(self, finding: Finding) -> bool:
        sql = "SELECT 1 FROM alert_findings WHERE event_id = ? AND detection = ? LIMIT 1"
        return bool(self.store.db.execute(sql, [finding.event_id, finding.detection]).fetchone())

    def _open_for(self, key: str) -> Alert | None:
        where = "resource_key = ? AND status IN ('open', 'acknowledged')"
        rows = list(self._t("alerts").rows_where(where, [key], order_by="id desc", limit=1))
        return Alert.from_row(rows[0]) if rows else None

    def _handle(self, finding: Finding) -> AlertChange | None:
        key = resource_key(finding.account, finding.bucket, finding.access_point, finding.region)
        if self._seen(finding):
            return None
        finding = with_before(self.store.db, finding)  # "BlockPublicAcls: on → off", not "? → false"
        verdict = exception = None
        # Slow look-ups (AWS reads) happen outside the lock. A new alert needs the allow-list check and
        # the live verdict; a later finding on an open alert needs a fresh verdict (the card must not
        # show one older than the change it reports). If what was seen without the lock has moved on
        # by the time the lock is taken, look again: the second attempt always looks.
        for attempt in range(2):
            seen = self._open_for(key)
            looked = attempt > 0 or seen is None or self._rechecks(seen, finding)
            if looked:
                exception, verdict = self._lookups(key, finding, seen, with_exception=attempt > 0 or seen is None)
            with self._lock, self.store.atomic():
                if self._seen(finding):
                    return None
                current = self._open_for(key)
                if attempt == 0 and (current.id if current else None) != (seen.id if seen else None):
                    continue  # opened or closed meanwhile: look again with what is true now
                if current is not None:
                    return self._add(current, finding, verdict)
                if exception is not None:
                    return self._suppress(key, finding, exception)
                return self._open(key, finding, verdict)
        raise AssertionError("unreachable: the second attempt always looks up")

    def _rechecks(self, alert: Alert, finding: Finding) -> bool:
        """Whether adding `finding` to the open `alert` re-reads the live state (see RECHECK_CAP)."""
        if self.verdict_fn is None:
            return False
        if _worse(alert, finding):
            return True
        sql = "SELECT count(*) FROM alert_findings WHERE alert_id = ? AND detection = ?"
        return int(self.store.db.execute(sql, [alert.id, finding.detection]).fetchone()[0]) < RECHECK_CAP

    def _lookups(self, key: str, finding: Finding, alert: Alert | None, *,
                 with_exception: bool) -> tuple[Any, ExposureVerdict | None]:
        """The covering exception (for a new alert), else the live verdict (None when unwired or failing)."""
        exception = self._exception_for(finding) if with_exception else None
        if exception is not None or self.verdict_fn is None:
            return exception, None
        try:
            if finding.access_point:
                return None, self._point_verdict(finding.account, finding.region, finding.access_point)
            keys = {finding.object_key} if finding.object_key else set()
            if alert is not None:  # the objects the alert already names are part of its verdict too
                keys |= {f.object_key for f in self.finding_objects(alert.id) if f.object_key}
            return None, self.verdict_fn(finding.account, finding.bucket, finding.region, tuple(sorted(keys)))
        except Exception:
            log.exception("live verdict failed for %s", key)
            return None, None

    def _exception_for(self, finding: Finding) -> Any:
        if self.exceptions_fn is None:
            return None
        try:
            exception = self.exceptions_fn(finding.bucket, finding.account, finding.access_point or None)
        except Exception:
            log.exception("exception lookup failed for %s", finding.bucket)
            return None
        detection = BY_ID.get(finding.detection)
        if isinstance(exception, TagAllowance) and detection is not None and not detection.silenced_by_tag:
            return None  # the tag cannot hide its own writing (detections/allow_tag_added.py)
        return exception

    def _insert_finding(self, alert_id: int, finding: Finding) -> None:
        row = {"alert_id": alert_id, "event_id": finding.event_id, "detection": finding.detection,
               "added_at": iso(self.clock()), "finding": finding_json(finding),
               "event_time": iso(finding.event_time)}
        self._t("alert_findings").insert(row, ignore=True)

    def _history(self, alert_id: int, who: str, before: str | None, after: str, note: str = "") -> None:
        self._t("alert_history").insert({"alert_id": alert_id, "at": iso(self.clock()), "who": who,
                                         "status_from": before, "status_to": after, "note": note})

    def _new_alert(self, key: str, finding: Finding, status: str, **extra: Any) -> int:
        now = iso(self.clock())
        row = {"resource_key": key, "account": finding.account, "region": finding.region,
               "bucket": finding.bucket, "detection": finding.detection, "severity": finding.severity,
               "title": finding.title, "status": status, "opened_at": now, "updated_at": now,
               "first_event_id": finding.event_id, "actor": finding.actor.display,
               "access_point": finding.access_point or None, **extra}
        alert_id = int(self._t("alerts").insert(row).last_pk or 0)
        self._insert_finding(alert_id, finding)
        self._history(alert_id, SYSTEM, None, status, finding.title)
        return alert_id

    def _open(self, key: str, finding: Finding, verdict: ExposureVerdict | None) -> AlertChange:
        extra: dict[str, Any] = {}
        if verdict is not None:
            extra.update(verdict=verdict.line, verdict_json=verdict.to_json())
        later = restored_later(self.store.db, finding)
        if later is not None:
            # A late-delivered event whose fix is already in the index: tell the channel, ask nothing.
            extra.update(closed_by=later[0], closed_at=iso(self.clock()), close_reason=later[1])
            alert_id = self._new_alert(key, finding, "resolved", **extra)
            self._history(alert_id, later[0], "open", "resolved", later[1])
            kind = "resolved"
        else:
            alert_id = self._new_alert(key, finding, "open", **extra)
            kind = "opened"
        self.notify(AlertEvent(AlertEventKind.OPENED, alert_id))
        status = "resolved" if later else "open"
        return AlertChange(alert_id, kind, finding.event_id, finding.detection, status)

    def _suppress(self, key: str, finding: Finding, exception: Any) -> AlertChange:
        # An allow-list row is "exception #N"; a bucket tag names itself (bot.allow_tag.TagAllowance).
        tag = getattr(exception, "marker", None)
        marker = tag or f"exception #{getattr(exception, 'id', '?')}"
        where = "resource_key = ? AND status = 'accepted' AND closed_by = ?"
        rows = list(self._t("alerts").rows_where(where, [key, marker], order_by="id desc", limit=1))
        if rows:
            alert_id = int(rows[0]["id"])
            self._insert_finding(alert_id, finding)
            if _worse(Alert.from_row(rows[0]), finding):  # as _add: the alert is as bad as its worst finding,
                # so MIN_SEVERITY judges a critical change as critical, though a low precursor came first
                self._t("alerts").update(alert_id, {"detection": finding.detection, "title": finding.title,
                                                    "severity": finding.severity, "updated_at": iso(self.clock())})
            if tag:  # the tag leaves a trace: each later change goes under the quiet line
                sql = "SELECT count(*) FROM alert_findings WHERE alert_id = ? AND detection = ?"
                same = int(self.store.db.execute(sql, [alert_id, finding.detection]).fetchone()[0])
                self.notify(AlertEvent(AlertEventKind.ACCEPTED_BY_TAG, alert_id, finding, same_detection=same))
        else:
            owner = getattr(exception, "owner", "?")
            until = getattr(exception, "expires_at", None)
            until = f", until {until:%Y-%m-%d}" if isinstance(until, datetime) else ""
            reason = f"Covered by {marker} (owner {owner}{until}): {getattr(exception, 'reason', '')}"
            if tag:
                reason = f"Covered by the {tag}: the bucket's owner says it is public on purpose"
            alert_id = self._new_alert(key, finding, "accepted", closed_by=marker,
                                       closed_at=iso(self.clock()), close_reason=reason)
            if tag:  # never silent: the channel gets one quiet line for it (bot.slack.notifier)
                self.notify(AlertEvent(AlertEventKind.ACCEPTED_BY_TAG, alert_id))
        return AlertChange(alert_id, "suppressed", finding.event_id, finding.detection, "accepted")

    def _add(self, alert: Alert, finding: Finding, verdict: ExposureVerdict | None) -> AlertChange:
        self._insert_finding(alert.id, finding)
        updates: dict[str, Any] = {"updated_at": iso(self.clock())}
        worse = _worse(alert, finding)
        if worse:
            # The card's header names the worst thing that happened (a precursor that became an exposure).
            updates.update(detection=finding.detection, title=finding.title, severity=finding.severity)
        if verdict is not None:
            updates.update(verdict=verdict.line, verdict_json=verdict.to_json())
        self._t("alerts").update(alert.id, updates)
        sql = "SELECT count(*) FROM alert_findings WHERE alert_id = ? AND detection = ?"
        same = int(self.store.db.execute(sql, [alert.id, finding.detection]).fetchone()[0])
        kind = AlertEventKind.ESCALATED if worse else AlertEventKind.FINDING_ADDED
        self.notify(AlertEvent(kind, alert.id, finding, same_detection=same))
        return AlertChange(alert.id, "added", finding.event_id, finding.detection, alert.status)

    def _restore(self, record: Record, restored: Restoration, opens: list[str]) -> list[AlertChange]:
        changes = self._restore_locked(record, restored, opens)
        # The card must not keep saying "public now" under "Resolved": read the live state again (AWS, outside
        # the lock). If that fails the card says its verdict predates the close (bot.slack.card_text). Not after
        # a partial restore: a bulk undo of N public objects would cost N re-checks of N objects each.
        for change in [c for c in changes if c.kind == "resolved"]:
            try:
                self.recheck(change.alert_id)
            except Exception:
                log.warning("live re-check after a restore on alert %s failed", change.alert_id, exc_info=True)
        return changes

    def _restore_locked(self, record: Record, restored: Restoration, opens: list[str]) -> list[AlertChange]:
        key = resource_key(record.account, record.bucket, restored.access_point, record.region)
        with self._lock, self.store.atomic() as db:
            alert = self._open_for(key)
            if alert is None:
                return []
            left = clear_covered(db, alert.id, record, restored)
            if left is None:
                return []
            left = sorted({*left, *opens})
            if left:
                self.notify(AlertEvent(AlertEventKind.PARTLY_RESTORED, alert.id, reason=restored.reason,
                                       still_open=tuple(left)))
                return [AlertChange(alert.id, "partial", record.event_id, "", alert.status)]
            done = self.transition(alert.id, "resolved", record.actor.display, restored.reason)
            self.notify(AlertEvent(AlertEventKind.RESOLVED, alert.id, reason=restored.reason))
            return [AlertChange(alert.id, "resolved", record.event_id, "", done.status)]

    # ---- lifecycle -----------------------------------------------------------------------------
    def transition(self, alert_id: int, to_status: AlertStatus | str, who: str, note: str = "", *,
                   expect: tuple[str, ...] | None = None, slack_user: bool = False) -> Alert:
        """Compare-and-set the status; AlertStateError (with the current status) if it moved on already.

        `slack_user`: `who` is a Slack user id (a press), so the card may mention them; otherwise it
        is an AWS actor's or the bot's name, shown as text.
        """
        to_status = AlertStatus(to_status)
        allowed = expect if expect is not None else ALLOWED_FROM[to_status]
        now = iso(self.clock())
        with self._lock, self.store.atomic() as db:
            while True:
                current = self.get(alert_id)
                if current is None:
                    raise AlertNotFound(f"alert {alert_id} does not exist")
                if current.status not in allowed:
                    raise AlertStateError(alert_id, current.status, to_status)
                sets: dict[str, Any] = {"status": to_status, "updated_at": now}
                if to_status == "acknowledged":
                    sets.update(acknowledged_by=who, acknowledged_at=now)
                elif to_status in CLOSED:
                    sets.update(closed_by=who, closed_at=now, close_reason=note, closed_by_slack=int(slack_user))
                else:
                    sets.update(dict.fromkeys(("closed_by", "closed_at", "close_reason", "closed_by_slack",
                                               "acknowledged_by", "acknowledged_at")))
                assignments = ", ".join(f"{k} = ?" for k in sets)
                cursor = db.execute(f"UPDATE alerts SET {assignments} WHERE id = ? AND status = ?",  # noqa: S608
                                    [*sets.values(), alert_id, current.status])
                if cursor.rowcount == 1:
                    break
            self._history(alert_id, who, current.status, to_status, note)
            self.notify(AlertEvent(AlertEventKind.CHANGED, alert_id))
        updated = self.get(alert_id)
        assert updated is not None
        return updated

    def reopen(self, alert_id: int, why: str) -> Alert:
        """A closed alert back to open (an exception expired and the bucket is still public)."""
        with self._lock, self.store.atomic():
            alert = self.transition(alert_id, "open", SYSTEM, why)
            self.notify(AlertEvent(AlertEventKind.REOPENED, alert_id, reason=why, was_posted=bool(alert.ts)))
        return alert

    def set_verdict(self, alert_id: int, verdict: ExposureVerdict) -> None:
        """Store a fresh live verdict (after a fix or a re-check) and update the card."""
        with self._lock, self.store.atomic():
            values = {"verdict": verdict.line, "verdict_json": verdict.to_json(),
                      "updated_at": iso(self.clock())}
            self._t("alerts").update(alert_id, values)
            self.notify(AlertEvent(AlertEventKind.CHANGED, alert_id))

    def raise_severity(self, alert_id: int) -> Alert | None:
        """One step up (low → medium → high → critical) for an open alert, e.g. its actor denies the change."""
        with self._lock, self.store.atomic():
            alert = self.get(alert_id)
            if alert is None or not alert.is_open:
                return alert
            step = max(0, SEVERITIES.index(alert.severity) - 1) if alert.severity in SEVERITIES else 0
            self._t("alerts").update(alert_id, {"severity": SEVERITIES[step], "updated_at": iso(self.clock())})
            self.notify(AlertEvent(AlertEventKind.CHANGED, alert_id))
        return self.get(alert_id)

    def recheck(self, alert_id: int) -> ExposureVerdict | None:
        """Re-read the live state for an alert and store it; None when no verdict function is wired."""
        alert = self.get(alert_id)
        if alert is None or self.verdict_fn is None:
            return None
        keys = tuple(sorted({f.object_key for f in self.finding_objects(alert_id) if f.object_key}))
        if alert.access_point:
            verdict = self._point_verdict(alert.account, alert.region, alert.access_point)
        else:
            verdict = self.verdict_fn(alert.account, alert.bucket, alert.region, keys)
        if verdict is not None:
            self.set_verdict(alert_id, verdict)
        return verdict


    def _point_verdict(self, account: str, region: str, name: str) -> ExposureVerdict | None:
        """An access point's own verdict; none (not checked) rather than the account's when unwired."""
        return self.access_point_verdict_fn(account, region, name) if self.access_point_verdict_fn else None


def _worse(alert: Alert, finding: Finding) -> bool:
    """Whether `finding` makes the open alert worse: a higher severity, or public access after a precursor."""
    higher = SEVERITIES.index(finding.severity) < SEVERITIES.index(alert.severity)
    return higher or (finding.public and not is_public_detection(alert.detection))
