"""The digest as words: Slack Block Kit, the Slack fallback text, terminal text and the day chart.

bot.digest gathers the Figures; this module only reads them. Every stored string is escaped for Slack
mrkdwn (or stripped of control characters for a terminal), and the blocks stay within Slack's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.alerts.digest import CHART_DAYS, MAX_RECHECKS, Figures, median_duration
from bot.aws.tags import ALLOW_TAG_KEY, ALLOW_TAG_VALUE
from bot.core.durations import format_duration
from bot.slack.blocks import MAX_BLOCKS, SECTION_TEXT
from bot.slack.mrkdwn import code, escape, slack_date, strip_controls, user

QUIET_LINE = "All quiet: no new or open public-access alerts in the last 24 h."
NOTHING_WATCHED = (
    "⚠️ Nothing is watched: none of AWS_ACCOUNTS, TRAIL_BUCKETS, TRAIL_QUEUE_URLS, EVENT_QUEUE_URLS or"
    " FINDINGS_QUEUE_URL is set, so no change to any bucket could be seen. The figures below are only the alerts"
    " already stored."
)
NAMES_SHOWN = 5
TAG_CHANGES_SHOWN = 4
TAG = f"{ALLOW_TAG_KEY}={ALLOW_TAG_VALUE}"
BAR, BAR_WIDTH = "▇", 20




@dataclass
class Digest:
    """The rendered digest and the figures it shows."""

    figures: Figures
    text: str  # the Slack fallback (notifications): counts in one line
    plain: str  # the terminal form
    blocks: list[Any]  # slack_sdk Block Kit models


class Fmt:
    """The same lines as Slack mrkdwn (every stored string escaped) or as terminal text."""

    def __init__(self, zone: ZoneInfo, *, slack: bool):
        self.zone, self.slack = zone, slack

    def esc(self, value: object) -> str:
        return escape(value) if self.slack else strip_controls(value)

    def who(self, value: str | None) -> str:
        return user(value) if self.slack else self.esc(value or "someone")

    def when(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone).strftime("%a %d %b %H:%M %Z")
        return slack_date(moment, fallback=local) if self.slack else local

    def where(self, account: str | None, bucket: str | None, region: str | None = None,
              access_point: str | None = None) -> str:
        at = " ".join(self.esc(p) for p in (account, region) if p)
        if access_point:
            name = code(access_point) if self.slack else self.esc(access_point)
            return f"access point {name} ({at or 'any account'})"
        if bucket is None:
            return f"account {at or 'any'} (account-wide)"
        return f"{code(bucket) if self.slack else self.esc(bucket)} ({at or 'any account'})"


def chart_lines(chart: list[tuple[date, int]]) -> list[str]:
    """`Mon 24 ▇▇▇ 3` per day; bars scale down only when a day has more than BAR_WIDTH alerts."""
    scale = max(1.0, max((n for _, n in chart), default=0) / BAR_WIDTH)
    bars = [(d, BAR * max(1, round(n / scale)) if n else "", n) for d, n in chart]
    width = max((len(bar) for _, bar, _ in bars), default=0)  # narrow on a phone when days are quiet
    return [f"{d:%a %d} {bar.ljust(width)} {n}" for d, bar, n in bars]


def _span(values: list[timedelta], over: str) -> str:
    median, worst = median_duration(values), max(values, default=None)
    if median is None or worst is None:
        return "none in the last 24 h"
    return f"median {format_duration(median)}, worst {format_duration(worst)} (over {over})"


def _names(values: list[str], f: Fmt, most: int = NAMES_SHOWN) -> str:
    shown = ", ".join(f.esc(v) for v in values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


def checked_lines(fig: Figures, f: Fmt) -> list[str]:
    """What was watched, what failed and what is not configured: said before anything reassuring."""
    lines = [f.esc(fig.note)] if fig.note else []
    if fig.sources == []:
        lines.append(NOTHING_WATCHED)
    elif not fig.pollers:
        lines.append("⚠️ No source has been polled yet, so no change could be seen.")
    bad = [p.source for p in fig.pollers if not p.healthy]
    good = [p.source for p in fig.pollers if p.healthy]
    if bad:
        lines.append(f"⚠️ {len(bad)} of {len(fig.pollers)} source(s) failing, late or never polled:"
                     f" {_names(bad, f)} (see Pollers).")
    if good:
        within = format_duration(fig.pollers[0].stale_after)
        lines.append(f"Watched: {len(good)} source(s) polled successfully within the last {within}:"
                     f" {_names(good, f)}.")
    if fig.open_alerts and not fig.rechecked:
        lines.append("⚠️ Open alerts were not re-checked against AWS (no AWS access for the digest).")
    return lines


def _tag_lines(fig: Figures, f: Fmt) -> list[str]:
    """What each bucket's tag accepted in the window, and by whom (AWS names: text, never mentions)."""
    lines = []
    for t in fig.by_tag:
        what = _names(list(t.what), f, TAG_CHANGES_SHOWN)
        lines.append(f"• {f.where(t.account, t.bucket, t.region)} · {t.changes} change(s), latest {f.when(t.latest)}"
                     f" · {what} · by {_names(list(t.actors), f)} · alert #{t.alert_id}")
    tag = code(TAG) if f.slack else TAG
    lines.append(f"The tag {tag} says these buckets are public on purpose. Remove it to be alerted; a responder's"
                 " exception belongs in the allow list (Mark as expected).")
    return lines


def _sections(fig: Figures, f: Fmt) -> list[tuple[str, list[str], bool]]:
    """(title, lines, is_code) per part of the digest, in reading order."""
    acked = f"{len(fig.ack_times)} alert(s) acknowledged in the last 24 h"
    # The same alerts the Fixed and Resolved counts show: both ended an exposure.
    ended = (f"{len(fig.fix_times)} alert(s) whose exposure ended in the last 24 h: Fixed {fig.fixed} with the"
             f" button, Resolved {fig.resolved} by a later change")
    spans = [f"Time to acknowledge: {_span(fig.ack_times, acked)}", f"Time to fix: {_span(fig.fix_times, ended)}"]
    out: list[tuple[str, list[str], bool]] = []
    if fig.muted:
        out.append(("Muted", [muted_line(fig)], False))
    out += [
        ("Response times", spans, False),
        (f"Alerts per day, last {CHART_DAYS} days ({f.esc(fig.tz)})", chart_lines(fig.chart), True),
    ]
    if fig.asks.any:
        out.append(("Asking the actor", ask_lines(fig), False))
    if fig.open_alerts:
        lines = []
        for a in fig.open_alerts:
            state = f"acknowledged by {f.who(a.acknowledged_by)}" if a.status == "acknowledged" else "open"
            age = format_duration(fig.now - a.opened_at)
            where = f.where(a.account, a.bucket, a.region, a.access_point)
            lines.append(f"• #{a.id} {where} · {state} · for {age}")
        out.append((f"Still open ({len(lines)})", lines, False))
        lines = [f"• {f.where(a.account, a.bucket, a.region, a.access_point)} · alert #{a.id}"
                 for a in fig.still_public]
        if fig.recheck_unknown:
            lines.append(f"Could not re-check {fig.recheck_unknown} (access denied or unreadable).")
        if fig.recheck_skipped:
            why = f"more than {MAX_RECHECKS} buckets" if fig.rechecked else "no AWS access for the digest"
            lines.append(f"Not re-checked: {fig.recheck_skipped} ({why}).")
        out.append((f"Still public on a fresh re-check ({len(fig.still_public)})", lines or ["None."], False))
    if fig.by_tag:
        out.append((f"Not alerted: accepted by the bucket's own tag ({len(fig.by_tag)})", _tag_lines(fig, f), False))
    if fig.expiring:
        lines = [
            f"• {f.where(e.account, e.bucket, access_point=e.access_point)} · ends {f.when(e.expires_at)}"
            f" · {f.esc(e.reason)} ({f.who(e.owner)})"
            for e in fig.expiring
        ]
        out.append((f"Exceptions ending within 7 days ({len(lines)})", lines, False))
    lines = []
    for p in fig.pollers:
        seen = f.when(p.last_success) if p.last_success else "never"
        lag = "" if p.lag_seconds is None else f" · lag {format_duration(timedelta(seconds=p.lag_seconds))}"
        err = f" · error: {f.esc(p.last_error[:300])}" if p.last_error and not p.healthy else ""
        lines.append(f"{'✅' if p.healthy else '⚠️'} {f.esc(p.source)} · last success {seen}{lag}{err}")
    bad = sum(1 for p in fig.pollers if not p.healthy)
    title = f"Pollers ({len(fig.pollers) - bad} healthy, {bad} failing or late)" if fig.pollers else "Pollers"
    none = "No source is configured." if fig.sources == [] else "No poller has run yet."
    out.append((title, lines or [none], False))
    return out


def muted_line(fig: Figures) -> str:
    """How many of the new alerts got no card (MIN_SEVERITY); `/bucketwatch alerts` still lists them."""
    return (f"{fig.muted} muted below MIN_SEVERITY ({fig.min_severity}): stored and counted, no card posted"
            " (`alerts` lists the open ones).")


def ask_lines(fig: Figures) -> list[str]:
    """Asked, answered (which way), time to answer, and who could not be asked: alerts opened in 24 h."""
    a = fig.asks
    answered = a.intended + a.not_me
    lines = [f"Asked {a.asked}, answered {answered} (yes, intended {a.intended}; not me {a.not_me}),"
             f" no answer yet {a.silent}"]
    if a.times:
        lines.append(f"Time to answer: {_span(list(a.times), f'{len(a.times)} answer(s)')}")
    if a.not_asked or a.unreachable:
        lines.append(f"Not asked: {a.not_asked} robot(s); could not be asked: {a.unreachable}")
    return lines


def _fit(head: str, lines: list[str], limit: int = SECTION_TEXT) -> str:
    """`head` and as many lines as fit in `limit` characters, then "… and N more"."""
    text = head
    for i, line in enumerate(lines):
        left = len(lines) - i - 1
        if len(text) + 1 + len(line) + (len(f"\n… and {left} more") if left else 0) > limit:
            return text + f"\n… and {len(lines) - i} more"
        text += "\n" + line
    return text


def _counts(fig: Figures) -> list[tuple[str, int]]:
    return [("New (24 h)", fig.new), ("Open", fig.open), ("Acknowledged", fig.acknowledged),
            ("Fixed (24 h)", fig.fixed), ("Accepted (24 h)", fig.accepted), ("Resolved (24 h)", fig.resolved),
            ("Accepted by tag (24 h)", len(fig.by_tag))]


def render(fig: Figures, zone: ZoneInfo) -> Digest:
    """The digest as Slack fallback text, terminal text and Block Kit within Slack's limits."""
    s, t = Fmt(zone, slack=True), Fmt(zone, slack=False)
    checked, said = checked_lines(fig, s), checked_lines(fig, t)
    if fig.quiet:
        # Quiet is said only after what was watched: "nothing new" from nothing checked is no news.
        body = "\n".join([*checked, QUIET_LINE])
        return Digest(fig, " ".join([*said, QUIET_LINE]), "\n".join([*said, QUIET_LINE]),
                      [SectionBlock(text=MarkdownTextObject(text=body))])
    counts = ", ".join(f"{label.replace(' (24 h)', '').lower()} {n}" for label, n in _counts(fig))
    warning = next((line for line in said if line.startswith("⚠️")), "")
    text = (f"{warning} " if warning else "") + (
        f"bucketwatch digest for {fig.day:%a %d %b}: {counts}; {len(fig.still_public)} still public"
        + (f"; {fig.muted} muted below MIN_SEVERITY." if fig.muted else ".")
    )
    blocks: list[Any] = [HeaderBlock(text=PlainTextObject(text=f"Daily digest · {fig.day:%a %d %b %Y}"))]
    if checked:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_fit("", checked).lstrip("\n"))))
    blocks.append(SectionBlock(fields=[MarkdownTextObject(text=f"*{label}*\n{n}") for label, n in _counts(fig)]))
    for title, lines, is_code in _sections(fig, s):
        body = f"*{title}*\n```\n" + "\n".join(lines) + "\n```" if is_code else _fit(f"*{title}*", lines)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=body)))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"Last 24 h up to {s.when(fig.now)}.")]))
    plain = [f"Daily digest · {fig.day:%a %d %b %Y} (last 24 h up to {t.when(fig.now)})", *said, ""]
    plain.append("   ".join(f"{label}: {n}" for label, n in _counts(fig)))
    for title, lines, _ in _sections(fig, t):
        plain += ["", title, *(f"  {line}" for line in lines)]
    return Digest(fig, text, "\n".join(plain), blocks[:MAX_BLOCKS])
