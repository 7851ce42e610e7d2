"""Who changed this bucket? Anyone may ask: the timeline, newest first, saying which source answered."""

from __future__ import annotations

from bot.alerts.lifecycle import Alert
from bot.services import Services
from bot.services.reply import Reply
from bot.slack import messages as msg
from bot.slack.blocks import sections
from bot.sources.lookup import LookupTarget
from bot.sources.who_changed import Timeline, timeline
from bot.store.index import who_changed as indexed_changes

TIMELINE_LINES = 200


def who_changed(services: Services, bucket: str, user: str, *, days: int = 90, alert: Alert | None = None) -> Reply:
    """The bucket's (or, for an account-level alert, the account's) configuration changes."""
    if not bucket and alert is not None:
        # An account-level alert: its changes are in the index under no bucket, and only this
        # account's (every account's account-level writes share bucket '').
        rows = indexed_changes(
            services.store, "", account=alert.account, days=days, now=services.clock(), limit=TIMELINE_LINES
        )
        found = Timeline("", days, rows, "index" if rows else "none")
    else:
        targets = [LookupTarget(alert.account, alert.region)] if alert is not None and alert.account else None
        # One guard per bot: the LookupEvents fallback is bounded however many people ask at once.
        found = timeline(
            services.store, services.aws, bucket, days=days, targets=targets, now=services.clock(),
            limit=TIMELINE_LINES, guard=services.who_changed_guard,
        )
    alert_id = alert.id if alert is not None else None
    services.audit.record(user, "who_changed", alert_id, found.source, f"{len(found.changes)} changes to {bucket}")
    if alert_id is not None:
        services.notifier.note(alert_id, msg.who_changed_line(user, len(found.changes), found.source))
        services.outbox.flush_for(alert_id)
    label = bucket or (f"account {alert.account}" if alert is not None else "")
    head = msg.timeline_head(label, days, found.source, len(found.changes))
    note = msg.lookup_errors(found.errors) if found.errors else ""
    lines = [msg.change_line(c) for c in found.changes]
    return Reply(head, sections(head, lines, note=note))


def parse_days(text: str | None, default: int = 90) -> int | None:
    """`30` or `30d` as a number of days from 1 to 3650; None for anything else."""
    if text is None:
        return default
    value = text.strip().lower().removesuffix("d")
    return int(value) if value.isdigit() and 0 < int(value) <= 3650 else None
