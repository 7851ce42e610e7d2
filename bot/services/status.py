"""Reads anyone may ask for: the open alerts, the allow list, the bot's status, the digest now."""

from __future__ import annotations

from bot.alerts.allow_tag import buckets_accepted_by_tag
from bot.services import Services
from bot.services.reply import Reply
from bot.slack import messages as msg
from bot.slack import tag_messages as tag_msg
from bot.slack.blocks import sections
from bot.sources.state import quarantine_counts, set_aside_counts

# More than one Slack message can hold (about 47 alert lines): the rest is counted, not rendered.
ALERTS_LISTED = 60


def open_alerts(services: Services) -> Reply:
    # Only what can fit in one message is read and rendered; the total comes from a count.
    total = services.alerts.count_open()
    if not total:
        return Reply(msg.NO_OPEN_ALERTS)
    alerts = services.alerts.open_alerts(limit=ALERTS_LISTED)
    head = f"*Open alerts ({total})*, newest first"
    return Reply(head, sections(head, [msg.alert_line(a) for a in alerts], total=total))


def allowlist(services: Services) -> Reply:
    rows = services.exceptions.list_active()
    if not rows:
        return Reply(msg.NO_EXCEPTIONS)
    head = f"*Active exceptions ({len(rows)})*, soonest to end first"
    return Reply(head, sections(head, [msg.exception_line(r) for r in rows]))


def status(services: Services) -> Reply:
    """Sources' health (and queue messages set aside), open alerts, dry-run mode, who may fix, Slack messages
    waiting or given up."""
    s, settings = services, services.settings
    head = msg.status_summary(
        open_count=s.alerts.count_open(),
        mode="Socket Mode" if settings.socket_mode else "HTTP",
        dry_run=s.remediator.dry_run,
        pending=len(s.outbox.pending()),
        responders=s.permissions.describe("fix, undo and allow"),
        failed=s.outbox.failed(),
    )
    lines = [msg.health_line(h) for h in s.poller.health()] or [msg.NO_SOURCES]
    muted = sum(1 for a in s.alerts.open_alerts() if settings.muted(a.severity) and not a.ts)
    if muted:
        lines.append(msg.muted_line(muted, settings.min_severity))
    if s.handoff is not None and s.handoff.configured:
        counts = s.handoff.queue.counts()
        lines.append(msg.handoff_line(s.handoff.configured, counts["pending"], counts["failed"]))
    by_tag = buckets_accepted_by_tag(s.store.db)
    if by_tag:
        lines.append(tag_msg.status_line(by_tag))
    quarantined = quarantine_counts(s.store)
    if quarantined:
        lines.append(msg.quarantine_line(quarantined))
    set_aside = set_aside_counts(s.store)  # queue messages that kept failing (bot.sources.sqs)
    if set_aside:
        lines.append(msg.set_aside_line(set_aside))
    return Reply(head, sections(head, lines))


def digest_now(services: Services) -> Reply:
    digest = services.digest.build(services.clock())
    return Reply(digest.text, list(digest.blocks))
