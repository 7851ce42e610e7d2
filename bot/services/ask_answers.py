"""The actor's answers and the responder's approval: "not me", "yes, intended" (+ modal), Approve exception.

Only the person asked may answer (a stranger is refused); an answer is taken once. "Not me" raises
the alert's severity one step, mentions the responders in the thread and marks the card "actor
denies". "Yes, intended" stores a *requested* exception, shown on the card with an Approve button in
the thread; the alert stays open until a responder approves. The actor approves their own request
only if they are a responder themselves. Every press, allowed or refused, is audited and threaded.
"""

from __future__ import annotations

from bot.alerts.asks import ANSWERED, ASKED, INTENDED, NOT_ME, Ask
from bot.alerts.lifecycle import OPEN, Alert, AlertStateError
from bot.core.durations import DurationError, parse_duration
from bot.services import Services
from bot.services.allow import DEFAULT_ALLOW
from bot.services.reply import Reply, missing, refuse, send_now
from bot.slack import ask as blocks
from bot.slack import ask_messages as say
from bot.slack import messages as msg
from bot.slack.mrkdwn import slack_date

STRANGER_LINE = "refused (only the person asked may answer)"


def check_actor(services: Services, alert_id: int, user: str, action: str, label: str) -> Reply | tuple[Alert, Ask]:
    """The alert and its ask when `user` is the person asked and has not answered; else the audited Reply."""
    s = services
    alert, ask = s.alerts.get(alert_id), s.ask.asks.get(alert_id)
    if alert is None or ask is None:
        return missing(s, user, action, alert_id)
    if not ask.slack_user or ask.slack_user != user:
        s.audit.record(user, action, alert_id, "refused", "not the person asked")
        s.notifier.note(alert_id, msg.press_line(user, label, STRANGER_LINE))
        s.outbox.flush_for(alert_id)
        return Reply(say.STRANGER)
    if ask.state != ASKED:
        s.audit.record(user, action, alert_id, "already_answered", ask.answer)
        return Reply(say.ALREADY_ANSWERED)
    return alert, ask


def not_me(services: Services, alert_id: int, user: str) -> Reply:
    """The actor denies the change: severity up one step, responders mentioned, the card says so."""
    s = services
    checked = check_actor(s, alert_id, user, NOT_ME, say.NOT_ME_LABEL)
    if isinstance(checked, Reply):
        return checked
    alert, ask = checked
    with s.store.atomic():
        if not s.ask.asks.move(alert_id, ASKED, state=ANSWERED, answer=NOT_ME, answered_at=s.clock()):
            return Reply(say.ALREADY_ANSWERED)
        s.audit.record(user, NOT_ME, alert_id, "answered", "the actor says the change was not them")
        if alert.is_open:
            raised = s.alerts.raise_severity(alert_id) or alert
            mention = say.responders(s.settings.responders)
            s.notifier.note(alert_id, say.not_me_note(user, raised.severity, mention))
        s.outbox.enqueue_update(alert_id)
    s.ask.update_dm(ask, NOT_ME)
    send_now(s, alert_id)
    return Reply(say.dm_answered(NOT_ME) if alert.is_open else say.late_answer(alert), silent=alert.is_open)


def intended(services: Services, alert_id: int, user: str, reason: str, duration: str) -> Reply:
    """The modal's answer: a requested exception on the card and an Approve button in the thread."""
    s = services
    checked = check_actor(s, alert_id, user, INTENDED, say.INTENDED_LABEL)
    if isinstance(checked, Reply):
        return checked
    alert, ask = checked
    try:
        span = parse_duration(duration or DEFAULT_ALLOW)
    except DurationError as exc:
        s.audit.record(user, INTENDED, alert_id, "invalid", str(exc))
        return Reply(msg.usage_problem(str(exc)))
    with s.store.atomic():
        if not s.ask.asks.move(alert_id, ASKED, state=ANSWERED, answer=INTENDED, answered_at=s.clock()):
            return Reply(say.ALREADY_ANSWERED)
        if not alert.is_open:
            s.audit.record(user, INTENDED, alert_id, "answered", f"alert already {alert.status}")
            s.outbox.enqueue_update(alert_id)
            request = None
        else:
            request = s.ask.requests.request(alert_id, alert.account, alert.bucket, reason, span, user)
            s.audit.record(user, INTENDED, alert_id, "requested",
                           f"exception request #{request.id} for {say.span(span)}: {reason.strip()[:200]}")
            s.outbox.enqueue_thread(alert_id, *blocks.intended_blocks(user, request))
            s.outbox.enqueue_update(alert_id)
    s.ask.update_dm(ask, INTENDED)
    send_now(s, alert_id)
    if request is None:
        return Reply(say.late_answer(alert))
    return Reply(say.dm_answered(INTENDED, span), silent=True)


def approve(services: Services, request_id: int, user: str) -> Reply:
    """A responder's one click: the requested exception becomes real and the alert closes as accepted."""
    s = services
    request = s.ask.requests.get(request_id)
    if request is None:
        s.audit.record(user, "approve", None, "not_found", f"exception request #{request_id}")
        return Reply(msg.STALE_BUTTON)
    alert_id = request.alert_id
    if user == request.requested_by and not s.permissions.is_responder(user):
        s.audit.record(user, "approve", alert_id, "refused", "the actor's own request")
        s.notifier.note(alert_id, msg.press_line(user, say.APPROVE_LABEL, "refused (their own request)"))
        s.outbox.flush_for(alert_id)
        return Reply(say.own_request(s.permissions.describe("approve")))
    refusal = refuse(s, user, "approve", say.APPROVE_LABEL, alert_id)
    if refusal is not None:
        return refusal
    if request.approved_at is not None:
        s.audit.record(user, "approve", alert_id, "already_approved", f"exception #{request.exception_id}")
        return Reply(say.already_approved(request))
    alert = s.alerts.get(alert_id)
    if alert is None:
        return missing(s, user, "approve", alert_id)
    if not alert.is_open:
        s.audit.record(user, "approve", alert_id, f"already_{alert.status}")
        return Reply(msg.already(alert))
    row = s.ask.requests.approve(request_id, user)
    if row is None:  # another responder approved it a moment ago
        again = s.ask.requests.get(request_id) or request
        s.audit.record(user, "approve", alert_id, "already_approved", f"exception #{again.exception_id}")
        return Reply(say.already_approved(again))
    try:
        s.alerts.transition(alert_id, "accepted", user, msg.accepted_note(row), expect=OPEN, slack_user=True)
    except AlertStateError:
        s.exceptions.revoke(row.id, user)  # closed between the check and now: take the exception back
        return Reply(msg.already(s.alerts.get(alert_id) or alert))
    s.audit.record(user, "approve", alert_id, "accepted", f"exception #{row.id} (request #{request_id})")
    s.notifier.note(alert_id, say.approved_note(user, request, row.id, slack_date(row.expires_at)))
    send_now(s, alert_id)
    return Reply(say.approved_told(row.id))
