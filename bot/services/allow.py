"""Exceptions from Slack: "Mark as expected…", `allow <bucket> …` and `revoke <id>` (responders only)."""

from __future__ import annotations

import re

from bot.alerts.exceptions import ExceptionListError
from bot.alerts.lifecycle import OPEN, Alert, AlertStateError
from bot.core.durations import DurationError, parse_duration
from bot.services import Services
from bot.services.reply import Reply, missing, refuse, send_now
from bot.slack import messages as msg
from bot.slack.modals import DEFAULT_EXPIRY

DEFAULT_ALLOW = DEFAULT_EXPIRY  # the modal offers the same default


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
    """Responders: an exception for exactly what the alert names (its bucket, access point or account), and
    the alert closed as accepted."""
    alert = services.alerts.get(alert_id)
    if alert is None:
        return missing(services, user, "allow", alert_id)
    refusal = refuse(services, user, "allow", "Mark as expected", alert_id)
    if refusal is not None:
        return refusal
    if not alert.is_open:  # a modal opened before the alert was fixed or resolved: no exception for it
        return stale_allow(services, alert, user)
    try:
        expires = services.clock() + parse_duration(duration or DEFAULT_ALLOW)
        row = services.exceptions.add(alert.bucket, reason, user, expires, account=alert.account,
                                      access_point=alert.access_point)
    except (DurationError, ExceptionListError) as exc:
        services.audit.record(user, "allow", alert_id, "invalid", str(exc))
        return Reply(msg.usage_problem(str(exc)))
    try:
        services.alerts.transition(alert_id, "accepted", user, msg.accepted_note(row), expect=OPEN, slack_user=True)
    except AlertStateError:  # closed between the check and now: take the exception back
        services.exceptions.revoke(row.id, user)
        return stale_allow(services, services.alerts.get(alert_id) or alert, user)
    services.audit.record(user, "allow", alert_id, "accepted", f"exception #{row.id}")
    services.notifier.note(alert_id, msg.accepted_line(user, row))
    send_now(services, alert_id)
    return Reply(msg.allow_told(row, [alert_id]), silent=True)


def stale_allow(services: Services, alert: Alert, user: str) -> Reply:
    """A press on "Mark as expected…" for an alert that is no longer open: audited and said in the thread."""
    services.audit.record(user, "allow", alert.id, f"already_{alert.status}")
    services.notifier.note(alert.id, msg.press_line(user, "Mark as expected", msg.already(alert)))
    send_now(services, alert.id)
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
        try:
            services.alerts.transition(alert.id, "accepted", user, msg.accepted_note(row), expect=OPEN,
                                       slack_user=True)
        except AlertStateError:
            pass  # closed by an event or another press meanwhile: the card says so already
        services.notifier.note(alert.id, msg.accepted_line(user, row))
        closed.append(alert.id)
        send_now(services, alert.id)
    return Reply(msg.allow_told(row, closed))


def revoke(services: Services, exception_id: int, user: str) -> Reply:
    """`revoke <exception-id>` (responders): the exception ends now; alerts it closed stay closed."""
    s = services
    refusal = refuse(s, user, "revoke", "Revoke", None)
    if refusal is not None:
        return refusal
    try:
        row = s.exceptions.get(exception_id)
    except ExceptionListError:
        s.audit.record(user, "revoke", None, "not_found", f"exception #{exception_id}")
        return Reply(msg.no_exception(exception_id))
    if row.revoked_at is not None:
        s.audit.record(user, "revoke", None, "already_revoked", f"exception #{row.id}")
        return Reply(msg.already_revoked(row))
    row = s.exceptions.revoke(row.id, user)
    s.audit.record(user, "revoke", None, "revoked", f"exception #{row.id} for {row.label}")
    # The alerts it closed stay closed (a revoke is not a finding); their threads are told, and the
    # next change to the bucket opens a new alert because no exception covers it any more.
    marker = re.compile(rf"exception #{row.id}\b")
    closed = [
        a
        for a in s.alerts.alerts_for(row.bucket, row.account, open_only=False)
        if a.status == "accepted" and marker.search(f"{a.closed_by or ''} {a.close_reason or ''}")
    ]
    for alert in closed:
        s.audit.record(user, "revoke", alert.id, "revoked", f"exception #{row.id}; alert stays accepted")
        if alert.ts:  # an alert the exception suppressed was never posted: no thread to tell
            s.notifier.note(alert.id, msg.revoked_line(user, row))
            s.outbox.flush_for(alert.id)
    return Reply(msg.revoked_told(row, [a.id for a in closed]))
