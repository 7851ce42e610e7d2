"""Every sentence the Slack side says to people, in one place (as bolt keeps its own in logger/messages).

Functions return Slack mrkdwn. Anything a caller or an AWS record chose (bucket names, reasons, actor
names, user agents, AWS error text) is escaped here with bot.mrkdwn, so a `<!channel>` in it is text.
Slack user ids become mentions through `mrkdwn.user`, called only on values known to be Slack ids
(an IAM user may be named `U12345678`); an AWS actor's name goes through `mrkdwn.escape`.
"""

from __future__ import annotations

from datetime import timedelta

from bot.alerts.exceptions import ExceptionRow
from bot.alerts.lifecycle import Alert
from bot.core.durations import format_duration
from bot.slack.mrkdwn import code, escape, slack_date, user
from bot.sources.health import SourceHealth
from bot.store.index import Change

GENERIC_ERROR = ":warning: Something went wrong on my side while handling that. It has been logged; please try again."
STALE_BUTTON = "That button does not point at an alert any more; use the slash command's `alerts` to see what is open."
NO_OPEN_ALERTS = ":white_check_mark: No open alerts."
NO_EXCEPTIONS = "No active exceptions."
WORKING = ":hourglass_flowing_sand: Working on it…"
MODAL_TITLE = "Mark as expected"
MODAL_SUBMIT = "Accept"
MODAL_REASON_LABEL = "Why is this bucket meant to be public?"
MODAL_REASON_HINT = "Shown on the card and in the allow list; the owner is you."
MODAL_EXPIRY_LABEL = "For how long?"
MODAL_EXPIRY_HINT = "e.g. 30d, 12h, 2w. After that, changes alert again and the bucket is re-checked."
REASON_REQUIRED = "Say why, so the next person knows."
SOURCE_NAMES = {"index": "the local index", "lookup": "CloudTrail LookupEvents", "none": "no source"}


def who(user_id: str) -> str:
    return user(user_id)


def target(alert: Alert) -> str:
    if alert.access_point:
        return f"access point {code(alert.access_point)} in account {code(alert.account)}"
    return f"bucket {code(alert.bucket)}" if alert.bucket else f"account {code(alert.account)}"


def exception_target(row: ExceptionRow) -> str:
    if row.access_point:
        return f"access point {code(row.access_point)} in account {code(row.account)}"
    return code(row.bucket) if row.bucket else f"account {code(row.account)}"


def alert_ref(alert: Alert) -> str:
    return f"alert #{alert.id} ({target(alert)})"


def closer(alert: Alert) -> str:
    """Who closed the alert: a mention for a Slack user, plain text for an AWS actor or an exception."""
    if alert.closed_by_slack:
        return user(alert.closed_by)
    return escape(alert.closed_by or "someone")


# ---- slash command -----------------------------------------------------------------------------


def help_text(command: str, entries: list[tuple[str, str, str]]) -> str:
    """`entries`: (name, arguments, help) per subcommand, in the registry's order."""
    lines = [f"*{escape(command)}* — public S3 buckets, from Slack. Subcommands:"]
    for name, args, text in entries:
        usage = f"{command} {name}" + (f" {args}" if args else "")
        lines.append(f"• `{escape(usage)}` — {escape(text)}")
    return "\n".join(lines)


def unknown_input(text: str) -> str:
    return f"I did not understand {code(text[:100])}. Here is what I can do:"


def usage_problem(problem: str) -> str:
    return f":warning: {escape(problem)}"


def no_alert(alert_id: int | str) -> str:
    return f"There is no alert #{escape(alert_id)}."


def no_open_alert_on(bucket: str) -> str:
    return f"No open alert on {code(bucket)}; fixes act on open alerts (see `alerts`)."


def alert_line(alert: Alert) -> str:
    state: str = alert.status
    if alert.status == "acknowledged":
        state = f"acknowledged by {user(alert.acknowledged_by)}"
    return (
        f"• *#{alert.id}* {escape(alert.severity)} · {target(alert)} in {code(alert.account)}"
        f" · {escape(alert.title)} · {state} · opened {slack_date(alert.opened_at)}"
    )


def exception_line(row: ExceptionRow) -> str:
    where = code(row.bucket) if row.bucket else "the account itself"
    account = f"account {code(row.account)}" if row.account else "any account"
    return (
        f"• *#{row.id}* {where} in {account} · until {slack_date(row.expires_at)}"
        f" · {escape(row.reason)} · owner {user(row.owner)}"
    )


def health_line(h: SourceHealth) -> str:
    mark = ":white_check_mark:" if h.ok else ":warning:"
    seen = slack_date(h.last_success) if h.last_success else "never"
    lag = f" · lag {format_duration(timedelta(seconds=h.lag_seconds))}" if h.lag_seconds is not None else ""
    error = f" · {escape(h.last_error[:200])}" if h.last_error else ""
    return f"{mark} {code(h.source)} · last success {seen}{lag}{error}"


def status_summary(
    *, open_count: int, mode: str, dry_run: bool, pending: int, responders: str, failed: int = 0
) -> str:
    lines = [
        f"*bucketwatch status* · {open_count} open alert{'s' if open_count != 1 else ''} · {escape(mode)}",
        "Fixes are a *dry run* (DRY_RUN=true): nothing is changed." if dry_run else "Fixes change AWS.",
        f"Slack messages waiting to be sent: {pending}",
        responders,
    ]
    if failed:
        lines.insert(3, f":warning: Slack messages given up after repeated errors: {failed} (check the channel"
                        " and the token's scopes with `python -m bot doctor`; the log has each error)")
    return "\n".join(lines)


NO_SOURCES = (
    "No pollers configured (set AWS_ACCOUNTS and AWS_REGIONS, TRAIL_BUCKETS, EVENT_QUEUE_URLS or TRAIL_QUEUE_URLS)."
)


def truncated(shown: int, total: int) -> str:
    return f"_Showing {shown} of {total}; the rest did not fit in one Slack message._"


# ---- acknowledge -------------------------------------------------------------------------------


def acked(alert: Alert) -> str:
    return f":eyes: You acknowledged {alert_ref(alert)}."


def ack_line(user_id: str) -> str:
    return f":eyes: Acknowledged by {user(user_id)}."


def already(alert: Alert) -> str:
    """What a press on an alert that moved on is told."""
    if alert.status == "acknowledged":
        return f"{alert_ref(alert).capitalize()} was already acknowledged by {user(alert.acknowledged_by)}."
    if alert.status in ("fixed", "accepted", "resolved"):
        by = f" by {closer(alert)}" if alert.closed_by else ""
        return f"{alert_ref(alert).capitalize()} is already {alert.status}{by}; nothing to do."
    return f"{alert_ref(alert).capitalize()} is {alert.status}."


def not_fixable(alert: Alert) -> str:
    """Told to whoever asks to fix an alert that Block Public Access would not close."""
    return (
        f":no_entry_sign: {alert_ref(alert).capitalize()} is not public access ({escape(alert.title)}), so"
        " re-enabling Block Public Access would not close it and nothing was changed. Change the bucket"
        " policy or grant itself, or use *Mark as expected…* if it is meant to be."
    )


NOT_FIXABLE_LINE = "refused (Block Public Access does not close this kind of alert)"


def press_line(user_id: str, action: str, outcome: str) -> str:
    """The thread line for a press that changed nothing (refused, already done, failed)."""
    return f"{user(user_id)} pressed *{escape(action)}*: {outcome}"


# ---- thread notes from the alert engine ----------------------------------------------------------


def resolved_note(reason: str) -> str:
    return f":large_green_circle: Resolved: {escape(reason)}. Nothing left to fix."


def partial_note(reason: str, left: list[str]) -> str:
    return f":large_yellow_circle: {escape(reason)}. Still open: {escape(', '.join(left))}."


def reopened_note(why: str) -> str:
    return f":red_circle: Reopened: {escape(why)}"


def reply_cap_note(detection_name: str, shown: int) -> str:
    """Once per detection per alert, when its thread replies stop (a bulk change must not flood)."""
    return (
        f":information_source: …and more changes of this kind ({escape(detection_name)}); after {shown} replies"
        " they are no longer posted one by one. See *Who changed this?* for all of them."
    )


# ---- permissions -------------------------------------------------------------------------------


def refused(describe: str) -> str:
    # `describe` comes from Permissions.describe(): ids from settings, already mrkdwn.
    return f":no_entry: {describe}"


REFUSED_LINE = "refused (not a responder)"

# ---- allow (exceptions) ------------------------------------------------------------------------


def accepted_line(user_id: str, row: ExceptionRow) -> str:
    return (
        f":ballot_box_with_check: {user(user_id)} marked this as expected until {slack_date(row.expires_at)}"
        f" (exception #{row.id}): {escape(row.reason)}"
    )


def accepted_note(row: ExceptionRow) -> str:
    return f"{row.reason} (exception #{row.id}, until {row.expires_at:%Y-%m-%d})"


def allow_told(row: ExceptionRow, closed: list[int]) -> str:
    where = exception_target(row)
    until = slack_date(row.expires_at)
    text = f":ballot_box_with_check: Exception #{row.id}: {where} is expected to be public until {until}."
    if closed:
        text += " Closed as accepted: " + ", ".join(f"alert #{a}" for a in closed) + "."
    return text


def bad_duration(problem: str) -> str:
    return escape(problem)


# ---- who changed -------------------------------------------------------------------------------


def timeline_head(bucket: str, days: int, source: str, count: int) -> str:
    name = SOURCE_NAMES.get(source, source)
    if not count:
        return f"No configuration changes to {code(bucket)} in the last {days} days (asked {name})."
    return f"*Who changed {code(bucket)}* · last {days} days · newest first · from {name}"


def change_line(change: Change) -> str:
    agent = escape(change.agent_kind or "Unknown")
    return (
        f"• {slack_date(change.event_time)} · *{escape(change.actor or change.actor_arn or 'unknown')}*"
        f" from {code(change.source_ip, empty='unknown')} via {agent} · {code(change.event_name)}"
        f" · {escape(change.summary)}"
    )


def lookup_errors(errors: dict[str, str]) -> str:
    parts = [f"{code(source)}: {escape(error[:200])}" for source, error in sorted(errors.items())]
    return "_Could not ask " + "; ".join(parts) + "_"


def who_changed_line(user_id: str, count: int, source: str) -> str:
    changes = f"{count} change{'s' if count != 1 else ''}"
    return f":mag: {user(user_id)} looked up who changed this ({changes}, from {SOURCE_NAMES.get(source, source)})."


# ---- App Home ----------------------------------------------------------------------------------

HOME_TITLE = "bucketwatch"
HOME_NO_ALERTS = ":white_check_mark: No open alerts."
HOME_NO_EXPIRING = "No exceptions end in the next 7 days."


def home_alerts_head(count: int) -> str:
    return f"Open alerts ({count})"


def home_alert(alert: Alert) -> str:
    return (
        f"*#{alert.id}* {escape(alert.title)}\n{target(alert)} · account {code(alert.account)} · {escape(alert.region)}"
    )


# ---- slash command: ack outside the alert channel, revoke, quarantine (H14) ----------------------


def channel(channel_id: str) -> str:
    """A channel mention for an id from settings; anything else shown as code."""
    return f"<#{channel_id}>" if channel_id.isalnum() and channel_id[:1] in "CG" else code(channel_id)


def ack_elsewhere(alert_channel: str) -> str:
    if not alert_channel:
        return ":no_entry: Only responders may acknowledge with the slash command here (ALERT_CHANNEL is not set)."
    return (
        f":no_entry: Acknowledge from the alert channel, {channel(alert_channel)} (the card's button or this"
        " command typed there); responders may acknowledge from anywhere."
    )


ACK_ELSEWHERE_LINE = "refused (typed outside the alert channel, not a responder)"


def no_exception(exception_id: int) -> str:
    return f"There is no exception #{exception_id}; `allowlist` shows the active ones."


def already_revoked(row: ExceptionRow) -> str:
    when = slack_date(row.revoked_at) if row.revoked_at else "earlier"
    return f"Exception #{row.id} was already revoked ({when}); nothing to do."


def revoked_told(row: ExceptionRow, alert_ids: list[int]) -> str:
    where = exception_target(row)
    text = f":wastebasket: Exception #{row.id} revoked: changes making {where} public alert again from now on."
    closed = ", ".join(f"#{a}" for a in alert_ids)
    text += (
        f" Alerts it closed as accepted ({closed}) stay closed: they are not reopened automatically."
        if closed
        else " Alerts it closed as accepted stay closed: they are not reopened automatically."
    )
    return text + f" If {where} is still public, it alerts on its next change; `who-changed` shows the last ones."


def revoked_line(user_id: str, row: ExceptionRow) -> str:
    return (
        f":wastebasket: {user(user_id)} revoked exception #{row.id} ({escape(row.reason)}). This alert stays"
        " closed; the next change opens a new alert."
    )


def muted_line(count: int, min_severity: str) -> str:
    """`status`: open alerts below MIN_SEVERITY, which got no card."""
    return (f":mute: {count} open alert{'s' if count != 1 else ''} muted below MIN_SEVERITY ({escape(min_severity)}):"
            " no card, no hand-off; `alerts` lists them")


def handoff_line(targets: tuple[str, ...], pending: int, failed: int) -> str:
    """`status`: where alerts are handed off, and what is waiting or was given up."""
    line = f"Hand-off to {', '.join(targets)}: {pending} waiting"
    if failed:
        line = ":warning: " + line + f", {failed} given up (the log has each error)"
    return line


def quarantine_line(counts: dict[str, int]) -> str:
    """`status`: unreadable input kept per source (table `quarantine`)."""
    total = sum(counts.values())
    parts = ", ".join(f"{code(source)} {n}" for source, n in counts.items())
    return f":warning: {total} malformed entr{'y' if total == 1 else 'ies'} quarantined (table `quarantine`): {parts}"


def set_aside_line(counts: dict[str, int]) -> str:
    """`status`: queue messages that kept failing, set aside unread (rows in `quarantine`)."""
    total = sum(counts.values())
    parts = ", ".join(f"{code(source)} {n}" for source, n in counts.items())
    return (
        f":warning: {total} queue message{'s' if total != 1 else ''} set aside after repeated failed deliveries"
        f" (table `quarantine`, their text kept; the source's health names the last error): {parts}"
    )


def undone_elsewhere_line(user_id: str, outcome_message: str, newer: Alert) -> str:
    """The fixed alert's thread when undo leaves it closed: a newer alert on the bucket is open."""
    return (
        f":leftwards_arrow_with_hook: {user(user_id)} undid the fix. {escape(outcome_message)}"
        f" This alert stays closed: {alert_ref(newer)} is open on the same resource and follows it from here."
    )


def undone_here_line(user_id: str, outcome_message: str, fixed_id: int) -> str:
    """The newer open alert's thread: an undo of an older alert's fix affects this resource."""
    return (
        f":leftwards_arrow_with_hook: {user(user_id)} undid the fix made on alert #{fixed_id}."
        f" {escape(outcome_message)} Block Public Access is as it was before that fix."
    )


def finished_fix_line(user_id: str, outcome_message: str) -> str:
    """An interrupted fix (the bot restarted, or its process died) finished or found done by the bot."""
    return f":white_check_mark: {user(user_id)}'s fix was interrupted; the bot checked AWS and completed it. " + escape(
        outcome_message
    )


def abandoned_fix_line(user_id: str) -> str:
    return (f":warning: {user(user_id)}'s fix was interrupted before it changed anything in AWS. "
            "The alert is still open: press *Re-enable Block Public Access* again.")
