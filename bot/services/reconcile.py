"""Finish fixes and undos that a crash or a hung call left in flight, and make the card say what AWS says.

The Remediator settles each row with the live configuration (bot.aws.remediation); this turns each
outcome into what a press would have caused: the alert closed as fixed (with its Undo button) or
opened again, a line in the card's thread, and the card updated. Runs on start and every few seconds
from the scheduler; a press that meets a stale row settles it itself (bot.services.operations).
"""

from __future__ import annotations

import logging

from slack_sdk.models.blocks import ActionsBlock, Block, MarkdownTextObject, SectionBlock

from bot.alerts.lifecycle import OPEN, AlertStateError
from bot.aws.remediation import FixOutcome, Outcome, UndoOutcome
from bot.services import Services
from bot.services.operations import deliver, undo_button
from bot.slack import messages as msg
from bot.slack.cards import SECTION_TEXT
from bot.slack.mrkdwn import truncate

log = logging.getLogger(__name__)


def reconcile(services: Services) -> int:
    """Settle every stale fix or undo; returns how many were settled (in_progress ones are retried)."""
    settled = 0
    for outcome in services.remediator.reconcile():
        if outcome.alert_id is None or outcome.status == "in_progress":
            log.warning("remediation %s still unsettled: %s", outcome.remediation_id, outcome.message)
            continue
        settle(services, outcome)
        settled += 1
    return settled


def settle(services: Services, outcome: Outcome) -> None:
    """What a press would have done with this outcome: alert status, audit, thread line, card update."""
    alert_id = outcome.alert_id
    assert alert_id is not None
    services.audit.record(outcome.by or "bucketwatch", "reconcile", alert_id, outcome.status, outcome.message,
                          outcome.request_id)
    if isinstance(outcome, FixOutcome) and outcome.status == "applied":
        try:
            services.alerts.transition(alert_id, "fixed", outcome.by, msg.fixed_note(outcome.changes), expect=OPEN,
                                       slack_user=True)
        except AlertStateError:
            pass  # closed meanwhile (resolved by an event, or by another process): the card says so
        lines = [msg.finished_fix_line(outcome.by, outcome.message), *msg.flag_changes(outcome.before, outcome.after)]
        blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(lines), SECTION_TEXT)))]
        if outcome.remediation_id is not None:
            button = undo_button(outcome.remediation_id)
            blocks.append(ActionsBlock(block_id=f"bw-undo-{outcome.remediation_id}", elements=[button]))
        services.outbox.enqueue_thread(alert_id, truncate(lines[0], SECTION_TEXT), blocks)
    elif isinstance(outcome, FixOutcome) and outcome.status == "abandoned":
        services.alerts.note(alert_id, msg.abandoned_fix_line(outcome.by))
    elif isinstance(outcome, UndoOutcome) and outcome.status == "undone":
        try:
            services.alerts.transition(alert_id, "open", outcome.by, "fix undone", expect=("fixed",), slack_user=True)
        except AlertStateError:
            pass
        try:
            services.alerts.recheck(alert_id)
        except Exception:  # the undo stands; a failed re-read only costs the verdict line
            log.warning("live re-check after the interrupted undo on alert %s failed", alert_id, exc_info=True)
        services.alerts.note(alert_id, msg.undone_line(outcome.by, outcome.message))
    services.outbox.enqueue_update(alert_id)
    deliver(services, alert_id)
