"""The alert lifecycle's vocabulary: statuses and allowed moves, the Alert row, what `process` did, errors.

bot.alerts does the moving; this module only says what an alert is, so cards, messages and handlers
can read one without the engine. Names are re-exported from bot.alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.core.clock import parse_iso
from bot.core.exposure import ExposureVerdict
from detections import BY_ID


class AlertStatus(StrEnum):
    """open → acknowledged → fixed / accepted / resolved; a closed alert can be opened again."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    FIXED = "fixed"  # a responder pressed Fix
    ACCEPTED = "accepted"  # marked as expected (an exception, or the bucket's tag)
    RESOLVED = "resolved"  # a later event restored the block


OPEN = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
CLOSED = (AlertStatus.FIXED, AlertStatus.ACCEPTED, AlertStatus.RESOLVED)
ALLOWED_FROM: dict[AlertStatus, tuple[AlertStatus, ...]] = {
    AlertStatus.ACKNOWLEDGED: (AlertStatus.OPEN,),
    AlertStatus.FIXED: OPEN,
    AlertStatus.ACCEPTED: OPEN,
    AlertStatus.RESOLVED: OPEN,
    AlertStatus.OPEN: CLOSED,
}
SYSTEM = "bucketwatch"


class AlertError(Exception):
    """Base class for alert lifecycle errors."""


class AlertNotFound(AlertError):
    """No alert has that id."""


class AlertStateError(AlertError):
    """The alert is not in a status the requested change can start from."""

    def __init__(self, alert_id: int, status: str, wanted: str):
        super().__init__(f"alert {alert_id} is {status}, cannot become {wanted}")
        self.alert_id, self.status, self.wanted = alert_id, status, wanted


@dataclass(frozen=True)
class Alert:
    """One row of the alerts table."""

    id: int
    resource_key: str
    account: str
    region: str
    bucket: str | None
    detection: str
    severity: str
    title: str
    status: AlertStatus
    opened_at: datetime | None
    updated_at: datetime | None
    first_event_id: str
    actor: str
    verdict: str | None  # the live verdict's one line
    channel: str | None
    ts: str | None
    acknowledged_by: str | None  # always a Slack user id: only a press or `ack` acknowledges
    acknowledged_at: datetime | None
    closed_by: str | None  # a Slack user id only when closed_by_slack; else an AWS actor or "exception #N"
    closed_at: datetime | None
    close_reason: str | None
    verdict_json: str | None = None
    # An IAM user may be named like a Slack id ("U12345678"): only a Slack user's id becomes a mention.
    closed_by_slack: bool = False
    access_point: str | None = None  # access-point alerts: scoped to it, not to the account

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def label(self) -> str:
        """`bucket-name`, `access point name` or `account 111122223333`."""
        if self.access_point:
            return f"access point {self.access_point}"
        return self.bucket or f"account {self.account}"

    @property
    def exposure(self) -> ExposureVerdict | None:
        return ExposureVerdict.from_json(self.verdict_json)

    @property
    def is_public_detection(self) -> bool:
        """The alert's worst detection is public access (not a precursor or a cross-account grant)."""
        return is_public_detection(self.detection)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Alert:
        values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls)}
        for name in ("opened_at", "updated_at", "acknowledged_at", "closed_at"):
            values[name] = parse_iso(values[name])
        values["bucket"] = values["bucket"] or None
        values["access_point"] = values["access_point"] or None
        values["status"] = AlertStatus(values["status"])
        values["closed_by_slack"] = bool(values["closed_by_slack"])
        return cls(**values)


@dataclass(frozen=True)
class AlertChange:
    """What `process` did: opened, added, suppressed (exception), resolved, partial (some restored)."""

    alert_id: int
    kind: str
    event_id: str
    detection: str
    status: str


def resource_key(account: str, bucket: str | None, access_point: str | None = None, region: str = "") -> str:
    """What one alert is about: a bucket, an access point (named per account and region), or the account."""
    if access_point:
        return f"{account}/accesspoint:{region}/{access_point}"
    return f"{account}/{bucket or '*'}"


def is_public_detection(detection_id: str) -> bool:
    found = BY_ID.get(detection_id)
    return bool(found and found.public)
