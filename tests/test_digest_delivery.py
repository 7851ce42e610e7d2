"""The daily digest's delivery: once a day at DIGEST_TIME in DIGEST_TZ, catch-up after downtime, retries,
one post among concurrent callers, exception-expiry reminders, and the CLI posting the same digest."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from bot.app import build_services, build_web_client
from bot.aws.clients import AwsClients
from bot.cli import main
from bot.core.config import load_settings
from bot.services.digest import DigestPostError, DigestService
from bot.slack.mrkdwn import inert
from bot.store.database import Store
from handlers.commands import SUBCOMMANDS, Context, answer
from tests.digest_world import NOW, H, M, SlackStandin, add_alert, add_exception, add_poller, slack, texts  # noqa: F401


def paris(day: int, hh: int, mm: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(2025, 3, day, hh, mm, tzinfo=ZoneInfo("Europe/Paris"))


def test_send_if_due_posts_once_a_day(store: Store, slack: SlackStandin) -> None:  # noqa: F811
    add_alert(store, "b", paris(24, 8))
    service = DigestService(store, tz="Europe/Paris", digest_time="09:00")
    client = slack.client()
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 8, 59))  # not yet due
    assert store.db["digest_runs"].count == 0
    assert service.send_if_due(client, "C0ALERTS", paris(24, 9, 0))  # at DIGEST_TIME
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 9, 5))  # the catch-up job runs again
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 23, 59))
    assert len(slack.posts()) == 1
    assert not service.send_if_due(client, "C0ALERTS", paris(25, 8, 0))
    assert service.send_if_due(client, "C0ALERTS", paris(25, 9, 0))  # the next day, at the time
    assert len(slack.posts()) == 2
    assert [r["day"] for r in store.db["digest_runs"].rows] == ["2025-03-24", "2025-03-25"]
    assert all(r["sent_at"] for r in store.db["digest_runs"].rows)
    post = slack.posts()[0]
    assert (
        # No poller has run in this store: the notification says so before the figures.
        post["text"].startswith("⚠️ No source has been polled yet, so no change could be seen. bucketwatch digest"
                                " for Mon 24 Mar")
        and post["blocks"][0]["type"] == "header"
    )


def test_a_first_start_after_digest_time_waits_for_tomorrow(store: Store, slack: SlackStandin) -> None:  # noqa: F811
    """`run` started at 15:00 for the first time: no digest until DIGEST_TIME, not one at start."""
    service = DigestService(store, tz="Europe/Paris", digest_time="09:00")
    client = slack.client()
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 15, 0))
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 23, 55))
    assert slack.posts() == [] and store.db["digest_runs"].count == 0
    assert service.send_if_due(client, "C0ALERTS", paris(25, 9, 0))
    assert "Sent late" not in json.dumps(slack.posts())


def test_a_bot_down_at_digest_time_catches_up_and_says_so(store: Store, slack: SlackStandin) -> None:  # noqa: F811
    service = DigestService(store, tz="Europe/Paris", digest_time="09:00")
    client = slack.client()
    assert service.send_if_due(client, "C0ALERTS", paris(23, 9, 0))  # yesterday, on time
    assert service.send_if_due(client, "C0ALERTS", paris(24, 14, 32))  # down at 09:00 today, back at 14:32
    late = slack.posts()[-1]
    note = "Sent late: bucketwatch was not running at 09:00 Europe/Paris (DIGEST_TIME) and caught up at 14:32."
    assert note in json.dumps(late["blocks"], ensure_ascii=False)
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 14, 37))
    assert len(slack.posts()) == 2


def test_a_failed_post_is_retried_even_when_late(store: Store, slack: SlackStandin) -> None:  # noqa: F811
    service = DigestService(store, tz="Europe/Paris")
    client = slack.client()
    slack.fail_next = ["ratelimited", "ratelimited"]
    for minute in (0, 5):
        with pytest.raises(DigestPostError):
            service.send_if_due(client, "C0ALERTS", paris(24, 9, minute))
    assert service.send_if_due(client, "C0ALERTS", paris(24, 11, 0))  # Slack is back two hours later
    assert "Sent late" in json.dumps(slack.posts()[-1]["blocks"])


def test_concurrent_callers_post_once(store: Store, slack: SlackStandin) -> None:  # noqa: F811
    service = DigestService(store, tz="Europe/Paris")
    client = slack.client()
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def call() -> None:
        barrier.wait()
        results.append(service.send_if_due(client, "C0ALERTS", paris(24, 9, 30)))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert len(slack.posts()) == 1


def test_a_failed_post_releases_the_claim(store: Store, slack: SlackStandin) -> None:  # noqa: F811
    service = DigestService(store, tz="Europe/Paris")
    client = slack.client()
    slack.fail_next = ["channel_not_found"]
    with pytest.raises(DigestPostError):
        service.send_if_due(client, "C0ALERTS", paris(24, 9, 0))
    assert store.db["digest_runs"].count == 0
    assert service.send_if_due(client, "C0ALERTS", paris(24, 9, 5))  # the retry job
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 9, 10))
    assert len(slack.posts()) == 2  # one refused, one accepted


def test_expiry_reminder_reopens_an_accepted_alert_still_public(store: Store, slack: SlackStandin) -> None:  # noqa: F811
    still = add_alert(
        store,
        "still-open-site",
        NOW - 30 * 24 * H,
        "accepted",
        moves=(("accepted", NOW - 30 * 24 * H),),
        ts="1699999999.000100",
    )
    add_alert(store, "closed-site", NOW - 30 * 24 * H, "accepted", moves=(("accepted", NOW - 30 * 24 * H),))
    add_exception(store, "still-open-site", NOW - H, reason="<!channel> launch")
    add_exception(store, "closed-site", NOW - 2 * H)
    add_exception(store, "not-yet", NOW + H)
    add_exception(store, "revoked", NOW - H, revoked=True)
    public = {"still-open-site": True, "closed-site": False}
    service = DigestService(store, tz="UTC", recheck=lambda a, b, r: public[b or ""])
    reopened: list[tuple[int, str]] = []
    slack.fail_next = ["ratelimited"]  # the first reminder fails: released and sent on the next run

    sent = service.notify_expired(
        slack.client(), "C0ALERTS", reopen=lambda i, why: reopened.append((i, why)), now=NOW
    )
    assert [r.bucket for r in sent] == ["still-open-site"]
    assert reopened == [(still, "exception #1 expired; the bucket is still public")]
    assert sent[0].still_public is True and "is re-opened" in sent[0].text
    assert "<!channel>" not in sent[0].text and "&lt;!channel&gt;" in sent[0].text
    thread_post = slack.posts()[-1]
    assert thread_post["thread_ts"] == "1699999999.000100" and thread_post["reply_broadcast"] is True

    again = service.notify_expired(
        slack.client(),
        "C0ALERTS",
        reopen=lambda i, why: reopened.append((i, why)),
        now=NOW + timedelta(minutes=10),
    )
    assert [r.bucket for r in again] == ["closed-site"]
    assert again[0].still_public is False and again[0].reopen_alert_id is None
    assert "no longer public" in again[0].text
    assert service.expiry_reminders(NOW + 30 * timedelta(minutes=1)) == []  # each reminder once
    assert len(reopened) == 1 and len(slack.posts()) == 3


def test_a_renewed_exception_keeps_the_alert_accepted_and_says_nothing(
    store: Store, slack: SlackStandin  # noqa: F811
) -> None:
    accepted = add_alert(store, "site", NOW - 30 * 24 * H, "accepted", moves=(("accepted", NOW - 30 * 24 * H),))
    old = add_exception(store, "site", NOW - H, account="111122223333", reason="launch")
    add_exception(store, "site", NOW + 90 * 24 * H, account="111122223333", reason="renewed for a quarter")
    service = DigestService(store, tz="UTC", recheck=lambda a, b, r: True)
    reopened: list[tuple[int, str]] = []

    sent = service.notify_expired(slack.client(), "C0ALERTS", reopen=lambda i, w: reopened.append((i, w)), now=NOW)
    assert sent == [] and reopened == [] and slack.posts() == []  # no "alerts again", no re-open
    assert store.db.execute("SELECT status FROM alerts WHERE id = ?", [accepted]).fetchone()[0] == "accepted"
    # The old exception is done with: a later run does not bring it up again either.
    assert service.notify_expired(slack.client(), "C0ALERTS", now=NOW + H) == []
    assert store.db.table("exceptions").get(old)["expiry_notified_at"] is not None


def test_a_failed_reopen_keeps_its_reminder_for_later_and_sends_the_others(
    store: Store, slack: SlackStandin  # noqa: F811
) -> None:
    first = add_alert(store, "first", NOW - 30 * 24 * H, "accepted", moves=(("accepted", NOW - 30 * 24 * H),))
    second = add_alert(store, "second", NOW - 30 * 24 * H, "accepted", moves=(("accepted", NOW - 30 * 24 * H),))
    add_exception(store, "first", NOW - 2 * H)
    add_exception(store, "second", NOW - H)
    service = DigestService(store, tz="UTC", recheck=lambda a, b, r: True)
    reopened: list[int] = []

    def reopen(alert_id: int, why: str) -> None:
        if alert_id == first and not reopened:
            raise RuntimeError("database is locked")
        reopened.append(alert_id)

    sent = service.notify_expired(slack.client(), "C0ALERTS", reopen=reopen, now=NOW)
    assert [r.bucket for r in sent] == ["second"] and reopened == [second]
    assert [p["text"] for p in slack.posts()] == [sent[0].text]  # no reminder claims a re-open that failed
    retry = service.notify_expired(slack.client(), "C0ALERTS", reopen=reopen, now=NOW + 10 * M)
    assert [r.bucket for r in retry] == ["first"] and reopened == [second, first]
    assert len(slack.posts()) == 2


class _FrozenClock(datetime):
    """`datetime` whose now() is NOW: every clock in the bot reads bot.store.utcnow, which asks this."""

    @classmethod
    def now(cls, tz: Any = None) -> _FrozenClock:
        frozen = NOW.astimezone(tz) if tz is not None else NOW.replace(tzinfo=None)
        return cls.fromisoformat(frozen.isoformat())


def test_cli_prints_and_posts_the_same_digest_as_the_slash_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slack: SlackStandin  # noqa: F811
) -> None:
    db = tmp_path / "cli.db"
    store = Store(db)
    opened = add_alert(store, "<b>cli-bucket</b>", NOW - H)
    add_alert(store, "acked", NOW - 5 * H, "acknowledged", moves=(("acknowledged", NOW - 4 * H),))
    add_exception(store, "ends-soon", NOW + 2 * 24 * H)
    add_poller(store, "lookup:111122223333:us-east-1", NOW - timedelta(minutes=2), newest=NOW - 7 * M)
    monkeypatch.chdir(tmp_path)  # no stray .env
    env = {"DB_PATH": str(db), "DIGEST_TZ": "Europe/Paris", "SLACK_BOT_TOKEN": "xoxb-test",
           "SLACK_API_URL": slack.url, "ALERT_CHANNEL": "C0ALERTS", "AWS_ACCOUNTS": "111122223333"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("bot.core.clock.datetime", _FrozenClock)  # the CLI and the bot share one frozen now

    with mock_aws():  # the live re-check reads moto, the same way on both sides
        settings = load_settings()
        services = build_services(settings, build_web_client(settings), Store(db), AwsClients(settings))
        expected = services.digest.build(NOW)
        slash = answer(SUBCOMMANDS["digest"], Context(services, "U0ALICE", "/bucketwatch"), [], "digest")
        assert services.clock() == NOW and (slash.text, slash.blocks) == (expected.text, list(expected.blocks))

        assert main(["digest"]) == 0
        printed = capsys.readouterr().out
        assert printed == expected.plain + "\n"
        # What a person reads in the terminal, figure by figure (Paris is UTC+1 on 24 March 2025).
        assert printed.startswith("Daily digest · Mon 24 Mar 2025 (last 24 h up to Mon 24 Mar 11:00 CET)")
        assert "New (24 h): 2   Open: 1   Acknowledged: 1   Fixed (24 h): 0" in printed
        assert "Time to acknowledge: median 1 hour, worst 1 hour (over 1 alert(s) acknowledged" in printed
        # What was watched comes before the figures.
        assert printed.splitlines()[1].startswith("Watched: 1 source(s) polled successfully within the last")
        assert f"• #{opened} <b>cli-bucket</b> (111122223333 us-east-1) · open · for 1 hour" in printed
        assert "• ends-soon (any account) · ends Wed 26 Mar 11:00 CET · static site (U0CAROL)" in printed
        assert "✅ lookup:111122223333:us-east-1 · last success Mon 24 Mar 10:58 CET · lag 7 minutes" in printed

        assert main(["digest", "--post"]) == 0
        [post] = slack.posts()
        assert post["channel"] == "C0ALERTS" and post["text"] == slash.text
        assert post["blocks"] == inert(slash.blocks)  # the same blocks, every mrkdwn object verbatim
        assert "&lt;b&gt;cli-bucket&lt;/b&gt;" in json.dumps(post["blocks"])
        slack.fail_next = ["not_in_channel"]
        assert main(["digest", "--post"]) == 1
        assert "not_in_channel" in capsys.readouterr().err
