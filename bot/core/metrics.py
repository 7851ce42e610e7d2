"""Prometheus metrics (prometheus-client): counters the bot exposes at GET /metrics."""

from __future__ import annotations

from prometheus_client import Counter

# Requests at /slack/events refused before any parsing: the label says why (no_timestamp, bad_timestamp,
# stale, bad_signature, too_large, replay). A rising count is someone probing the endpoint, or a clock
# that drifted (stale), or a rotated signing secret (bad_signature).
VERIFICATION_FAILURES = Counter(
    "bucketwatch_slack_verification_failures_total",
    "Slack requests refused before parsing, by reason",
    ["reason"],
)
