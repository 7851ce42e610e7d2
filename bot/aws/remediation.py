"""Fix and undo: re-enable S3 Block Public Access on a bucket or account, keep a snapshot, restore it.

Safe to press twice or from two places at once: a per-target lock serialises presses in this
process, and a partial unique index on `remediations` (one live fix per alert, migration
0005_remediation_guard) does the same across processes. AWS errors become outcomes; nothing raises.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.alerts.lifecycle import CLOSED
from bot.aws.bpa import BpaAction, FixPlan, action_for, explain
from bot.aws.clients import AWS_ERRORS
from bot.aws.remediation_store import AlertLike, Remediation, RemediationRows
from bot.core.bpa import FLAGS, Config, changes_needed, describe_config, target_label
from bot.core.clock import iso, utcnow
from bot.store.database import Store


class AwsLike(Protocol):
    """bot.aws.AwsClients: write=True selects the remediation role."""

    def client(self, service: str, account_id: str, region: str, *, write: bool = False) -> Any: ...


@dataclass(frozen=True)
class Outcome:
    """The result of a press: `message` is plain text (the caller escapes it for Slack)."""

    status: str
    message: str
    alert_id: int | None = None
    before: Config | None = None
    after: Config | None = None
    request_id: str = ""
    remediation_id: int | None = None
    by: str = ""  # who did it; for already_fixed / already_undone, the first presser
    at: datetime | None = None
    error_code: str = ""


@dataclass(frozen=True)
class FixOutcome(Outcome):
    """Fix status: applied|unverified|dry_run|no_change|already_fixed|already_closed|in_progress|failed."""

    changes: tuple[str, ...] = ()

    @property
    def changed_aws(self) -> bool:
        return self.status in ("applied", "unverified")


@dataclass(frozen=True)
class UndoOutcome(Outcome):
    """An undo: undone | dry_run | already_undone | nothing_to_undo | not_found | in_progress | failed."""


class Remediator:
    """Re-enables Block Public Access for an alert's bucket or account, and restores it on undo."""

    def __init__(
        self,
        store: Store,
        aws: AwsLike,
        *,
        dry_run: bool,
        clock: Callable[[], datetime] = utcnow,
        claim_wait_seconds: float = 15.0,
        stale_after: timedelta = timedelta(minutes=5),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store, self.aws, self.dry_run, self.clock = store, aws, dry_run, clock
        self.sleep = sleep  # between looks at another process's claim
        self.rows = RemediationRows(store)
        self.claim_wait_seconds = claim_wait_seconds
        self.stale_after = stale_after
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def plan(self, alert: AlertLike) -> FixPlan:
        """Read the configuration with the remediation role and list the flags a fix would turn on."""
        cls = action_for(alert.bucket)
        where = (alert.id, cls.name, alert.account, alert.region, alert.bucket)
        try:
            current = self._target(alert.account, alert.region, alert.bucket).read()
        except AWS_ERRORS as exc:
            return FixPlan(*where, None, (), explain(exc, cls, alert.account, alert.bucket)[1])
        return FixPlan(*where, current, changes_needed(current))

    def get(self, remediation_id: int) -> Remediation | None:
        return self.rows.get(remediation_id)

    def live_fix(self, alert_id: int) -> Remediation | None:
        """The applied (or in-flight) fix of this alert, if any: what Undo acts on."""
        return self.rows.live(alert_id)

    def fix(self, alert: AlertLike, user: str) -> FixOutcome:
        """Turn the weakened flags on once, however many presses; every presser gets the outcome."""
        early = self._fix_refusal(alert)
        if early is not None:
            return early
        with self._lock(alert.account, alert.bucket):
            early = self._fix_refusal(alert)  # the press we waited for may have fixed it
            if early is not None:
                return early
            if self.dry_run:
                return self._dry_run(alert, user)
            claimed = self._claim(alert, user)
            return claimed if isinstance(claimed, FixOutcome) else self._apply(alert, user, claimed)

    def undo(self, remediation_id: int, user: str) -> UndoOutcome:
        """Restore the snapshot exactly (delete the configuration if there was none); once."""
        row = self.get(remediation_id)
        if row is None:
            return UndoOutcome(
                "not_found", f"No fix #{remediation_id} to undo.", remediation_id=remediation_id
            )
        if (early := _undo_refusal(row)) is not None:
            return early
        with self._lock(row.account, row.bucket):
            row = self.get(remediation_id)
            assert row is not None
            if (early := _undo_refusal(row)) is not None:
                return early
            if self.dry_run:
                message = f"Dry run: would restore {target_label(row.account, row.bucket)} to "
                message += f"{describe_config(row.snapshot)}. Nothing was changed."
                return UndoOutcome(
                    "dry_run", message, row.alert_id, row.applied, row.snapshot, remediation_id=row.id
                )
            if not self.rows.claim_undo(row.id):
                # Another process got there between our read and this update.
                fresh = self.get(remediation_id)
                assert fresh is not None
                return _undo_refusal(fresh) or UndoOutcome(
                    "in_progress",
                    "An undo of this fix is already running.",
                    row.alert_id,
                    remediation_id=row.id,
                )
            return self._restore(row, user)

    def undo_alert(self, alert_id: int, user: str) -> UndoOutcome:
        """Undo the live fix of an alert (a button's value carries only the alert id)."""
        row = self.live_fix(alert_id) or self.rows.latest("alert_id = ? AND status = 'undone'", [alert_id])
        if row is None:
            return UndoOutcome("nothing_to_undo", f"Alert #{alert_id} has no applied fix to undo.", alert_id)
        return self.undo(row.id, user)

    # -- fix steps -------------------------------------------------------------------------------

    def _fix_refusal(self, alert: AlertLike) -> FixOutcome | None:
        live = self.live_fix(alert.id)
        if live is not None and live.status == "applied":
            return _already_fixed(live)
        if alert.status in CLOSED:
            message = f"Alert #{alert.id} is already {alert.status}; nothing was changed."
            return FixOutcome("already_closed", message, alert.id)
        return None

    def _dry_run(self, alert: AlertLike, user: str) -> FixOutcome:
        plan = self.plan(alert)
        if plan.error:
            return FixOutcome("failed", plan.error, alert.id)
        rid = self.rows.insert(alert, user, "dry_run", self.clock(), snapshot=plan.current, applied=plan.after)
        label = target_label(alert.account, alert.bucket)
        if plan.changes:
            message = f"Dry run: would turn on {', '.join(plan.changes)} for {label}. Nothing was changed."
        else:
            message = f"Dry run: Block Public Access is already fully on for {label}; nothing would change."
        return FixOutcome(
            "dry_run",
            message,
            alert.id,
            plan.current,
            plan.after,
            "",
            rid,
            user,
            self.clock(),
            changes=plan.changes,
        )

    def _claim(self, alert: AlertLike, user: str) -> int | FixOutcome:
        """Insert the 'applying' row; the unique index lets only one process hold it."""
        deadline = time.monotonic() + self.claim_wait_seconds
        while True:
            try:
                return self.rows.insert(alert, user, "applying", self.clock())
            except sqlite3.IntegrityError:
                live = self.live_fix(alert.id)
            if live is not None and live.status == "applied":
                return _already_fixed(live)
            if live is not None and live.status == "applying" and self._stale(live):
                # The process applying it died; without this the alert could never be fixed again.
                self.rows.update(live.id, "failed", error="abandoned: the process applying it stopped")
            elif time.monotonic() >= deadline:
                message = f"A fix or undo of {target_label(alert.account, alert.bucket)} is already running;"
                message += " its result will be posted in the thread."
                return FixOutcome("in_progress", message, alert.id, remediation_id=live.id if live else None)
            elif live is not None:
                self.sleep(0.1)

    def _apply(self, alert: AlertLike, user: str, rid: int) -> FixOutcome:
        cls = action_for(alert.bucket)
        label = target_label(alert.account, alert.bucket)
        before: Config | None = None
        try:
            target = self._target(alert.account, alert.region, alert.bucket)
            before = target.read()
            changes = changes_needed(before)
            if not changes:
                self.rows.update(rid, "no_change", snapshot=before, applied=before)
                message = f"Block Public Access is already fully on for {label}; nothing to change."
                return FixOutcome("no_change", message, alert.id, before, before, "", rid, user, self.clock())
            desired = (
                {f: True for f in FLAGS} if before is None else {**before, **dict.fromkeys(changes, True)}
            )
            request_id = target.write(desired)
        except AWS_ERRORS as exc:
            code, message, request_id = explain(exc, cls, alert.account, alert.bucket)
            self.rows.update(rid, "failed", snapshot=before, error=message, request_id=request_id)
            return FixOutcome(
                "failed", message, alert.id, before, None, request_id, rid, user, error_code=code
            )
        # AWS has changed: the row says applied from here on, so Undo works whatever the read-back says.
        problem = ""
        try:
            after: Config | None = target.read()
        except AWS_ERRORS as exc:
            after, problem = None, explain(exc, cls, alert.account, alert.bucket)[1]
        self.rows.update(rid, "applied", snapshot=before, applied=after or desired, request_id=request_id)
        status, turned_on = "applied", ", ".join(changes)
        message = (
            f"Re-enabled Block Public Access for {label}: turned on {turned_on}. Read back: all four on."
        )
        if after != desired:
            status = "unverified"
            problem = problem or f"the read-back shows {describe_config(after)}"
            message = f"Turned on {turned_on} for {label}, but could not verify it: {problem}"
        return FixOutcome(
            status, message, alert.id, before, after, request_id, rid, user, self.clock(), changes=changes
        )

    def _restore(self, row: Remediation, user: str) -> UndoOutcome:
        cls = action_for(row.bucket)
        label = target_label(row.account, row.bucket)
        current: Config | None = None
        try:
            target = self._target(row.account, row.region, row.bucket)
            current = target.read()
            request_id = target.delete() if row.snapshot is None else target.write(dict(row.snapshot))
        except AWS_ERRORS as exc:
            code, message, request_id = explain(exc, cls, row.account, row.bucket)
            self.rows.update(row.id, "applied", error=message)
            return UndoOutcome(
                "failed", message, row.alert_id, current, None, request_id, row.id, error_code=code
            )
        now = self.clock()
        self.rows.update(row.id, "undone", undone_by=user, undone_at=iso(now), error=None)
        # Someone may have changed it after the fix; the snapshot still wins, but say what was overwritten.
        note = (
            "" if current == row.applied else f" (it had changed since the fix: {describe_config(current)})"
        )
        try:
            restored: Config | None = target.read()
        except AWS_ERRORS as exc:
            message = (
                f"Restored {label} to {describe_config(row.snapshot)}{note}, but could not read it back: "
            )
            message += explain(exc, cls, row.account, row.bucket)[1]
            return UndoOutcome("undone", message, row.alert_id, current, None, request_id, row.id, user, now)
        message = f"Undone: {label} is back to {describe_config(restored)}{note}."
        if restored != row.snapshot:
            message = f"Restored {label}{note}, but the read-back shows {describe_config(restored)}."
        return UndoOutcome("undone", message, row.alert_id, current, restored, request_id, row.id, user, now)

    # -- plumbing --------------------------------------------------------------------------------

    def _target(self, account: str, region: str, bucket: str | None) -> BpaAction:
        cls = action_for(bucket)
        # write=True: the remediation role. The read-only role never writes.
        return cls(self.aws.client(cls.service, account, region, write=True), account, bucket)

    def _lock(self, account: str, bucket: str | None) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(f"{account}/{bucket or '*'}", threading.Lock())

    def _stale(self, row: Remediation) -> bool:
        return row.at is not None and self.clock() - row.at > self.stale_after


def _already_fixed(live: Remediation) -> FixOutcome:
    when = f" at {live.at:%Y-%m-%d %H:%M} UTC" if live.at else ""
    message = f"Already fixed{when}: Block Public Access was re-enabled for "
    message += f"{target_label(live.account, live.bucket)}; nothing changed twice."
    return FixOutcome(
        "already_fixed",
        message,
        live.alert_id,
        live.snapshot,
        live.applied,
        live.request_id,
        live.id,
        live.by,
        live.at,
        changes=changes_needed(live.snapshot),
    )


def _undo_refusal(row: Remediation) -> UndoOutcome | None:
    if row.status == "undone":
        when = f" at {row.undone_at:%Y-%m-%d %H:%M} UTC" if row.undone_at else ""
        return UndoOutcome(
            "already_undone",
            f"Already undone{when}; nothing changed.",
            row.alert_id,
            row.snapshot,
            row.snapshot,
            remediation_id=row.id,
            by=row.undone_by,
            at=row.undone_at,
        )
    if row.status == "undoing":
        return UndoOutcome(
            "in_progress", "An undo of this fix is already running.", row.alert_id, remediation_id=row.id
        )
    if row.status != "applied":
        message = f"Fix #{row.id} was not applied ({row.status}); nothing to undo."
        return UndoOutcome("nothing_to_undo", message, row.alert_id, remediation_id=row.id)
    return None
