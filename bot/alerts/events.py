"""What the alert engine reports: one event per thing that happened to an alert, in its own words.

The engine decides *what* changed (as Alertmanager's core does); a notifier decides *how* to say it.
`AlertService` calls its `notify` inside the transaction that made the change, so a notifier that
writes to the same database (bot.slack.notifier queues outbox rows) commits or rolls back with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from detections.base import Finding


class AlertEventKind(StrEnum):
    OPENED = "opened"  # a new alert (possibly already resolved by a later fix in the index)
    FINDING_ADDED = "finding_added"  # a later finding on an open alert that does not make it worse
    ESCALATED = "escalated"  # a later finding made the open alert worse: severity or public now
    PARTLY_RESTORED = "partly_restored"  # a later event restored some of the blocks, not all
    RESOLVED = "resolved"  # a later event restored every block the alert reported
    REOPENED = "reopened"  # a closed alert is open again (an exception expired, a fix was undone)
    CHANGED = "changed"  # status or live verdict moved: say it where the alert is shown
    # Accepted because the bucket carries bucketwatch:public=allowed: shown quietly, never hidden.
    # Without a finding: a new accepted alert; with one: a later finding suppressed into it.
    ACCEPTED_BY_TAG = "accepted_by_tag"


@dataclass(frozen=True)
class AlertEvent:
    kind: AlertEventKind
    alert_id: int
    finding: Finding | None = None  # FINDING_ADDED, ESCALATED, ACCEPTED_BY_TAG: the finding that was added
    same_detection: int = 0  # the same three: findings of this detection the alert now holds
    reason: str = ""  # PARTLY_RESTORED, RESOLVED, REOPENED: why, in an AWS actor's or the bot's words
    still_open: tuple[str, ...] = ()  # PARTLY_RESTORED: detections not restored yet
    was_posted: bool = True  # REOPENED: whether the alert was ever shown (an exception may have hidden it)


Notify = Callable[[AlertEvent], None]


def ignore(event: AlertEvent) -> None:
    """The notifier of an engine nobody listens to (scan, tests of the engine alone)."""
