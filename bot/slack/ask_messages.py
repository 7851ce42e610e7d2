"""Every sentence of asking the actor (bot.slack.messages holds the rest; it is full, so these live here).

Functions return Slack mrkdwn. Actor names, reasons and AWS text are escaped with bot.slack.mrkdwn;
Slack ids come from the store (looked up by the bot) or from settings (RESPONDERS), never from a record.
"""

from __future__ import annotations

from datetime import timedelta

from bot.alerts.asks import INTENDED, NOT_ME, RESOLVING, UNREACHABLE, Ask
from bot.alerts.exception_requests import ExceptionRequest
from bot.alerts.lifecycle import Alert
from bot.core.durations import format_duration
from bot.core.shapes import GROUP_ID, USER_ID
from bot.slack.messages import target as alert_target
from bot.slack.mrkdwn import escape, slack_date, user

INTENDED_LABEL, NOT_ME_LABEL, APPROVE_LABEL = "Yes, intended", "Not me", "Approve exception"
MODAL_TITLE, MODAL_SUBMIT = "Yes, intended", "Request"
MODAL_REASON_LABEL = "Why should this bucket be public?"
MODAL_REASON_HINT = "The security team sees this on the alert; a responder approves the exception."
STRANGER = ":no_entry: Only the person who made this change can answer this question."
ALREADY_ANSWERED = "You already answered this; the alert shows your answer."
NOT_ASKED_PRESS = "This question is no longer open."


def responders(ids: tuple[str, ...]) -> str:
    """The responders as mentions: their user groups if any, else the listed users."""
    groups = [f"<!subteam^{g}>" for g in ids if GROUP_ID.match(g)]
    people = [f"<@{u}>" for u in ids if USER_ID.match(u)]
    return ", ".join(groups or people) or "Responders (none configured: set RESPONDERS)"


def span(duration: timedelta) -> str:
    return format_duration(duration, parts=2)


def dm_text(alert: Alert, change: str, when: str, where_from: str, public: str) -> str:
    """The DM's one line: bucket, what changed, when, from where, public now or not."""
    target = alert_target(alert)
    return (f":wave: Did you make this change? {target}: {change} · {when} · from {where_from} · {public}.\n"
            "If it was you and it is meant to be, say why and for how long; if it was not you, say so at once.")


def dm_context(alert: Alert, channel: str) -> str:
    where = f"<#{channel}>" if channel[:1] in ("C", "G") and channel.isalnum() else "the security channel"
    return f"Alert #{alert.id} in {where}. Only you can answer; your answer is shown on the alert."


def dm_answered(answer: str, duration: timedelta | None = None) -> str:
    if answer == NOT_ME:
        return ":rotating_light: You said *not me*. The security team has been told and will look at it now."
    until = f" for {span(duration)}" if duration else ""
    return f":white_check_mark: You said *yes, intended*{until}. A responder will review the exception."


def card_line(ask: Ask, request: ExceptionRequest | None, timeout: timedelta, closed: str = "") -> str:
    """The card's line about asking the actor, under its status line; `closed`: the alert's status once it
    closed (an unanswered question is then moot, and the card says so rather than "no answer yet")."""
    if ask.state == "not_asked":
        return f":robot_face: No person to ask: {escape(ask.reason)}."
    if ask.state == UNREACHABLE:
        return f":grey_question: Could not ask the actor: {escape(ask.reason)}."
    if ask.state == RESOLVING:
        return f":hourglass_flowing_sand: Finding {escape(ask.actor_name)} in Slack to ask them…"
    who = user(ask.slack_user)
    if ask.answer == NOT_ME:
        return f":rotating_light: *Actor denies*: {who} says *not me*{_took(ask)}."
    if ask.answer == INTENDED:
        line = f":raised_hand: {who} says *yes, intended*{_took(ask)}"
        if request is None:
            return line + "."
        line += f": requested exception for {span(request.duration)}, “{escape(request.reason)}”"
        if request.approved_by:
            return line + f" — approved by {user(request.approved_by)}."
        return line + " — *awaiting a responder's approval* (the alert stays open)."
    if closed:
        asked = f"Asked {who} by DM {slack_date(ask.asked_at)}" if ask.asked_at else f"{who} was to be asked by DM"
        return f":speech_balloon: {asked}; no answer, and none needed now: the alert is {escape(closed)}."
    if ask.asked_at is None:
        return f":speech_balloon: Asking {who} by DM…"
    line = f":speech_balloon: Asked {who} by DM {slack_date(ask.asked_at)}; no answer yet"
    if ask.escalated_at is not None:
        line += f" (none in {span(timeout)}: responders told)"
    return line + "."


def _took(ask: Ask) -> str:
    took = ask.time_to_answer
    return f" (answered in {span(took)})" if took is not None else ""


def not_me_note(actor: str, severity: str, mention: str) -> str:
    return (f":rotating_light: {user(actor)} says this change was *not them*. Severity raised to"
            f" *{escape(severity)}*. {mention}: please look now — someone else may be using their access.")


def intended_note(actor: str, request: ExceptionRequest) -> str:
    return (f":raised_hand: {user(actor)} says this is *intended*: “{escape(request.reason, multiline=False)}”,"
            f" for {span(request.duration)}. A responder can approve the exception below; until then the"
            " alert stays open.")


def approved_note(approver: str, request: ExceptionRequest, exception_id: int, until: str) -> str:
    return (f":ballot_box_with_check: {user(approver)} approved {user(request.requested_by)}'s exception"
            f" #{exception_id} until {until}: {escape(request.reason)}")


def approved_told(exception_id: int) -> str:
    return f":ballot_box_with_check: Exception #{exception_id} approved; the alert is closed as accepted."


def timeout_note(actor: str, timeout: timedelta, mention: str) -> str:
    return f":alarm_clock: No answer from {user(actor)} in {span(timeout)}. {mention}: please take a look."


def undelivered_reason(actor: str, error: str) -> str:
    """Why the ask stopped: the card's line after "Could not ask the actor:" (escaped there)."""
    return f"the DM to {actor} could not be delivered (Slack answered {error})"


def undelivered_note(actor: str, error: str, mention: str) -> str:
    return (f":grey_question: The DM to {user(actor)} could not be delivered (Slack answered `{escape(error)}`),"
            f" so nobody will answer it. {mention}: please take a look.")


def own_request(describe: str) -> str:
    """The actor, not a responder, pressing Approve on their own request."""
    return f":no_entry: You asked for this exception, so someone else approves it. {describe}"


def already_approved(request: ExceptionRequest) -> str:
    return f"This exception was already approved by {user(request.approved_by)}; nothing to do."


def late_answer(alert: Alert) -> str:
    return f"Thanks. Alert #{alert.id} is already {escape(alert.status)}, so nothing more is needed."
