"""Finish fixes and undos that a crash or a hung call left in flight, and make the card say what AWS says.

The Remediator settles each row with the live configuration (bot.aws.remediation); this turns each
outcome into what a press would have caused: the alert closed as fixed (with its Undo button) or
opened again, a line in the card's thread, and the card updated. Runs on start and every few seconds
from the scheduler; a press that meets a stale row settles it itself (bot.services.remediate).
"""

from __future__ import annotations

import logging

from bot.alerts.lifecycle import OPEN, AlertStateError
from bot.aws.remediation_outcomes import FixOutcome, Outcome, UndoOutcome
from bot.aws.remediation_store import FixStatus
from bot.services import Services
from bot.services.reply import send_now
from bot.slack import fix_messages as fix_msg
from bot.slack import messages as msg
from bot.slack.blocks import SECTION_TEXT
from bot.slack.mrkdwn import truncate
from bot.slack.replies import fixed_blocks

log = logging.getLogger(__name__)


def reconcile(services: Services) -> int:
    """Settle every stale fix or undo, and every outcome its alert never heard of (the process died
    between the row and the alert); returns how many. AWS that cannot be read is tried next time."""
    settled = 0
    # In flight first: what they finish is settled here, so the second pass does not see it again.
    for outcomes in (services.remediator.reconcile, services.remediator.unsettled):
        for outcome in outcomes():
            if outcome.alert_id is None or outcome.status == FixStatus.IN_PROGRESS:
                log.warning("remediation %s still unsettled: %s", outcome.remediation_id, outcome.message)
                continue
            settle_outcome(services, outcome)
            settled += 1
    return settled


def _moved(services: Services, alert_id: int, to: str, by: str, note: str, expect: tuple[str, ...]) -> bool:
    try:
        services.alerts.transition(alert_id, to, by, note, expect=expect, slack_user=True)
    except AlertStateError:
        return False  # already there (the press got this far), or closed meanwhile: the card says so
    return True


def settle_outcome(services: Services, outcome: Outcome) -> None:
    """What a press would have done with this outcome: alert status, audit, thread line, card update."""
    alert_id = outcome.alert_id
    assert alert_id is not None
    services.audit.record(outcome.by or "bucketwatch", "reconcile", alert_id, outcome.status, outcome.message,
                          outcome.request_id)
    if isinstance(outcome, FixOutcome) and outcome.status == FixStatus.NO_CHANGE:
        _moved(services, alert_id, "resolved", outcome.by, fix_msg.already_on_note(), OPEN)
    elif isinstance(outcome, FixOutcome) and outcome.status == FixStatus.APPLIED:
        if not _moved(services, alert_id, "fixed", outcome.by, fix_msg.fixed_note(outcome.changes, outcome.note), OPEN):
            services.remediator.settled(outcome.remediation_id)
            services.outbox.enqueue_update(alert_id)
            send_now(services, alert_id)
            return  # the press closed it and announced it before it died
        lines = [msg.finished_fix_line(outcome.by, outcome.message),
                 *fix_msg.flag_changes(outcome.before, outcome.after)]
        blocks = fixed_blocks(lines, outcome.request_id, outcome.remediation_id)
        services.outbox.enqueue_thread(alert_id, truncate(lines[0], SECTION_TEXT), blocks)
    elif isinstance(outcome, FixOutcome) and outcome.status == FixStatus.ABANDONED:
        services.notifier.note(alert_id, msg.abandoned_fix_line(outcome.by))
    elif isinstance(outcome, UndoOutcome) and outcome.status == FixStatus.UNDONE:
        _moved(services, alert_id, "open", outcome.by, "fix undone", ("fixed",))
        try:
            services.alerts.recheck(alert_id)
        except Exception:  # the undo stands; a failed re-read only costs the verdict line
            log.warning("live re-check after the interrupted undo on alert %s failed", alert_id, exc_info=True)
        services.notifier.note(alert_id, fix_msg.undone_line(outcome.by, outcome.message))
    services.remediator.settled(outcome.remediation_id)
    services.outbox.enqueue_update(alert_id)
    send_now(services, alert_id)
