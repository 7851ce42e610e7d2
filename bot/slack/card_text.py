"""The card's sentences about the change and the live check: whose change the header reports, what
changed (before → after), whether the bucket is public now, and when the live check predates a change it
shows, so that no card passes off an old verdict as current."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.alerts.lifecycle import Alert, AlertStatus
from bot.core.bpa import FLAGS
from bot.core.exposure import ExposureVerdict
from bot.slack.blocks import SECTION_TEXT
from bot.slack.mrkdwn import code, escape, slack_date, truncate
from detections.base import Finding


def changed_after_check(verdict: ExposureVerdict | None, findings: Sequence[Finding] = (),
                        alert: Alert | None = None) -> datetime | None:
    """The latest change the live check predates: a finding's event, or the fix or restore that closed the
    alert; None when the check is newer than all of them (or there is no check)."""
    checked = verdict.checked_at if verdict is not None else None
    if checked is None:
        return None
    later = [f.event_time for f in findings if f.event_time and f.event_time > checked]
    if alert is not None and alert.status in (AlertStatus.FIXED, AlertStatus.RESOLVED) and alert.closed_at \
            and alert.closed_at > checked:
        later.append(alert.closed_at)
    return max(later) if later else None


def _public_word(verdict: ExposureVerdict | None, stale: bool = False) -> str:
    if verdict is None:
        return ":grey_question: not checked"
    if stale:  # never "public now" (or "not public now") from a check older than the latest change
        said = {True: "public", False: "not public", None: "unknown"}[verdict.public_now]
        return f":grey_question: {said} when last checked, before the latest change"
    if verdict.public_now:
        return ":unlock: *public now*"
    return ":lock: not public now" if verdict.public_now is False else ":grey_question: could not tell if public now"


def lead_finding(alert: Alert, findings: Sequence[Finding]) -> Finding | None:
    """The finding that made the alert what its header says (its title): its actor is the one named."""
    for finding in findings:
        if finding.title == alert.title:
            return finding
    for finding in findings:
        if finding.detection == alert.detection:
            return finding
    return findings[0] if findings else None


def headline(alert: Alert, finding: Finding | None, verdict: ExposureVerdict | None, stale: bool = False) -> str:
    """The first line: who did what to which bucket, and whether it is public now."""
    if finding is None:
        return f"{escape(alert.title)} · {_public_word(verdict, stale)}"
    return f"*{escape(finding.actor.display)}*: {escape(finding.title)} · {_public_word(verdict, stale)}"


def _flags_line(name: str, flags: dict[str, bool] | None, state: str) -> str:
    if state == "denied":
        return f"{name}: _not readable (AccessDenied)_"
    if state == "absent" or flags is None:
        return f"{name}: _no configuration (all off)_"
    if all(flags.get(f) for f in FLAGS):
        return f"{name}: all four on"
    return f"{name}: " + ", ".join(f"{f} {'on' if flags.get(f) else '*off*'}" for f in FLAGS)


def changes_text(findings: Sequence[Finding], verdict: ExposureVerdict | None) -> str:
    """`What changed`: before → after per finding, then the Block Public Access flags seen now."""
    lines = ["*What changed*"]
    several = len({f.actor.display for f in findings}) > 1  # then each change says whose it was
    for finding in findings[:20]:
        lines.append(f"• {escape(finding.title)}" + (f" — by {escape(finding.actor.display)}" if several else ""))
        lines += [f"    {code(c.what)}: {escape(c.before)} → {escape(c.after)}" for c in finding.changes[:8]]
    tail = []
    if len(findings) > 20:
        tail.append(f"_…and {len(findings) - 20} more findings in the thread_")
    if verdict is not None and verdict.checked_at is not None:
        tail.append("*Block Public Access now* (" + slack_date(verdict.checked_at, "{time}") + ")")
        if verdict.bucket:
            tail.append("    " + _flags_line("bucket", verdict.bucket_bpa, verdict.bucket_bpa_state))
        tail.append("    " + _flags_line("account", verdict.account_bpa, verdict.account_bpa_state))
    # The tail is short and always shown; the list of changes gives way when space runs out.
    end = "\n".join(tail)
    body = truncate("\n".join(lines), SECTION_TEXT - len(end) - 1)
    return f"{body}\n{end}" if end else body


def verdict_text(verdict: ExposureVerdict | None, findings: Sequence[Finding] = (), alert: Alert | None = None) -> str:
    """The live check, when it was made, and whether a change it shows (or the alert's close) came after it."""
    if verdict is None:
        return ":grey_question: *Live check:* not done (no read access to this account's current settings)."
    emoji = (
        ":unlock:" if verdict.public_now else ":lock:" if verdict.public_now is False else ":grey_question:"
    )
    when = f" ({slack_date(verdict.checked_at)})" if verdict.checked_at else ""
    out = f"{emoji} *Live check*{when}: {escape(verdict.line)}"
    later = changed_after_check(verdict, findings, alert)
    if later is not None:
        # A card never passes off a verdict as newer than the changes it lists (re-checks are capped per alert).
        out += (f"\n:warning: _Checked before the latest change ({slack_date(later)}): it may be out of date;"
                " the next change or the daily digest checks again._")
    if verdict.denied:
        out += "\n_Denied: " + ", ".join(code(d) for d in verdict.denied) + "_"
    return truncate(out, SECTION_TEXT)
