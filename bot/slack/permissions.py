"""Who may fix, undo and allow: `RESPONDERS` user ids plus members of responder user groups."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.core.config import ConfigError
from bot.core.shapes import GROUP_ID as _GROUP
from bot.core.shapes import USER_ID as _USER

log = logging.getLogger(__name__)

# Slack ids (U…/W… users, S… user groups) are checked with the settings table's own patterns.


# How long the last member list of a responder group is trusted while usergroups.users.list keeps
# failing: a short Slack outage must not lock responders out, but someone removed from the group must
# not keep the power to fix, undo and allow for as long as the outage lasts. After this, only the user
# ids listed in RESPONDERS count (fail closed) until a look-up succeeds again.
STALE_GRACE_SECONDS = 3600


@dataclass
class _Members:
    users: frozenset[str]
    fetched_at: float  # when Slack was last asked (successfully or not): the next ask waits for the TTL
    verified_at: float  # when Slack last answered with this list


class Permissions:
    """Answers "may this Slack user act as a responder?", resolving user groups through the Web API."""

    def __init__(
        self,
        responders: tuple[str, ...],
        slack: WebClient,
        *,
        ttl_seconds: float = 300,
        stale_grace_seconds: float = STALE_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        bad = [r for r in responders if not (_USER.match(r) or _GROUP.match(r))]
        if bad:
            raise ConfigError(
                f"RESPONDERS: {', '.join(bad)} is not a Slack user id (U…, W…) or user-group id (S…)"
            )
        self.users = tuple(r for r in responders if _USER.match(r))
        self.groups = tuple(r for r in responders if _GROUP.match(r))
        self.slack = slack
        self.ttl = ttl_seconds
        self.grace = stale_grace_seconds
        self.clock = clock
        self._members: dict[str, _Members] = {}
        # One lock: group look-ups are rare (once per TTL) and a single flight spares Slack's rate limit.
        self._lock = threading.Lock()

    def is_responder(self, user_id: str) -> bool:
        """True when the user is listed in RESPONDERS or is a member of a listed user group."""
        if not user_id:
            return False
        if user_id in self.users:
            return True
        return any(user_id in self._group_members(group) for group in self.groups)

    def describe(self, action: str = "fix") -> str:
        """The refusal line, formatted for Slack mrkdwn (ids come from settings, not from users)."""
        if not (self.users or self.groups):
            return f"Only responders may {action}, and none are configured (set RESPONDERS)."
        names = [f"<@{u}>" for u in self.users] + [f"<!subteam^{g}>" for g in self.groups]
        return f"Only responders may {action}: {', '.join(names)}"

    def _group_members(self, group: str) -> frozenset[str]:
        with self._lock:
            cached = self._members.get(group)
            now = self.clock()
            if cached is not None and now - cached.fetched_at < self.ttl:
                return cached.users if now - cached.verified_at < self.grace else frozenset()
            try:
                users = self._fetch(group)
            except (SlackApiError, SlackClientError, OSError) as exc:
                # Fall back to the last members we knew, for a while; with none, deny rather than guess.
                log.warning("usergroups.users.list failed for %s: %s", group, slack_error(exc))
                if cached is None:
                    return frozenset()
                # Ask again after the next TTL, not on every press.
                self._members[group] = _Members(cached.users, now, cached.verified_at)
                if now - cached.verified_at < self.grace:
                    return cached.users
                log.error("responder group %s unverified for %d s: only RESPONDERS user ids may act",
                          group, int(now - cached.verified_at))
                return frozenset()
            self._members[group] = _Members(users, now, now)
            return users

    def _fetch(self, group: str) -> frozenset[str]:
        # https://api.slack.com/methods/usergroups.users.list (scope usergroups:read)
        response = self.slack.usergroups_users_list(usergroup=group)
        return frozenset(str(u) for u in response.get("users") or ())


def slack_error(exc: BaseException) -> str:
    """Slack's error code of a failed call (`not_in_channel`), else the exception's class name."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "error"))
    return type(exc).__name__
