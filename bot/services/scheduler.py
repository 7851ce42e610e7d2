"""The in-process scheduler (APScheduler 3, background thread): poll, outbox, hand-offs, digest, exception
expiry, and (AWS_ACCOUNTS=org:…, AWS_REGIONS=all) the daily discovery of accounts and regions. Queues are not
polled here: each has its own listener thread (bot.sources.listener), started by `run`.

Jobs are plain callables so this module knows nothing of the services behind them. Each job runs
one at a time (`max_instances=1`) and missed runs collapse into one (`coalesce=True`): a poll that
takes longer than POLL_SECONDS is never overlapped by the next. A job that raises is logged with
its traceback (a refused Slack call: one line with the error code) and runs again at its next time;
nothing here lets an error stop the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.config import Settings
from bot.slack.errors import slack_failure
from bot.sources.fleet import REFRESH_SECONDS

log = logging.getLogger(__name__)

OUTBOX_SECONDS = 5
# A fix or undo in flight is settled once older than 45 s (bot.aws.remediation.STALE_AFTER): checking
# every 15 s settles it within a minute of its start.
RECONCILE_SECONDS = 15
# The digest check also runs on an interval, from start: it retries a post that failed, and catches up
# only for a bot that was down at DIGEST_TIME today (send_if_due decides, and the digest says it is late;
# a first start waits for DIGEST_TIME).
DIGEST_RETRY_SECONDS = 300
EXPIRY_SECONDS = 600
ASK_SECONDS = 15  # asking the actor: DMs still to send, and asks past ASK_TIMEOUT


def guarded(name: str, job: Callable[[], Any]) -> Callable[[], None]:
    """`job` wrapped so an exception is logged instead of escaping: a refused Slack call as one line with
    Slack's error code, anything else with its traceback."""

    def run() -> None:
        try:
            job()
        except Exception as exc:
            refused = slack_failure(exc)
            if refused is None:
                log.exception("scheduled job %s failed; it runs again at its next time", name)
            else:
                log.error("scheduled job %s failed: %s; it runs again at its next time", name, refused)

    run.__name__ = f"bucketwatch_{name.replace('-', '_')}"
    return run


def build_scheduler(
    settings: Settings,
    *,
    poll: Callable[[], Any],
    flush: Callable[[], Any],
    digest_due: Callable[[], Any],
    expire: Callable[[], Any],
    scheduler: BackgroundScheduler | None = None,
    poll_seconds: float | None = None,
    reconcile: Callable[[], Any] | None = None,
    refresh_accounts: Callable[[], Any] | None = None,
    handoff: Callable[[], Any] | None = None,
    ask: Callable[[], Any] | None = None,
) -> BackgroundScheduler:
    """A scheduler (not started) with the four jobs (and `reconcile`, `refresh_accounts`, `handoff` when
    given); pass `scheduler` to add them to another one.

    `poll_seconds` overrides POLL_SECONDS (tests use fractions of a second).
    """
    zone = ZoneInfo(settings.digest_tz)
    sched = scheduler or BackgroundScheduler(timezone=zone)
    now = datetime.now(UTC)
    every = float(settings.poll_seconds)
    hour, _, minute = settings.digest_time.partition(":")
    common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "replace_existing": True}
    sched.add_job(
        guarded("poll", poll),
        IntervalTrigger(seconds=every, timezone=zone),
        id="poll",
        name="poll every account and region",
        next_run_time=now,  # the first poll happens at start, not one interval later
        # A run that starts late by more than one interval is dropped: the next one is due anyway.
        misfire_grace_time=max(1, int(every)),
        **common,
    )
    sched.add_job(
        guarded("outbox", flush),
        IntervalTrigger(seconds=OUTBOX_SECONDS, timezone=zone),
        id="outbox",
        name="send pending Slack messages",
        next_run_time=now,
        misfire_grace_time=OUTBOX_SECONDS,
        **common,
    )
    if handoff is not None:
        sched.add_job(
            guarded("handoff", handoff),
            IntervalTrigger(seconds=OUTBOX_SECONDS, timezone=zone),
            id="handoff",
            name="send pending hand-offs (PagerDuty, webhook)",
            next_run_time=now,
            misfire_grace_time=OUTBOX_SECONDS,
            **common,
        )
    if reconcile is not None:
        sched.add_job(
            guarded("reconcile", reconcile),
            IntervalTrigger(seconds=RECONCILE_SECONDS, timezone=zone),
            id="reconcile",
            name="finish fixes and undos a crash left in flight",
            next_run_time=now,  # on start: a fix the last process died in is settled first
            misfire_grace_time=RECONCILE_SECONDS,
            **common,
        )
    sched.add_job(
        guarded("digest", digest_due),
        CronTrigger(hour=int(hour), minute=int(minute), timezone=zone),
        id="digest",
        name=f"daily digest at {settings.digest_time} {settings.digest_tz}",
        # Late is fine (send_if_due decides); the catch-up job covers a longer outage.
        misfire_grace_time=3600,
        **common,
    )
    sched.add_job(
        guarded("digest-catch-up", digest_due),
        IntervalTrigger(seconds=DIGEST_RETRY_SECONDS, timezone=zone),
        id="digest_catch_up",
        name="send the digest if due and not yet sent",
        next_run_time=now,
        misfire_grace_time=DIGEST_RETRY_SECONDS,
        **common,
    )
    sched.add_job(
        guarded("expiry", expire),
        IntervalTrigger(seconds=EXPIRY_SECONDS, timezone=zone),
        id="expiry",
        name="exception expiry reminders",
        next_run_time=now,
        misfire_grace_time=EXPIRY_SECONDS,
        **common,
    )
    if refresh_accounts is not None:
        sched.add_job(
            guarded("accounts", refresh_accounts),
            IntervalTrigger(seconds=REFRESH_SECONDS, timezone=zone),
            id="accounts",
            name="discover the organisation's accounts and enabled regions",
            # The first poll discovers at start; this job picks up new and suspended accounts daily.
            misfire_grace_time=REFRESH_SECONDS // 2,
            **common,
        )
    if ask is not None:
        sched.add_job(guarded("ask", ask), IntervalTrigger(seconds=ASK_SECONDS, timezone=zone), id="ask",
                      name="ask actors by DM; tell responders of unanswered asks", next_run_time=now,
                      misfire_grace_time=ASK_SECONDS, **common)
    return sched
