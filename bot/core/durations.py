"""Durations as people type them in Slack ("30d", "12h", "2w", "90m", "1d12h") and as we print them."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, timedelta] = {
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "mins": timedelta(minutes=1),
    "minute": timedelta(minutes=1),
    "minutes": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "hr": timedelta(hours=1),
    "hrs": timedelta(hours=1),
    "hour": timedelta(hours=1),
    "hours": timedelta(hours=1),
    "d": timedelta(days=1),
    "day": timedelta(days=1),
    "days": timedelta(days=1),
    "w": timedelta(weeks=1),
    "wk": timedelta(weeks=1),
    "week": timedelta(weeks=1),
    "weeks": timedelta(weeks=1),
}
_PART = re.compile(r"(\d{1,6})\s*([a-z]+)")
# Ten years: an "exception" longer than that is a typo, and it keeps datetime arithmetic in range.
MAX_DURATION = timedelta(days=3650)


class DurationError(ValueError):
    """Text that is not a duration like 30d, 12h, 2w or 90m."""


def parse_duration(text: str) -> timedelta:
    """Parse "30d", "12h", "2w", "90m", "1d12h" or "2 weeks" into a positive timedelta."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise DurationError("empty duration: use e.g. 30d, 12h, 2w or 90m")
    total = timedelta()
    pos = 0
    for match in _PART.finditer(cleaned):
        if cleaned[pos : match.start()].strip():
            break
        unit = _UNITS.get(match.group(2))
        if unit is None:
            raise DurationError(f"unknown unit {match.group(2)!r}: use m, h, d or w (e.g. 30d)")
        total += int(match.group(1)) * unit
        pos = match.end()
    if pos == 0 or cleaned[pos:].strip():
        raise DurationError(f"{text.strip()!r} is not a duration: use e.g. 30d, 12h, 2w or 90m")
    if total <= timedelta():
        raise DurationError("a duration must be longer than zero")
    if total > MAX_DURATION:
        raise DurationError("a duration may be at most 3650 days")
    return total


def format_duration(delta: timedelta, *, parts: int = 2) -> str:
    """Human text for a span, largest units first: "2 days 3 hours", "45 minutes", "less than a minute"."""
    seconds = int(abs(delta).total_seconds())
    pieces = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            pieces.append(f"{count} {name}{'' if count == 1 else 's'}")
    if not pieces:
        return "less than a minute"
    return " ".join(pieces[:parts])
