"""Source health: the one healthy/stale rule that `status`, App Home, the digest and `doctor` show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.sources.state import SourceState, all_states
from bot.store.database import Store


def late_after(poll_seconds: int) -> timedelta:
    """How old a source's last successful poll may be before it is "late", on every screen alike (`status`,
    App Home, the digest, `doctor` and /readyz): three missed cycles, and at least 5 minutes.
    `poll_seconds`: how often the slowest source is polled (POLL_SECONDS × SAFETY_NET_FACTOR behind a queue)."""
    return timedelta(seconds=max(3 * poll_seconds, 300))


# Where POLL_SECONDS is not known (a digest built from a database alone): the rule at its default.
STALE_AFTER = late_after(60)
# Account and region discovery (bot.sources.fleet, `accounts:…`) runs daily: late after two missed runs.
DISCOVERY_PREFIX = "accounts:"
DISCOVERY_STALE_AFTER = timedelta(days=2)


@dataclass(frozen=True)
class SourceHealth:
    """One source's health: the one rule `status`, App Home and the digest show."""

    source: str
    last_success: datetime | None
    lag_seconds: float | None  # now − the newest event this source returned (bot.sources.event_lag)
    last_error: str | None
    last_attempt: datetime | None = None
    checked_at: datetime | None = None  # when this was measured; staleness is judged against it
    stale_after: timedelta = STALE_AFTER

    @property
    def failing(self) -> bool:
        """An error counts until a later attempt succeeds (last_error may stay set after a success)."""
        if not self.last_error:
            return False
        return self.last_success is None or (self.last_attempt is not None and self.last_attempt > self.last_success)

    @property
    def stale(self) -> bool:
        """Never succeeded, or not for longer than `stale_after` before `checked_at`."""
        if self.last_success is None:
            return True
        return self.checked_at is not None and self.checked_at - self.last_success > self.stale_after

    @property
    def healthy(self) -> bool:
        return not (self.failing or self.stale)

    @property
    def ok(self) -> bool:
        """Same as `healthy` (the name bot.messages reads)."""
        return self.healthy


def source_health(
    store: Store, now: datetime, names: list[str] | None = None, *, stale_after: timedelta = STALE_AFTER
) -> list[SourceHealth]:
    """Health of `names` (polled or not yet), or of every source in poller_state when None."""
    states = all_states(store)
    out = []
    for name in states if names is None else names:
        state = states.get(name, SourceState(name))
        late = DISCOVERY_STALE_AFTER if name.startswith(DISCOVERY_PREFIX) else stale_after
        out.append(
            SourceHealth(name, state.last_success, state.lag(now), state.last_error, state.last_attempt, now, late)
        )
    return out
