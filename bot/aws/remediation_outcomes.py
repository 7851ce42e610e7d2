"""What a fix or an undo press comes to (plain text; the caller escapes it for Slack), and the answers
to presses that change nothing: already fixed, already undone, or still running."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.aws.fix_action import FixAction, State
from bot.aws.remediation_store import Remediation


@dataclass(frozen=True)
class Outcome:
    """The result of a press: `message` is plain text (the caller escapes it for Slack)."""

    status: str
    message: str
    alert_id: int | None = None
    before: State = None
    after: State = None
    request_id: str = ""
    remediation_id: int | None = None
    by: str = ""  # who did it; for already_fixed / already_undone, the first presser
    at: datetime | None = None
    error_code: str = ""


@dataclass(frozen=True)
class FixOutcome(Outcome):
    """Fix status: applied|unverified|dry_run|no_change|already_fixed|already_closed|in_progress|failed
    (and abandoned, only inside reconciliation: an interrupted fix that had made no change)."""

    changes: tuple[str, ...] = ()
    note: str = ""  # the alert history's short line: "turned on A, B"
    verb: str = ""  # what the fix did, for the thread: "re-enabled Block Public Access"

    @property
    def changed_aws(self) -> bool:
        return self.status in ("applied", "unverified")


@dataclass(frozen=True)
class UndoOutcome(Outcome):
    """An undo: undone | dry_run | already_undone | nothing_to_undo | not_found | in_progress | failed."""


def running(live: Remediation | None, label: str) -> str:
    """What a press is told while another fix or undo of the same alert (of `label`) is in flight."""
    if live is None:
        return f"A fix or undo of {label} is already running; its result will be posted in the thread."
    what = "An undo" if live.status == "undoing" else "A fix"
    who = live.undone_by if live.status == "undoing" and live.undone_by else live.by
    when = f" at {live.started_at:%H:%M:%S} UTC" if live.started_at else ""
    return (f"{what} of {label} started{when} by {who or 'someone'} is still running; its result will be posted"
            f" in the thread. If it was interrupted, the bot checks AWS within a minute and finishes it.")


def already_fixed(live: Remediation, action: FixAction) -> FixOutcome:
    when = f" at {live.at:%Y-%m-%d %H:%M} UTC" if live.at else ""
    message = f"Already fixed{when} ({action.verb} for {action.label}); nothing changed twice."
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
        changes=action.needed(live.snapshot),
        verb=action.verb,
    )


def undo_refusal(row: Remediation) -> UndoOutcome | None:
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
        message = "An undo of this fix is already running; its result will be posted in the thread. If it was"
        message += " interrupted, the bot checks AWS within a minute and finishes it."
        return UndoOutcome("in_progress", message, row.alert_id, remediation_id=row.id, by=row.undone_by,
                           at=row.started_at)
    if row.status != "applied":
        message = f"Fix #{row.id} was not applied ({row.status}); nothing to undo."
        return UndoOutcome("nothing_to_undo", message, row.alert_id, remediation_id=row.id)
    return None
