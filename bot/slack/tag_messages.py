"""Every sentence about the bucket's own allow tag (bot.slack.messages holds the rest; it is full).

The tag never silences: a change it accepts is one quiet line (no button, no mention), later ones
reply under it. Actor names, titles and changes come from records: all escaped with bot.slack.mrkdwn.
"""

from __future__ import annotations

from bot.alerts.lifecycle import Alert
from bot.aws.tags import ALLOW_TAG_KEY, ALLOW_TAG_VALUE
from bot.slack.messages import target
from bot.slack.mrkdwn import code, escape, slack_date
from detections.base import Finding

TAG_SAYS = (f"Not alerted: the bucket's own tag {code(f'{ALLOW_TAG_KEY}={ALLOW_TAG_VALUE}')} says it is public on"
            " purpose. Remove the tag to be alerted.")
CHANGES_SHOWN = 4


def _tag_change(finding: Finding) -> str:
    shown = [f"{code(c.what)} {escape(c.before)} → {escape(c.after)}" for c in finding.changes[:CHANGES_SHOWN]]
    more = len(finding.changes) - CHANGES_SHOWN
    changed = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    return f"{changed or 'no details'}, by *{escape(finding.actor.display)}* {slack_date(finding.event_time)}"


def tag_accepted_line(alert: Alert, finding: Finding | None, alias: str | None = None) -> str:
    """The one quiet line in the channel for a change the bucket's tag accepted: no button, no mention."""
    account = code(alert.account) + (f" ({escape(alias)})" if alias else "")
    what = f"{escape(finding.title)}: {_tag_change(finding)}" if finding is not None else escape(alert.title)
    return f":label: {target(alert)} · account {account} · {what}. {TAG_SAYS} · alert #{alert.id}"


def tag_accepted_reply(finding: Finding) -> str:
    """A later change the tag accepted, in the quiet line's thread."""
    return f":label: Also accepted by the tag: {escape(finding.title)}: {_tag_change(finding)}."


def tag_accepted_fallback(alert: Alert, finding: Finding | None) -> str:
    """Notification text of the quiet line (what a phone shows): plain words, escaped."""
    who = (finding.actor.person or finding.actor.arn) if finding is not None else alert.actor
    return escape(f"Not alerted (bucket tag {ALLOW_TAG_KEY}={ALLOW_TAG_VALUE}): {alert.title} — changed by"
                  f" {who or 'unknown'}")


def status_line(buckets: int) -> str:
    """`status`: how many buckets their own tag accepted changes for (the digest lists them)."""
    return (f":label: Buckets whose own tag {code(f'{ALLOW_TAG_KEY}={ALLOW_TAG_VALUE}')} accepted changes"
            f" (posted as quiet lines, not alerts): {buckets}")
