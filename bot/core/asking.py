"""How the ask-the-actor settings are read: ASK_ACTOR, ACTOR_EMAIL_DOMAIN, ACTOR_MAP, ASK_TIMEOUT.

Kept beside bot.core.config, whose one table uses them, so that table stays short. Each reader takes
(name, text) and raises ValueError with a one-line message; the table turns it into a ConfigError.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.core.durations import DurationError, parse_duration

# A Slack user id (U…, W… on Enterprise Grid), as bot.core.config.USER_ID.
_USER = r"[UW][A-Z0-9]{2,20}"
# IAM and session names may hold `=`, `,` and `@`: a pair ends only at `=U…` followed by a separator or the end.
_PAIR = re.compile(rf"\s*(?P<key>[^\n]+?)=(?P<user>{_USER})\s*(?:[,\n]|$)")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def parse_ask_flag(name: str, text: str) -> bool | None:
    """`auto` (or empty): None, decided by whether ACTOR_EMAIL_DOMAIN or ACTOR_MAP is set; else true/false."""
    low = text.strip().lower()
    if low in ("", "auto"):
        return None
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: expected auto, true or false, got {text!r}")


def parse_domain(name: str, text: str) -> str:
    """`example.com` (a leading @ is dropped), lower case; empty when unset."""
    domain = text.strip().lstrip("@").lower()
    if domain and not _DOMAIN.match(domain):
        raise ValueError(f"{name}: {text.strip()!r} is not an email domain (like example.com)")
    return domain


def parse_actor_map(name: str, text: str) -> tuple[str, ...]:
    """`arn-or-name=U…` pairs, comma- or newline-separated, kept as `key=U…` strings in their order."""
    pairs: list[str] = []
    pos, body = 0, text.strip()
    while pos < len(body):
        found = _PAIR.match(body, pos)
        if found is None:
            rest = body[pos:].split(",")[0].strip()
            raise ValueError(f"{name}: {rest!r} is not arn-or-name=U… (a Slack user id after the =)")
        pairs.append(f"{found['key'].strip()}={found['user']}")
        pos = found.end()
    return tuple(pairs)


def actor_map(entries: tuple[str, ...]) -> dict[str, str]:
    """ACTOR_MAP's `key=U…` entries as a dict (the Slack id is always the text after the last =)."""
    return {key: user for key, _, user in (entry.rpartition("=") for entry in entries if "=" in entry)}


def parse_timeout(name: str, text: str) -> timedelta:
    """A duration such as 30m, 1h or 2h30m."""
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise ValueError(f"{name}: {exc}") from None
