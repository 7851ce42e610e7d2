"""Every sentence about fixing and undoing: the Fix button's words, the thread lines of a fix, an undo or a
dry run, before → after, and the presser's answer. Plain-text outcome messages come from bot.aws."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.alerts.lifecycle import Alert
from bot.core.bpa import FLAGS, Config
from bot.core.policy import ACCESS_POINT_POLICY, evaluate_policy, load_policy
from bot.slack.messages import alert_ref
from bot.slack.mrkdwn import escape, slack_date, user


def fix_label(alert: Alert) -> str:
    """The Fix button's words: what it will do to what the alert names."""
    return "Remove public access-point policy" if alert.access_point else "Re-enable Block Public Access"


def flag_changes(before: Any, after: Any) -> list[str]:
    """Before → after of a fix or undo: the four flags, or an access point's policy."""
    if any(isinstance(s, dict) and "Policy" in s for s in (before, after)):
        def policy(state: Any) -> str:
            doc = load_policy(state.get("Policy") if isinstance(state, dict) else None)
            if not isinstance(doc, dict):
                return "no policy"
            statements = doc.get("Statement")
            count = len(statements) if isinstance(statements, list) else 1
            public = "public" if evaluate_policy(doc, kind=ACCESS_POINT_POLICY).public else "not public"
            return f"{count} statement(s), {public}"
        return [f"• access point policy: {policy(before)} → *{policy(after)}*"]

    def state(config: Config | None, flag: str) -> str:
        if config is None:
            return "absent"
        return "on" if config.get(flag) else "off"

    lines = []
    for flag in FLAGS:
        b, a = state(before, flag), state(after, flag)
        lines.append(f"• `{flag}`: {b} → *{a}*" if b != a else f"• `{flag}`: {b} (unchanged)")
    return lines


def fixed_line(user_id: str, outcome_message: str, verb: str = "") -> str:
    did = escape(verb or "re-enabled Block Public Access")
    return f":white_check_mark: {user(user_id)} {did}. {escape(outcome_message)}"


def fixed_note(changes: tuple[str, ...], note: str = "") -> str:
    if note:
        return note
    return "turned on " + ", ".join(changes) if changes else "Block Public Access re-enabled"


def verdict_line(line: str | None) -> str:
    return f"*Live check now:* {escape(line)}" if line else "*Live check now:* not available."


def fix_told(outcome_message: str) -> str:
    return f":white_check_mark: {escape(outcome_message)} Details and Undo are in the card's thread."


def dry_run_line(user_id: str, outcome_message: str, label: str = "Re-enable Block Public Access") -> str:
    return f":test_tube: {user(user_id)} pressed *{escape(label)}* (dry run). {escape(outcome_message)}"


def outcome_text(outcome_message: str, by: str = "", at: datetime | None = None) -> str:
    """An AWS or remediation outcome for the presser; `by` is the first presser when it was already done."""
    suffix = f" (by {user(by)}{' ' + slack_date(at) if at else ''})" if by else ""
    return escape(outcome_message) + suffix


def failed_line(user_id: str, action: str, outcome_message: str) -> str:
    return f":x: {user(user_id)} pressed *{escape(action)}* and AWS said no: {escape(outcome_message)}"


def already_on_note(alert: Alert | None = None) -> str:
    if alert is not None and alert.access_point:
        return "the access point's policy was no longer public"
    return "Block Public Access was already fully on"


def undone_line(user_id: str, outcome_message: str) -> str:
    return (
        f":leftwards_arrow_with_hook: {user(user_id)} undid the fix. {escape(outcome_message)} The alert is open again."
    )


UNDO_CONFIRM_TITLE = "Undo the fix?"
UNDO_CONFIRM_TEXT = (
    "Restores exactly what was saved before the fix (the Block Public Access settings, or the access point's"
    " policy); it may be public again."
)


def fix_prompt(alert: Alert, plan_summary: str) -> str:
    return f"*{fix_label(alert)}* for {alert_ref(alert)}?\n{escape(plan_summary)}"
