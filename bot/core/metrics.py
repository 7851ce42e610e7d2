"""Every Prometheus metric the bot exports, in one registry any layer may update (`GET /metrics`).

Counters count what happened in this process (polls, errors, presses, refused requests). Gauges
that describe stored state (outbox depth, open alerts, source lag) are set from the database just
before each scrape by `bot.slack.health`, so they are right even for rows another process wrote
(`poll --once`) and after a restart. Metric names follow prometheus.io/docs/practices/naming.

The registry is the bot's own rather than prometheus-client's global one, so a test or a library
that registers the same names elsewhere cannot collide with it; the process and platform collectors
(CPU, memory, open files, Python version) are added to it explicitly.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

POLLS = Counter(
    "bucketwatch_polls",
    "Poll attempts per source (lookup:<account>:<region>, trail:<bucket>/<prefix>, queue:<name>).",
    ["source"],
    registry=REGISTRY,
)
POLL_ERRORS = Counter(
    "bucketwatch_poll_errors",
    "Poll attempts per source that ended in an error (the source's window is read again next time).",
    ["source"],
    registry=REGISTRY,
)
SOURCE_LAG = Gauge(
    "bucketwatch_source_lag_seconds",
    "Now minus the newest event a source has returned (CloudTrail itself lags 5-15 minutes).",
    ["source"],
    registry=REGISTRY,
)
SOURCE_LAST_SUCCESS = Gauge(
    "bucketwatch_source_last_success_timestamp_seconds",
    "Unix time of the source's last successful poll (0: never).",
    ["source"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "bucketwatch_outbox_depth",
    "Slack messages queued and not yet sent (still being retried).",
    registry=REGISTRY,
)
OUTBOX_GIVEN_UP = Gauge(
    "bucketwatch_outbox_given_up",
    "Slack messages given up on after every retry and set aside (`status` lists them).",
    registry=REGISTRY,
)
OPEN_ALERTS = Gauge(
    "bucketwatch_open_alerts",
    "Open or acknowledged alerts, by severity.",
    ["severity"],
    registry=REGISTRY,
)
REMEDIATIONS = Counter(
    "bucketwatch_remediation_outcomes",
    "Fix and undo presses by outcome (applied, undone, refused, failed, already_fixed, dry_run, ...).",
    ["action", "outcome"],
    registry=REGISTRY,
)
VERIFICATION_FAILURES = Counter(
    "bucketwatch_request_verification_failures",
    "Slack requests refused before any listener ran (bad or missing signature, stale timestamp, too large).",
    ["reason"],
    registry=REGISTRY,
)

# The audit actions whose outcomes REMEDIATIONS counts.
REMEDIATION_ACTIONS = frozenset({"fix", "undo"})


def count_press(action: str, outcome: str) -> None:
    """Count a fix or undo press by its outcome; other actions are not remediation and are ignored."""
    if action in REMEDIATION_ACTIONS:
        REMEDIATIONS.labels(action=action, outcome=outcome or "unknown").inc()
