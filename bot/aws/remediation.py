"""Fix and undo: re-enable S3 Block Public Access on a bucket or account — or take the public statements
out of an access point's policy — keep a snapshot, restore it. The target's own reads, writes and words
are its FixAction (bot.aws.fix_action); everything here is the same for every target.

Safe to press twice or from two places at once: a per-target lock serialises presses in this
process, and a partial unique index on `remediations` (one live fix per alert, migration
0005_remediation_guard) does the same across processes. AWS errors become outcomes; nothing raises.

Safe across a crash at any point: the snapshot and the intended configuration are in the row before
the AWS write, and an undo's claim records who pressed it before its write. A row left `applying` or
`undoing` longer than STALE_AFTER (its process died, or hangs) is reconciled with the live
configuration — `reconcile()` on start and every few seconds, or at once when someone presses meanwhile:
a fix whose intent was recorded is finished (all four flags on) or found done, and recorded as applied
with its snapshot, so Undo still restores the original; a fix that died before recording its intent
made no AWS call and is marked failed; an undo is finished (snapshot restored) and recorded as undone.
When AWS cannot be read, the row stays in flight and is tried again; presses are told so.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.access_point_policy import AccessPointPolicy
from bot.aws.bpa import action_for
from bot.aws.clients import AWS_ERRORS
from bot.aws.fix_action import FixAction, FixPlan, State, explain
from bot.aws.remediation_outcomes import FixOutcome, Outcome, UndoOutcome, already_fixed, running, undo_refusal
from bot.aws.remediation_store import AlertLike, Remediation, RemediationRows
from bot.core.clock import iso, utcnow
from bot.store.database import Store

# A fix is a read, a write and a read back: seconds. A row in flight longer than this is reconciled.
STALE_AFTER = timedelta(seconds=45)


class AwsLike(Protocol):
    """bot.aws.AwsClients: write=True selects the remediation role; `actor` names the presser to AWS."""

    def client(self, service: str, account_id: str, region: str, *, write: bool = False, actor: str = "") -> Any: ...


class Remediator:
    """Fixes what an alert names (Block Public Access, or an access point's policy) and restores it on undo."""

    def __init__(
        self,
        store: Store,
        aws: AwsLike,
        *,
        dry_run: bool,
        clock: Callable[[], datetime] = utcnow,
        claim_wait_seconds: float = 15.0,
        stale_after: timedelta = STALE_AFTER,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store, self.aws, self.dry_run, self.clock = store, aws, dry_run, clock
        self.sleep = sleep  # between looks at another process's claim
        self.rows = RemediationRows(store)
        self.claim_wait_seconds = claim_wait_seconds
        self.stale_after = stale_after
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def plan(self, alert: AlertLike, user: str = "") -> FixPlan:
        """Read the configuration with the remediation role (as `user`) and list what a fix would change."""
        target = self._target(alert, user)
        where = (alert.id, target.name, alert.account, alert.region, alert.bucket)
        try:
            current = target.read()
        except AWS_ERRORS as exc:
            return FixPlan(*where, None, (), explain(exc, target)[1])
        changes = target.needed(current)
        return FixPlan(*where, current, changes, after=target.desired(current),
                       text=target.plan_summary(current, changes))

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
        with self._lock(alert):
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
        if row.status != "undoing" and (early := undo_refusal(row)) is not None:
            return early
        with self._lock(row):
            row = self.get(remediation_id)
            assert row is not None
            if row.status == "undoing" and self._stale(row):
                return self._finish_undo(row)  # the undo was interrupted: finish it now, for this presser
            if (early := undo_refusal(row)) is not None:
                return early
            if self.dry_run:
                target = self._target(row, user)
                message = f"Dry run: would restore {target.label} to {target.describe(row.snapshot)}."
                message += " Nothing was changed."
                return UndoOutcome(
                    "dry_run", message, row.alert_id, row.applied, row.snapshot, remediation_id=row.id
                )
            if not self.rows.claim_undo(row.id, user, self.clock()):
                # Another process got there between our read and this update.
                fresh = self.get(remediation_id)
                assert fresh is not None
                return undo_refusal(fresh) or UndoOutcome(
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
            return already_fixed(live, self._target(live, ""))
        if not alert.is_open:
            message = f"Alert #{alert.id} is already {alert.status}; nothing was changed."
            return FixOutcome("already_closed", message, alert.id)
        return None

    def _dry_run(self, alert: AlertLike, user: str) -> FixOutcome:
        plan = self.plan(alert, user)
        if plan.error:
            return FixOutcome("failed", plan.error, alert.id)
        rid = self.rows.insert(alert, user, "dry_run", self.clock(), snapshot=plan.current, applied=plan.after)
        message = self._target(alert, user).would(plan.changes)
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
                return already_fixed(live, self._target(live, user))
            if live is not None and live.status == "applying" and self._stale(live):
                # Its process died (or hangs): settle it against AWS instead of waiting or guessing.
                settled = self._finish_fix(live)
                if settled.status != "abandoned":
                    return settled  # applied (this press is answered with it), or in_progress (AWS unreadable)
                continue  # it had made no change: claim again for this press
            if time.monotonic() >= deadline:
                return FixOutcome("in_progress", running(live, self._target(alert, user).label), alert.id,
                                  remediation_id=live.id if live else None, by=live.by if live else "",
                                  at=live.started_at if live else None)
            elif live is not None:
                self.sleep(0.1)  # no lock held across processes; the in-process lock only queues presses

    def _apply(self, alert: AlertLike, user: str, rid: int) -> FixOutcome:
        target = self._target(alert, user)
        before: State = None
        intent_recorded = False
        try:
            before = target.read()
            changes = target.needed(before)
            if not changes:
                self.rows.update(rid, "no_change", snapshot=before, applied=before)
                return FixOutcome("no_change", target.nothing_to_do(), alert.id, before, before, "", rid, user,
                                  self.clock(), verb=target.verb)
            desired = target.desired(before)
            # Snapshot and intent first: a crash after the write can then be finished, never lost.
            self.rows.update(rid, "applying", snapshot=before, intended=desired)
            intent_recorded = True
            request_id = target.put(desired)
        except AWS_ERRORS as exc:
            code, message, request_id = explain(exc, target)
            if intent_recorded and ambiguous(exc):
                # The write may have reached AWS (a timeout, a 5xx): the reconciler reads AWS and settles it.
                return FixOutcome("in_progress", f"AWS did not confirm the change ({message}); the bot checks"
                                  " within a minute and finishes it.", alert.id, remediation_id=rid, by=user)
            self.rows.update(rid, "failed", snapshot=before, error=message, request_id=request_id)
            return FixOutcome(
                "failed", message, alert.id, before, None, request_id, rid, user, error_code=code
            )
        # AWS has changed: the row says applied from here on, so Undo works whatever the read-back says.
        problem, read_back = "", True
        try:
            after: State = target.read()
        except AWS_ERRORS as exc:
            after, problem, read_back = None, explain(exc, target)[1], False
        if not self.rows.finish(rid, "applying", "applied", applied=after if read_back else desired,
                                request_id=request_id):
            done = self.get(rid)  # reconciled meanwhile (this call was slower than STALE_AFTER)
            return already_fixed(done, target) if done is not None and done.status == "applied" else FixOutcome(
                "in_progress", "The fix was settled by another process; see the thread.", alert.id)
        status, message = "applied", target.done(changes)
        if not read_back or not target.same(after, desired):
            status = "unverified"
            problem = problem or f"the read-back shows {target.describe(after)}"
            message = f"Changed {target.label} ({target.note(changes)}), but could not verify it: {problem}"
        return FixOutcome(status, message, alert.id, before, after, request_id, rid, user, self.clock(),
                          changes=changes, note=target.note(changes), verb=target.verb)

    def _restore(self, row: Remediation, user: str) -> UndoOutcome:
        target = self._target(row, user)
        label = target.label
        current: State = None
        read = False
        try:
            current = target.read()
            read = True
            request_id = target.put(row.snapshot)
        except AWS_ERRORS as exc:
            code, message, request_id = explain(exc, target)
            if read and ambiguous(exc):  # the restore may have reached AWS: the reconciler settles it
                return UndoOutcome("in_progress", f"AWS did not confirm the undo ({message}); the bot checks"
                                   " within a minute and finishes it.", row.alert_id, remediation_id=row.id, by=user)
            self.rows.finish(row.id, "undoing", "applied", error=message)
            return UndoOutcome(
                "failed", message, row.alert_id, current, None, request_id, row.id, error_code=code
            )
        now = self.clock()
        if not self.rows.finish(row.id, "undoing", "undone", undone_by=user, undone_at=iso(now), error=None):
            fresh = self.get(row.id)
            refusal = undo_refusal(fresh) if fresh is not None else None
            return refusal or UndoOutcome(
                "in_progress", "The undo was settled by another process; see the thread.", row.alert_id)
        # Someone may have changed it after the fix; the snapshot still wins, but say what was overwritten.
        note = (
            "" if target.same(current, row.applied) else f" (it had changed since the fix: {target.describe(current)})"
        )
        try:
            restored: State = target.read()
        except AWS_ERRORS as exc:
            message = f"Restored {label} to {target.describe(row.snapshot)}{note}, but could not read it back: "
            message += explain(exc, target)[1]
            return UndoOutcome("undone", message, row.alert_id, current, None, request_id, row.id, user, now)
        message = f"Undone: {label} is back to {target.describe(restored)}{note}."
        if not target.same(restored, row.snapshot):
            message = f"Restored {label}{note}, but the read-back shows {target.describe(restored)}."
        return UndoOutcome("undone", message, row.alert_id, current, restored, request_id, row.id, user, now)

    # -- crash recovery --------------------------------------------------------------------------

    def reconcile(self) -> list[Outcome]:
        """Settle every fix or undo in flight longer than STALE_AFTER with AWS (on start, and every few
        seconds). Rows a thread of this process is still working on are left to it."""
        outcomes: list[Outcome] = []
        for row in self.rows.in_flight(self.clock() - self.stale_after):
            lock = self._lock(row)
            if not lock.acquire(blocking=False):
                continue  # a press in this process holds it: it will finish, or reconcile, itself
            try:
                fresh = self.get(row.id)
                if fresh is None or not fresh.in_flight:
                    continue
                outcomes.append(self._finish_fix(fresh) if fresh.status == "applying" else self._finish_undo(fresh))
            finally:
                lock.release()
        return outcomes

    def unsettled(self) -> list[Outcome]:
        """Outcomes recorded but not yet carried to the alert (a crash between the two), as outcomes."""
        outcomes: list[Outcome] = []
        for row in self.rows.unsettled(self.clock() - self.stale_after):
            if row.status == "undone":
                outcomes.append(UndoOutcome("undone", "The undo was recorded; its alert is brought up to date.",
                                            row.alert_id, row.applied, row.snapshot, row.request_id, row.id,
                                            row.undone_by or row.by, row.undone_at))
            else:
                target = self._target(row, row.by)
                changes = target.needed(row.snapshot)
                outcomes.append(FixOutcome(row.status, "The fix was recorded; its alert is brought up to date.",
                                           row.alert_id, row.snapshot, row.applied, row.request_id, row.id, row.by,
                                           row.started_at, changes=changes, note=target.note(changes),
                                           verb=target.verb))
        return outcomes

    def settled(self, remediation_id: int | None) -> None:
        """The alert and card now show this row's outcome (the reconciler leaves it alone)."""
        if remediation_id is not None:
            self.rows.mark_settled(remediation_id, self.clock())

    def _finish_fix(self, row: Remediation) -> FixOutcome:
        """An interrupted fix: applied if AWS has (or now gets) all four flags on; abandoned if it never
        recorded its intent (so it never called AWS); in_progress while AWS cannot be read."""
        target = self._target(row, row.by)  # as the person who pressed Fix
        label = target.label
        if row.intended is None:
            self.rows.finish(row.id, "applying", "failed", error="interrupted before any change to AWS")
            return FixOutcome("abandoned", f"An interrupted fix of {label} had made no change.", row.alert_id,
                              remediation_id=row.id, by=row.by)
        request_id = ""
        try:
            live = target.read()
            if target.needed(live):
                request_id = target.put(row.intended)
                live = target.read()
        except AWS_ERRORS as exc:
            problem = explain(exc, target)[1]
            message = f"A fix of {label} was interrupted and AWS cannot be read yet ({problem}); the bot retries."
            return FixOutcome("in_progress", message, row.alert_id, remediation_id=row.id, by=row.by,
                              at=row.started_at)
        if not self.rows.finish(row.id, "applying", "applied", applied=live, request_id=request_id or row.request_id,
                                error=None):
            done = self.get(row.id)
            return already_fixed(done, target) if done is not None and done.status == "applied" else FixOutcome(
                "in_progress", "Settled by another process; see the thread.", row.alert_id)
        changes = target.needed(row.snapshot)
        message = f"Finished an interrupted fix of {label}: {target.note(changes)}."
        if target.needed(live):
            message = f"Finished an interrupted fix of {label}, but the read-back shows {target.describe(live)}."
        return FixOutcome("applied", message, row.alert_id, row.snapshot, live, request_id, row.id, row.by,
                          row.started_at, changes=changes, note=target.note(changes), verb=target.verb)

    def _finish_undo(self, row: Remediation) -> UndoOutcome:
        """An interrupted undo: the snapshot restored (again, or found restored), recorded as undone."""
        target = self._target(row, row.undone_by or row.by)
        label = target.label
        request_id = ""
        try:
            live = target.read()
            if not target.same(live, row.snapshot):
                request_id = target.put(row.snapshot)
                live = target.read()
        except AWS_ERRORS as exc:
            problem = explain(exc, target)[1]
            message = f"An undo of {label} was interrupted and AWS cannot be read yet ({problem}); the bot retries."
            return UndoOutcome("in_progress", message, row.alert_id, remediation_id=row.id)
        now = self.clock()
        if not self.rows.finish(row.id, "undoing", "undone", undone_at=iso(now), error=None):
            return UndoOutcome("in_progress", "Settled by another process; see the thread.", row.alert_id)
        message = f"Finished an interrupted undo: {label} is back to {target.describe(live)}."
        return UndoOutcome("undone", message, row.alert_id, row.applied, live, request_id, row.id,
                           row.undone_by or row.by, now)

    # -- plumbing --------------------------------------------------------------------------------

    def _target(self, what: AlertLike | Remediation, user: str) -> FixAction:
        """The action for what an alert (or a fix's row) names: its access point, its bucket, or its account."""
        account, region, bucket, point = what.account, what.region, what.bucket, what.access_point
        cls: type[FixAction] = AccessPointPolicy if point else action_for(bucket)
        # write=True: the remediation role. The read-only role never writes. actor=user: the session's
        # SourceIdentity, so the account's own CloudTrail names who pressed the button. The client is made on
        # first use, so a failure to assume the role is handled like any other AWS error.
        return cls(lambda: self.aws.client(cls.service, account, region, write=True, actor=user), account,
                   bucket, point)

    def _lock(self, what: AlertLike | Remediation) -> threading.Lock:
        key = f"{what.account}/{what.bucket or '*'}/{what.access_point or ''}"
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _stale(self, row: Remediation) -> bool:
        return row.at is not None and self.clock() - row.at > self.stale_after


def ambiguous(exc: Exception) -> bool:
    """True when a failed write may still have been applied: no answer (timeout, dropped connection) or
    a server error. A refusal (AccessDenied, NoSuchBucket, throttling) means AWS did not change."""
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) >= 500
    return isinstance(exc, BotoCoreError)
