"""ROUTES: which channel an alert's card goes to, by account or severity (the first rule that matches).

`parse_routes` is the settings table's reader for ROUTES; `Settings.channel_for` applies the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.core.readers import ConfigError, split
from bot.core.shapes import CHANNEL_ID

# The detections' severities, worst first (detections.base.SEVERITIES; the core cannot import it, a test
# checks the two agree).
SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Route:
    """One ROUTES rule: cards of this account (or of this severity) go to `channel`."""

    kind: str  # "account" | "severity"
    value: str
    channel: str


def parse_routes(name: str, text: str) -> tuple[Route, ...]:
    """`ROUTES`: comma-separated `account:<12-digit id>=<channel id>` or `severity:<severity>=<channel id>`."""
    routes, problems = [], []
    for raw in split(text):
        rule, _, channel = raw.partition("=")
        kind, _, value = rule.strip().partition(":")
        kind, value, channel = kind.strip().lower(), value.strip(), channel.strip()
        if kind == "severity":
            value = value.lower()
        if kind not in ("account", "severity") or not value or not channel:
            problems.append(f"{name}: {raw!r} is not account:<id>=<channel> or severity:<severity>=<channel>")
        elif kind == "account" and not (value.isdigit() and len(value) == 12):
            problems.append(f"{name}: {raw!r}: {value!r} is not a 12-digit account id")
        elif kind == "severity" and value not in SEVERITIES:
            problems.append(f"{name}: {raw!r}: severity must be one of {', '.join(SEVERITIES)}")
        elif not CHANNEL_ID.match(channel):
            problems.append(f"{name}: {raw!r}: {channel!r} is not a channel id (C… or G…)")
        else:
            routes.append(Route(kind, value, channel))
    if problems:
        raise ConfigError(*problems)
    return tuple(routes)


def read_https_url(name: str, text: str) -> str:
    url = text.strip()
    parts = urlsplit(url)
    if url and (parts.scheme not in ("https", "http") or not parts.hostname):
        raise ConfigError(f"{name}: {url!r} is not an http(s) URL")
    return url
