"""The in-process scheduler: jobs and triggers, one poll at a time, errors logged, digest once a day."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.config import Settings
from bot.services.digest import DigestService
from bot.services.scheduler import build_scheduler
from bot.store.database import Store
from tests.test_digest import SlackStandin


def noop() -> None:
    pass


def test_jobs_and_triggers() -> None:
    settings = Settings(poll_seconds=45, digest_time="08:30", digest_tz="Europe/Paris")
    before = datetime.now(UTC)
    sched = build_scheduler(settings, poll=noop, flush=noop, digest_due=noop, expire=noop)
    jobs = {job.id: job for job in sched.get_jobs()}
    assert set(jobs) == {"poll", "outbox", "digest", "digest_catch_up", "expiry"}

    poll = jobs["poll"]
    assert isinstance(poll.trigger, IntervalTrigger) and poll.trigger.interval.total_seconds() == 45
    assert (poll.max_instances, poll.coalesce) == (1, True)
    assert 0 < poll.misfire_grace_time <= 45
    # The first poll, the outbox, the digest catch-up and the expiry check run at start.
    for name in ("poll", "outbox", "digest_catch_up", "expiry"):
        assert before <= jobs[name].next_run_time <= datetime.now(UTC), name
        assert jobs[name].coalesce and jobs[name].max_instances == 1

    digest = jobs["digest"]
    assert isinstance(digest.trigger, CronTrigger)
    assert digest.trigger.timezone == ZoneInfo("Europe/Paris")
    fire = digest.trigger.get_next_fire_time(None, datetime(2025, 3, 24, 12, 0, tzinfo=UTC))
    assert fire == datetime(2025, 3, 25, 8, 30, tzinfo=ZoneInfo("Europe/Paris"))
    # Across the spring DST change the digest stays at 08:30 local time.
    fire = digest.trigger.get_next_fire_time(None, datetime(2025, 3, 30, 0, 0, tzinfo=UTC))
    assert (
        fire is not None and fire.utcoffset().total_seconds() == 7200 and (fire.hour, fire.minute) == (8, 30)
    )
    assert (
        isinstance(jobs["outbox"].trigger, IntervalTrigger)
        and jobs["outbox"].trigger.interval.total_seconds() <= 10
    )


def test_a_failing_job_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def poll() -> None:
        calls.append(1)
        raise RuntimeError("LookupEvents exploded")

    sched = build_scheduler(Settings(), poll=poll, flush=noop, digest_due=noop, expire=noop)
    job = sched.get_job("poll")
    with caplog.at_level(logging.ERROR, logger="bot.services.scheduler"):
        job.func()
        job.func()
    assert len(calls) == 2
    failures = [r for r in caplog.records if "poll" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info and "LookupEvents exploded" in caplog.text


def test_a_slow_poll_never_overlaps_and_starts_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """The one test that runs the real scheduler: no timer is waited for, events say what happened."""
    started, release, finished, refused, second = (threading.Event() for _ in range(5))
    running = 0
    most = 0
    runs = 0
    lock = threading.Lock()

    def slow_poll() -> None:
        nonlocal running, most, runs
        with lock:
            running += 1
            runs += 1
            most = max(most, running)
            first = runs == 1
        (started if first else second).set()
        if first:
            release.wait(10)  # still polling when the next poll falls due
        with lock:
            running -= 1

    def on_event(event: JobEvent) -> None:
        if event.job_id == "poll":
            (refused if event.code == EVENT_JOB_MAX_INSTANCES else finished).set()

    caplog.set_level(logging.ERROR, logger="apscheduler")  # "maximum instances reached" is expected
    sched = build_scheduler(Settings(poll_seconds=60), poll=slow_poll, flush=noop, digest_due=noop, expire=noop)
    sched.add_listener(on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED)
    sched.start()
    try:
        # The first poll at start, not one 60 s interval later.
        assert started.wait(10), "no poll at start"
        poll = sched.get_job("poll")
        poll.modify(next_run_time=datetime.now(UTC))  # the next poll falls due while the first runs
        assert refused.wait(10), "the due poll was neither refused nor run"
        assert not second.is_set() and most == 1
        release.set()
        assert finished.wait(10), "the first poll never ended"
        poll.modify(next_run_time=datetime.now(UTC))  # due again once the first has ended: it runs
        assert second.wait(10), "no poll after the slow one ended"
    finally:
        release.set()
        sched.shutdown(wait=True)
    assert most == 1 and runs == 2


def test_digest_catch_up_at_start_sends_once(store: Store) -> None:
    """Started after DIGEST_TIME: the catch-up job (due at start) posts; the cron job later that day does not."""
    standin = SlackStandin()
    try:
        client = standin.client()
        service = DigestService(
            store,
            tz="Europe/Paris",
            digest_time="09:00",
            clock=lambda: datetime(2025, 3, 24, 13, 0, tzinfo=UTC),
        )
        store.db["digest_runs"].insert({"day": "2025-03-23", "sent_at": "2025-03-23T08:00:00Z"})  # down at 09:00
        settings = Settings(digest_time="09:00", digest_tz="Europe/Paris")
        sched = build_scheduler(
            settings,
            poll=noop,
            flush=noop,
            digest_due=lambda: service.send_if_due(client, "C0ALERTS"),
            expire=noop,
        )
        catch_up = sched.get_job("digest_catch_up")
        assert catch_up.next_run_time <= datetime.now(catch_up.next_run_time.tzinfo)  # due at start
        catch_up.func()  # at start, after 09:00: the missed digest goes out
        assert len(standin.posts()) == 1
        sched.get_job("digest").func()  # the cron job, as at 09:00 the next time it fires today
        catch_up.func()  # and the catch-up's next run
        assert len(standin.posts()) == 1
        assert [r["day"] for r in store.db["digest_runs"].rows] == ["2025-03-23", "2025-03-24"]
    finally:
        standin.close()


def test_accounts_are_discovered_again_daily_when_the_organisation_is_watched() -> None:
    before = datetime.now(UTC)
    sched = build_scheduler(
        Settings(), poll=noop, flush=noop, digest_due=noop, expire=noop, refresh_accounts=noop
    )
    job = sched.get_job("accounts")
    assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval.total_seconds() == 24 * 3600
    # Not at start: the first poll discovers; this job picks up new and suspended accounts each day.
    first = job.trigger.get_next_fire_time(None, before)
    assert first >= before + (job.trigger.interval - job.trigger.interval / 24)
    assert build_scheduler(Settings(), poll=noop, flush=noop, digest_due=noop, expire=noop).get_job("accounts") is None
