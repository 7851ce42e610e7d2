"""Fix and undo from Slack: responders re-enable Block Public Access once, and restore it exactly."""

from __future__ import annotations

import logging

from slack_sdk.models.blocks import Block

from bot.alerts.lifecycle import OPEN, Alert, AlertStateError
from bot.aws.remediation_outcomes import FixOutcome, UndoOutcome
from bot.aws.remediation_store import FixStatus
from bot.services import Services
from bot.services.reply import Reply, missing, refuse, send_now
from bot.slack import fix_messages as fix_msg
from bot.slack import messages as msg
from bot.slack.blocks import SECTION_TEXT
from bot.slack.cards import fixable
from bot.slack.mrkdwn import truncate
from bot.slack.replies import fix_prompt_blocks, fixed_blocks

log = logging.getLogger(__name__)


def fix_prompt(services: Services, bucket: str, user: str) -> Reply:
    """`fix <bucket>`: the same danger button and confirm dialog as the card, for each open alert."""
    found = services.alerts.alerts_for(bucket)
    if not found:
        return Reply(msg.no_open_alert_on(bucket))
    refusal = refuse(services, user, "fix", fix_msg.fix_label(found[0]), found[0].id)
    if refusal is not None:
        return refusal
    alerts = [a for a in found if fixable(a, a.exposure)]
    if not alerts:
        services.audit.record(user, "fix", found[0].id, "not_fixable", found[0].detection)
        return Reply(msg.not_fixable(found[0]))
    blocks: list[Block] = []
    for alert in alerts[:10]:
        blocks += fix_prompt_blocks(alert, services.remediator.plan(alert, user).summary())
    return Reply(fix_msg.fix_prompt(alerts[0], ""), blocks)


def fix(services: Services, alert_id: int, user: str) -> Reply:
    """Responders: re-enable Block Public Access once, however many presses; everyone told the outcome."""
    alert = services.alerts.get(alert_id)
    if alert is None:
        return missing(services, user, "fix", alert_id)
    label = fix_msg.fix_label(alert)
    refusal = refuse(services, user, "fix", label, alert_id)
    if refusal is not None:
        return refusal
    note = services.notifier.note
    if alert.is_open and not fixable(alert, alert.exposure):
        # A button from before this rule, or a typed id: closing it as fixed would be untrue.
        services.audit.record(user, "fix", alert_id, "not_fixable", alert.detection)
        note(alert_id, msg.press_line(user, label, msg.NOT_FIXABLE_LINE))
        services.outbox.flush_for(alert_id)
        return Reply(msg.not_fixable(alert))
    outcome = services.remediator.fix(alert, user)
    services.audit.record(user, "fix", alert_id, outcome.status, outcome.message, outcome.request_id)
    if outcome.status in (FixStatus.APPLIED, FixStatus.UNVERIFIED):
        reply = _fixed(services, alert, user, outcome)
    elif outcome.status == FixStatus.DRY_RUN:
        note(alert_id, fix_msg.dry_run_line(user, outcome.message, label))
        reply = Reply(":test_tube: " + fix_msg.outcome_text(outcome.message))
    elif outcome.status == FixStatus.NO_CHANGE:
        _close(services, alert_id, "resolved", user, fix_msg.already_on_note(alert))
        note(alert_id, msg.press_line(user, label, fix_msg.outcome_text(outcome.message)))
        reply = Reply(fix_msg.outcome_text(outcome.message))
    elif outcome.status == FixStatus.FAILED:
        note(alert_id, fix_msg.failed_line(user, label, outcome.message))
        reply = Reply(":x: " + fix_msg.outcome_text(outcome.message))
    else:  # already_fixed, already_closed, in_progress: nothing changed twice
        told = fix_msg.outcome_text(outcome.message, outcome.by if outcome.by != user else "", outcome.at)
        note(alert_id, msg.press_line(user, label, told))
        reply = Reply(told)
    if outcome.status in (FixStatus.APPLIED, FixStatus.UNVERIFIED, FixStatus.NO_CHANGE):
        services.remediator.settled(outcome.remediation_id)  # the alert shows it: nothing left to reconcile
    send_now(services, alert_id)
    return reply


def _fixed(services: Services, alert: Alert, user: str, outcome: FixOutcome) -> Reply:
    _close(services, alert.id, "fixed", user, fix_msg.fixed_note(outcome.changes, outcome.note))
    verdict_line = None
    try:
        verdict = services.alerts.recheck(alert.id)
        verdict_line = verdict.line if verdict is not None else None
    except Exception:  # the fix stands; a failed re-read only costs the verdict line
        log.warning("live re-check after fix of alert %s failed", alert.id, exc_info=True)
    lines = [fix_msg.fixed_line(user, outcome.message, outcome.verb),
             *fix_msg.flag_changes(outcome.before, outcome.after)]
    lines.append(fix_msg.verdict_line(verdict_line))
    blocks = fixed_blocks(lines, outcome.request_id, outcome.remediation_id)
    services.outbox.enqueue_thread(alert.id, truncate(lines[0], SECTION_TEXT), blocks)
    return Reply(fix_msg.fix_told(outcome.message))


def _close(services: Services, alert_id: int, status: str, user: str, note: str) -> None:
    try:
        services.alerts.transition(alert_id, status, user, note, expect=OPEN, slack_user=True)
    except AlertStateError:
        pass  # Already closed by an event or another press: the card says so already.


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
    note = services.notifier.note
    if outcome.status == FixStatus.UNDONE:
        newer = _newer_open(services, alert_id)
        if newer is not None:
            # One open alert per resource: the newer one carries the undo, the fixed one stays closed.
            note(alert_id, msg.undone_elsewhere_line(user, outcome.message, newer))
            note(newer.id, msg.undone_here_line(user, outcome.message, alert_id))
            _recheck(services, newer.id)
            send_now(services, newer.id)
        else:
            try:
                services.alerts.transition(alert_id, "open", user, "fix undone", expect=("fixed",), slack_user=True)
            except AlertStateError:
                pass
            _recheck(services, alert_id)
            note(alert_id, fix_msg.undone_line(user, outcome.message))
        services.remediator.settled(outcome.remediation_id)  # the alert shows it: nothing left to reconcile
        reply = Reply(":leftwards_arrow_with_hook: " + fix_msg.outcome_text(outcome.message))
    elif outcome.status == FixStatus.FAILED:
        note(alert_id, fix_msg.failed_line(user, "Undo", outcome.message))
        reply = Reply(":x: " + fix_msg.outcome_text(outcome.message))
    else:
        told = fix_msg.outcome_text(outcome.message, outcome.by if outcome.by != user else "", outcome.at)
        note(alert_id, msg.press_line(user, "Undo", told))
        reply = Reply(told)
    send_now(services, alert_id)
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
