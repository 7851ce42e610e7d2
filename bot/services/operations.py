"""What a press or a subcommand does, the same from a card button, App Home or the slash command.

Each operation checks permission, acts through the services, writes the audit row and the line in
the card's thread (allowed or refused, per DESIGN "Who may do what"), sends them, and returns the
mrkdwn to show the presser. Alert ids come from button values or typed text and are looked up here;
nothing else in a payload is trusted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.alerts.exceptions import ExceptionListError
from bot.alerts.lifecycle import OPEN, Alert, AlertStateError
from bot.aws.remediation_outcomes import FixOutcome, UndoOutcome
from bot.core.durations import DurationError, parse_duration
from bot.services import Services
from bot.slack import messages as msg
from bot.slack.blocks import sections
from bot.slack.cards import SECTION_TEXT, fix_confirm, fixable
from bot.slack.mrkdwn import inert, truncate
from bot.sources.lookup import LookupTarget
from bot.sources.who_changed import LookupGuard, Timeline, timeline
from bot.store.index import who_changed as indexed_changes

log = logging.getLogger(__name__)
DEFAULT_ALLOW = "30d"
TIMELINE_LINES = 200


@dataclass
class Reply:
    """What the presser sees: text, and blocks when there is more than a line to show."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    silent: bool = False  # the card shows it already; a private note would only repeat it


def _changed(services: Services, alert_id: int) -> None:
    """Send the card update and thread lines now, and refresh App Home for whoever has it open."""
    deliver(services, alert_id)
    refresh = services.extra.get("refresh_home")
    if refresh is not None:
        refresh()


def refuse(services: Services, user: str, action: str, label: str, alert_id: int | None) -> Reply | None:
    """None when `user` may do responder work; else the audited, threaded refusal."""
    if services.permissions.is_responder(user):
        return None
    services.audit.record(user, action, alert_id, "refused", "not a responder")
    if alert_id is not None:
        services.alerts.note(alert_id, msg.press_line(user, label, msg.REFUSED_LINE))
        deliver(services, alert_id)
    return Reply(msg.refused(services.permissions.describe(label.lower())))


def missing(services: Services, user: str, action: str, alert_id: int) -> Reply:
    """The audited answer to a press or command naming an alert that does not exist."""
    services.audit.record(user, action, alert_id, "not_found")
    return Reply(msg.no_alert(alert_id))


# ---- acknowledge ---------------------------------------------------------------------------------


def acknowledge_in(services: Services, alert_id: int, user: str, channel: str | None) -> Reply:
    """Acknowledge from the slash command or a button, wherever it was pressed.

    DESIGN: "Acknowledge: anyone in the alert channel". A press or command in that channel shows
    membership (Slack delivers it only to people who can post there); App Home and other channels
    are for responders only."""
    s = services
    if (channel and channel == s.settings.alert_channel) or s.permissions.is_responder(user):
        return acknowledge(s, alert_id, user)
    # The refusal is the same whether or not the alert exists: it tells an outsider nothing.
    alert = s.alerts.get(alert_id)
    found = alert.id if alert is not None else None
    s.audit.record(user, "ack", found, "refused", f"from {channel or 'App Home'}, not the alert channel")
    if alert is not None:
        s.alerts.note(alert.id, msg.press_line(user, "Acknowledge", msg.ACK_ELSEWHERE_LINE))
        deliver(s, alert.id)
    return Reply(msg.ack_elsewhere(s.settings.alert_channel))


def acknowledge(services: Services, alert_id: int, user: str) -> Reply:
    """Anyone in the channel: open → acknowledged; the card's status line changes in place."""
    alert = services.alerts.get(alert_id)
    if alert is None:
        return missing(services, user, "ack", alert_id)
    try:
        done = services.alerts.transition(alert_id, "acknowledged", user, expect=("open",), slack_user=True)
    except AlertStateError:
        current = services.alerts.get(alert_id) or alert
        services.audit.record(user, "ack", alert_id, f"already_{current.status}")
        services.alerts.note(alert_id, msg.press_line(user, "Acknowledge", msg.already(current)))
        _changed(services, alert_id)
        return Reply(msg.already(current))
    services.audit.record(user, "ack", alert_id, "acknowledged")
    services.alerts.note(alert_id, msg.ack_line(user))
    _changed(services, alert_id)
    return Reply(msg.acked(done), silent=True)


# ---- fix -----------------------------------------------------------------------------------------


def fix_prompt(services: Services, bucket: str, user: str) -> Reply:
    """`fix <bucket>`: the same danger button and confirm dialog as the card, for each open alert."""
    found = services.alerts.alerts_for(bucket)
    if not found:
        return Reply(msg.no_open_alert_on(bucket))
    refusal = refuse(services, user, "fix", "Re-enable Block Public Access", found[0].id)
    if refusal is not None:
        return refusal
    alerts = [a for a in found if fixable(a, a.exposure)]
    if not alerts:
        services.audit.record(user, "fix", found[0].id, "not_fixable", found[0].detection)
        return Reply(msg.not_fixable(found[0]))
    blocks: list[Block] = []
    for alert in alerts[:10]:
        plan = services.remediator.plan(alert)
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=truncate(msg.fix_prompt(alert, plan.summary()), SECTION_TEXT)))
        )
        button = ButtonElement(
            text="Re-enable Block Public Access",
            action_id="fix",
            value=str(alert.id),
            style="danger",
            confirm=fix_confirm(alert, alert.exposure),
        )
        blocks.append(ActionsBlock(block_id=f"bw-fix-{alert.id}", elements=[button]))
    return Reply(msg.fix_prompt(alerts[0], ""), blocks)


def fix(services: Services, alert_id: int, user: str) -> Reply:
    """Responders: re-enable Block Public Access once, however many presses; everyone told the outcome."""
    alert = services.alerts.get(alert_id)
    if alert is None:
        return missing(services, user, "fix", alert_id)
    refusal = refuse(services, user, "fix", "Re-enable Block Public Access", alert_id)
    if refusal is not None:
        return refusal
    label = "Re-enable Block Public Access"
    if alert.is_open and not fixable(alert, alert.exposure):
        # A button from before this rule, or a typed id: closing it as fixed would be untrue.
        services.audit.record(user, "fix", alert_id, "not_fixable", alert.detection)
        services.alerts.note(alert_id, msg.press_line(user, label, msg.NOT_FIXABLE_LINE))
        deliver(services, alert_id)
        return Reply(msg.not_fixable(alert))
    outcome = services.remediator.fix(alert, user)
    services.audit.record(user, "fix", alert_id, outcome.status, outcome.message, outcome.request_id)
    if outcome.status in ("applied", "unverified"):
        reply = _fixed(services, alert, user, outcome)
    elif outcome.status == "dry_run":
        services.alerts.note(alert_id, msg.dry_run_line(user, outcome.message))
        reply = Reply(":test_tube: " + msg.outcome_text(outcome.message))
    elif outcome.status == "no_change":
        _close(services, alert_id, "resolved", user, msg.already_on_note())
        services.alerts.note(alert_id, msg.press_line(user, label, msg.outcome_text(outcome.message)))
        reply = Reply(msg.outcome_text(outcome.message))
    elif outcome.status == "failed":
        services.alerts.note(alert_id, msg.failed_line(user, label, outcome.message))
        reply = Reply(":x: " + msg.outcome_text(outcome.message))
    else:  # already_fixed, already_closed, in_progress: nothing changed twice
        told = msg.outcome_text(outcome.message, outcome.by if outcome.by != user else "", outcome.at)
        services.alerts.note(alert_id, msg.press_line(user, label, told))
        reply = Reply(told)
    if outcome.status in ("applied", "unverified", "no_change"):
        services.remediator.settled(outcome.remediation_id)  # the alert shows it: nothing left to reconcile
    _changed(services, alert_id)
    return reply


def _fixed(services: Services, alert: Alert, user: str, outcome: FixOutcome) -> Reply:
    _close(services, alert.id, "fixed", user, msg.fixed_note(outcome.changes))
    verdict_line = None
    try:
        verdict = services.alerts.recheck(alert.id)
        verdict_line = verdict.line if verdict is not None else None
    except Exception:  # the fix stands; a failed re-read only costs the verdict line
        log.warning("live re-check after fix of alert %s failed", alert.id, exc_info=True)
    lines = [msg.fixed_line(user, outcome.message), *msg.flag_changes(outcome.before, outcome.after)]
    lines.append(msg.verdict_line(verdict_line))
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(lines), SECTION_TEXT)))]
    if outcome.request_id:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"AWS request id `{outcome.request_id[:100]}`")]))
    if outcome.remediation_id is not None:
        blocks.append(
            ActionsBlock(block_id=f"bw-undo-{outcome.remediation_id}", elements=[undo_button(outcome.remediation_id)])
        )
    services.outbox.enqueue_thread(alert.id, truncate(lines[0], SECTION_TEXT), blocks)
    return Reply(msg.fix_told(outcome.message))


def undo_button(remediation_id: int) -> ButtonElement:
    return ButtonElement(
        text="Undo",
        action_id="undo",
        value=str(remediation_id),
        confirm=ConfirmObject(title=msg.UNDO_CONFIRM_TITLE, text=msg.UNDO_CONFIRM_TEXT, confirm="Undo", deny="Cancel"),
    )


def _close(services: Services, alert_id: int, status: str, user: str, note: str) -> None:
    try:
        services.alerts.transition(alert_id, status, user, note, expect=OPEN, slack_user=True)
    except AlertStateError:
        pass  # Already closed by an event or another press: the card says so already.


# ---- undo ----------------------------------------------------------------------------------------


def undo(services: Services, user: str, *, remediation_id: int | None = None, alert_id: int | None = None) -> Reply:
    """Responders: restore the snapshot of a fix (by its id, or the alert's live fix)."""
    if remediation_id is not None:
        row = services.remediator.get(remediation_id)
        if row is None:
            services.audit.record(user, "undo", None, "not_found", f"remediation {remediation_id}")
            return Reply(msg.STALE_BUTTON)
        alert_id = row.alert_id
    assert alert_id is not None
    if services.alerts.get(alert_id) is None:
        return missing(services, user, "undo", alert_id)
    refusal = refuse(services, user, "undo", "Undo", alert_id)
    if refusal is not None:
        return refusal
    outcome: UndoOutcome = (
        services.remediator.undo(remediation_id, user)
        if remediation_id is not None
        else services.remediator.undo_alert(alert_id, user)
    )
    services.audit.record(user, "undo", alert_id, outcome.status, outcome.message, outcome.request_id)
    if outcome.status == "undone":
        newer = _newer_open(services, alert_id)
        if newer is not None:
            # One open alert per resource: the newer one carries the undo, the fixed one stays closed.
            services.alerts.note(alert_id, msg.undone_elsewhere_line(user, outcome.message, newer))
            services.alerts.note(newer.id, msg.undone_here_line(user, outcome.message, alert_id))
            _recheck(services, newer.id)
            _changed(services, newer.id)
        else:
            try:
                services.alerts.transition(alert_id, "open", user, "fix undone", expect=("fixed",), slack_user=True)
            except AlertStateError:
                pass
            _recheck(services, alert_id)
            services.alerts.note(alert_id, msg.undone_line(user, outcome.message))
        services.remediator.settled(outcome.remediation_id)  # the alert shows it: nothing left to reconcile
        reply = Reply(":leftwards_arrow_with_hook: " + msg.outcome_text(outcome.message))
    elif outcome.status == "failed":
        services.alerts.note(alert_id, msg.failed_line(user, "Undo", outcome.message))
        reply = Reply(":x: " + msg.outcome_text(outcome.message))
    else:
        told = msg.outcome_text(outcome.message, outcome.by if outcome.by != user else "", outcome.at)
        services.alerts.note(alert_id, msg.press_line(user, "Undo", told))
        reply = Reply(told)
    _changed(services, alert_id)
    return reply


def _newer_open(services: Services, alert_id: int) -> Alert | None:
    """Another open (or acknowledged) alert on the same resource as `alert_id`, newest first."""
    alert = services.alerts.get(alert_id)
    if alert is None:
        return None
    same = [a for a in services.alerts.alerts_for(alert.bucket, alert.account)
            if a.resource_key == alert.resource_key and a.id != alert_id]
    return same[0] if same else None


def _recheck(services: Services, alert_id: int) -> None:
    try:
        services.alerts.recheck(alert_id)
    except Exception:  # the undo stands; a failed re-read only costs the verdict line
        log.warning("live re-check after undo on alert %s failed", alert_id, exc_info=True)


# ---- allow ---------------------------------------------------------------------------------------


def parse_allow(reason: str, duration: str) -> dict[str, str]:
    """Field errors for the modal (block id → message); empty when the input is usable."""
    errors = {}
    if not reason.strip():
        errors["reason"] = msg.REASON_REQUIRED
    try:
        parse_duration(duration or DEFAULT_ALLOW)
    except DurationError as exc:
        errors["expiry"] = str(exc)
    return errors


def accept(services: Services, alert_id: int, user: str, reason: str, duration: str) -> Reply:
    """Responders: an exception for the alert's bucket (or account), and the alert closed as accepted."""
    alert = services.alerts.get(alert_id)
    if alert is None:
        return missing(services, user, "allow", alert_id)
    refusal = refuse(services, user, "allow", "Mark as expected", alert_id)
    if refusal is not None:
        return refusal
    if not alert.is_open:  # a modal opened before the alert was fixed or resolved: no exception for it
        return _stale_allow(services, alert, user)
    try:
        expires = services.clock() + parse_duration(duration or DEFAULT_ALLOW)
        row = services.exceptions.add(alert.bucket, reason, user, expires, account=alert.account)
    except (DurationError, ExceptionListError) as exc:
        services.audit.record(user, "allow", alert_id, "invalid", str(exc))
        return Reply(msg.usage_problem(str(exc)))
    try:
        services.alerts.transition(alert_id, "accepted", user, msg.accepted_note(row), expect=OPEN, slack_user=True)
    except AlertStateError:  # closed between the check and now: take the exception back
        services.exceptions.revoke(row.id, user)
        return _stale_allow(services, services.alerts.get(alert_id) or alert, user)
    services.audit.record(user, "allow", alert_id, "accepted", f"exception #{row.id}")
    services.alerts.note(alert_id, msg.accepted_line(user, row))
    _changed(services, alert_id)
    return Reply(msg.allow_told(row, [alert_id]), silent=True)


def _stale_allow(services: Services, alert: Alert, user: str) -> Reply:
    services.audit.record(user, "allow", alert.id, f"already_{alert.status}")
    services.alerts.note(alert.id, msg.press_line(user, "Mark as expected", msg.already(alert)))
    _changed(services, alert.id)
    return Reply(msg.already(alert))


def allow_bucket(services: Services, bucket: str, duration: str, reason: str, user: str) -> Reply:
    """`allow <bucket> <duration> <reason>`: an exception in any account; open alerts on it accepted."""
    open_alerts = services.alerts.alerts_for(bucket)
    refusal = refuse(services, user, "allow", "Allow", open_alerts[0].id if open_alerts else None)
    if refusal is not None:
        return refusal
    try:
        expires = services.clock() + parse_duration(duration)
        row = services.exceptions.add(bucket, reason, user, expires)
    except (DurationError, ExceptionListError) as exc:
        services.audit.record(user, "allow", None, "invalid", str(exc))
        return Reply(msg.usage_problem(str(exc)))
    services.audit.record(user, "allow", None, "accepted", f"exception #{row.id} for {bucket}")
    closed = []
    for alert in open_alerts:
        services.audit.record(user, "allow", alert.id, "accepted", f"exception #{row.id}")
        _close(services, alert.id, "accepted", user, msg.accepted_note(row))
        services.alerts.note(alert.id, msg.accepted_line(user, row))
        closed.append(alert.id)
        _changed(services, alert.id)
    return Reply(msg.allow_told(row, closed))


# ---- who changed ---------------------------------------------------------------------------------


def who_changed(services: Services, bucket: str, user: str, *, days: int = 90, alert: Alert | None = None) -> Reply:
    """Anyone: the bucket's timeline, newest first, saying which source answered."""
    if not bucket and alert is not None:
        # An account-level alert: its changes are in the index under no bucket, and only this
        # account's (every account's account-level writes share bucket '').
        rows = indexed_changes(
            services.store, "", account=alert.account, days=days, now=services.clock(), limit=TIMELINE_LINES
        )
        found = Timeline("", days, rows, "index" if rows else "none")
    else:
        targets = [LookupTarget(alert.account, alert.region)] if alert is not None and alert.account else None
        # One guard per bot: the LookupEvents fallback is bounded however many people ask at once.
        guard = services.extra.setdefault("who_changed_guard", LookupGuard())
        found = timeline(
            services.store, services.aws, bucket, days=days, targets=targets, now=services.clock(),
            limit=TIMELINE_LINES, guard=guard,
        )
    alert_id = alert.id if alert is not None else None
    services.audit.record(user, "who_changed", alert_id, found.source, f"{len(found.changes)} changes to {bucket}")
    if alert_id is not None:
        services.alerts.note(alert_id, msg.who_changed_line(user, len(found.changes), found.source))
        deliver(services, alert_id)
    label = bucket or (f"account {alert.account}" if alert is not None else "")
    head = msg.timeline_head(label, days, found.source, len(found.changes))
    note = msg.lookup_errors(found.errors) if found.errors else ""
    lines = [msg.change_line(c) for c in found.changes]
    return Reply(head, sections(head, lines, note=note))


def parse_days(text: str | None, default: int = 90) -> int | None:
    if text is None:
        return default
    value = text.strip().lower().removesuffix("d")
    return int(value) if value.isdigit() and 0 < int(value) <= 3650 else None


def allow_expiry_default() -> str:
    return DEFAULT_ALLOW


def as_dicts(blocks: list[Any]) -> list[dict[str, Any]]:
    return inert(blocks)  # mrkdwn objects verbatim: attacker text cannot auto-link or mention


def deliver(services: Services, alert_id: int | None = None, *, wait: float = 3.0) -> None:
    """Send what the press put in the outbox now (card update, thread lines), not at the next job."""
    deadline = time.monotonic() + wait
    while True:
        services.outbox.flush()
        if alert_id is None or not _due_for(services, alert_id) or time.monotonic() > deadline:
            return
        # Another thread held the flush lock: its pass may have missed our rows; go again shortly.
        time.sleep(0.05)


def _due_for(services: Services, alert_id: int) -> bool:
    row = services.store.db.execute(
        "SELECT count(*) FROM outbox o JOIN alerts a ON a.id = o.alert_id"
        " WHERE o.alert_id = ? AND o.sent_at IS NULL AND o.attempts = 0 AND (a.ts IS NOT NULL OR o.kind = 'card')",
        [alert_id],
    ).fetchone()
    return bool(row and row[0])
