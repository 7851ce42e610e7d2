"""The daily digest: figures against the alerts' history (frozen clock), chart, quiet line, escaping,
Slack limits, once-a-day posting through a local Slack Web API stand-in, and exception expiry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from slack_sdk import WebClient

from bot.alerts.digest import MAX_RECHECKS
from bot.app import build_services, build_web_client
from bot.aws.clients import AwsClients
from bot.cli import main
from bot.core.clock import iso
from bot.core.config import load_settings
from bot.services.digest import DigestPostError, DigestService
from bot.slack.digest import QUIET_LINE, chart_lines
from bot.slack.mrkdwn import inert
from bot.store.database import Store
from handlers.commands import SUBCOMMANDS, Context, answer

NOW = datetime(2025, 3, 24, 10, 0, tzinfo=UTC)  # 11:00 in Paris (CET), 03:00 in Los Angeles (PDT)
H = timedelta(hours=1)
M = timedelta(minutes=1)


class SlackStandin:
    """A local HTTP server answering the Slack Web API like Slack does, recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[str] = []  # Slack error codes to answer with, one per call
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                body = json.loads(raw) if raw.startswith("{") else {}
                method = self.path.rsplit("/", 1)[-1]
                standin.calls.append((method, body))
                if standin.fail_next:
                    answer: dict[str, Any] = {"ok": False, "error": standin.fail_next.pop(0)}
                else:
                    answer = {
                        "ok": True,
                        "channel": body.get("channel"),
                        "ts": f"1700000000.{len(standin.calls):06d}",
                    }
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def client(self) -> WebClient:
        return WebClient(token="xoxb-test", base_url=self.url)

    def posts(self) -> list[dict[str, Any]]:
        return [body for method, body in self.calls if method == "chat.postMessage"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    standin = SlackStandin()
    yield standin
    standin.close()


def add_alert(
    store: Store,
    bucket: str | None,
    opened: datetime,
    status: str = "open",
    *,
    moves: tuple[tuple[str, datetime], ...] = (),
    history: bool = True,
    account: str = "111122223333",
    region: str = "us-east-1",
    ts: str | None = None,
    ack_by: str | None = None,
) -> int:
    """An alert row as AlertService writes it, with one history row per move (when `history`)."""
    row: dict[str, Any] = {
        "resource_key": f"{account}/{bucket or '*'}",
        "account": account,
        "region": region,
        "bucket": bucket,
        "detection": "bucket_policy_public",
        "severity": "high",
        "title": "t",
        "status": status,
        "opened_at": iso(opened),
        "channel": "C0ALERTS",
        "ts": ts,
    }
    for to, at in moves:
        if to == "acknowledged":
            row.update(acknowledged_at=iso(at), acknowledged_by=ack_by or "U0BOB")
        elif to in ("fixed", "accepted", "resolved"):
            row.update(closed_at=iso(at), closed_by="U0BOB")
    alert_id = int(store.db.table("alerts").insert(row).last_pk or 0)
    if history:
        previous = "open"
        store.db.table("alert_history").insert(
            {
                "alert_id": alert_id,
                "at": iso(opened),
                "who": "bucketwatch",
                "status_from": None,
                "status_to": "open",
                "note": "",
            }
        )
        for to, at in moves:
            store.db.table("alert_history").insert(
                {
                    "alert_id": alert_id,
                    "at": iso(at),
                    "who": "U0BOB",
                    "status_from": previous,
                    "status_to": to,
                    "note": "",
                }
            )
            previous = to
    return alert_id


def add_exception(
    store: Store,
    bucket: str | None,
    expires: datetime,
    *,
    reason: str = "static site",
    owner: str = "U0CAROL",
    account: str | None = None,
    revoked: bool = False,
) -> int:
    row = {
        "account": account,
        "bucket": bucket,
        "reason": reason,
        "owner": owner,
        "created_at": iso(NOW - 40 * H),
        "expires_at": iso(expires),
        "revoked_at": iso(NOW - H) if revoked else None,
        "expiry_notified_at": None,
    }
    return int(store.db.table("exceptions").insert(row).last_pk or 0)


def add_poller(
    store: Store,
    source: str,
    ok: datetime | None,
    *,
    error: str | None = None,
    attempt: datetime | None = None,
    newest: datetime | None = None,
) -> None:
    """A poller_state row; `newest`: the newest event the source returned (lag = now − newest)."""
    store.db.table("poller_state").insert(
        {
            "source": source,
            "last_success": iso(ok),
            "last_attempt": iso(attempt or ok),
            "last_error": error,
            "lag_seconds": None,
            "watermark": iso(ok),
            "events_seen": 0,
            "newest_event": iso(newest),
        }
    )


def texts(blocks: list[Any]) -> str:
    """Every text of every block, as Slack would receive it."""
    return json.dumps([b.to_dict() for b in blocks], ensure_ascii=False)


def test_figures_match_the_alert_history(store: Store) -> None:
    add_alert(store, "open-one", NOW - 2 * H)
    add_alert(store, "acked", NOW - 5 * H, "acknowledged", moves=(("acknowledged", NOW - 4 * H),))  # ack 1 h
    add_alert(
        store,
        "old-fixed",
        NOW - 30 * H,
        "fixed",  # not new; ack 10 h and fix 20 h, both in the window
        moves=(("acknowledged", NOW - 20 * H), ("fixed", NOW - 10 * H)),
    )
    add_alert(store, "auto", NOW - 3 * H, "resolved", moves=(("resolved", NOW - 2.5 * H),))  # fix 30 min
    add_alert(store, "expected", NOW - 6 * H, "accepted", moves=(("accepted", NOW - 5 * H),))
    add_alert(
        store, "long-ago", NOW - 72 * H, "fixed", moves=(("fixed", NOW - 48 * H),)
    )  # outside the window
    add_alert(
        store, "quick", NOW - H, "acknowledged", moves=(("acknowledged", NOW - 50 * timedelta(minutes=1)),)
    )
    # Written without history lines: the alert's own columns count (ack 30 min, fix 1 h).
    add_alert(
        store,
        "no-history",
        NOW - 8 * H,
        "fixed",
        history=False,
        moves=(("acknowledged", NOW - 7.5 * H), ("fixed", NOW - 7 * H)),
    )

    digest = DigestService(store, tz="Europe/Paris").build(NOW)
    fig = digest.figures

    assert (fig.new, fig.open, fig.acknowledged) == (6, 1, 2)
    assert (fig.fixed, fig.accepted, fig.resolved) == (2, 1, 1)
    assert sorted(fig.ack_times) == [timedelta(minutes=10), timedelta(minutes=30), H, 10 * H]
    assert (fig.ack_median, fig.ack_worst) == (timedelta(minutes=45), 10 * H)
    assert sorted(fig.fix_times) == [timedelta(minutes=30), H, 20 * H]
    assert (fig.fix_median, fig.fix_worst) == (H, 20 * H)
    assert not digest.figures.quiet
    rendered = texts(digest.blocks)
    assert "median 45 minutes, worst 10 hours (over 4 alert(s) acknowledged in the last 24 h)" in rendered
    # "over 3" beside "Fixed 2": the span says which alerts it is over, in the counts' own words.
    assert ("median 1 hour, worst 20 hours (over 3 alert(s) whose exposure ended in the last 24 h: Fixed 2"
            " with the button, Resolved 1 by a later change)") in rendered
    assert "*New (24 h)*\\n6" in rendered and "*Resolved (24 h)*\\n1" in rendered
    assert "new 6, open 1, acknowledged 2, fixed 2, accepted 1, resolved 1" in digest.text
    assert "Time to acknowledge: median 45 minutes" in digest.plain and "Still open (3)" in digest.plain


def test_chart_has_fourteen_local_days(store: Store) -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    add_alert(store, "a", at("2025-03-24T06:00"))  # 23:00 on the 23rd in Los Angeles, not the 24th
    add_alert(store, "b", at("2025-03-24T08:00"))  # 01:00 on the 24th
    for hour in (16, 17, 18):
        add_alert(store, f"c{hour}", at(f"2025-03-20T{hour}:00"))  # the 20th, local
    add_alert(store, "first-day", at("2025-03-11T08:00"))  # 01:00 on the 11th: the oldest row
    add_alert(store, "too-old", at("2025-03-11T06:00"))  # 23:00 on the 10th: off the chart

    fig = DigestService(store, tz="America/Los_Angeles").figures(NOW)
    assert len(fig.chart) == 14
    assert fig.chart[0][0].isoformat() == "2025-03-11" and fig.chart[-1][0].isoformat() == "2025-03-24"
    counts = {d.day: n for d, n in fig.chart}
    assert (counts[11], counts[20], counts[23], counts[24]) == (1, 3, 1, 1)
    assert sum(counts.values()) == 6

    digest = DigestService(store, tz="America/Los_Angeles").build(NOW)
    rows = chart_lines(fig.chart)
    assert rows[9].split() == ["Thu", "20", "▇▇▇", "3"]
    assert rows[-1].split() == ["Mon", "24", "▇", "1"]
    assert rows[1].split() == ["Wed", "12", "0"]
    assert "\n".join(f"  {row}" for row in rows) in digest.plain
    chart_block = next(
        b.to_dict()["text"]["text"] for b in digest.blocks if "Alerts per day" in str(b.to_dict())
    )
    assert (
        chart_block
        == "*Alerts per day, last 14 days (America/Los_Angeles)*\n```\n" + "\n".join(rows) + "\n```"
    )


def test_all_quiet_says_what_was_watched_first(store: Store) -> None:
    add_alert(store, "old", NOW - 96 * H, "fixed", moves=(("fixed", NOW - 90 * H),))
    add_poller(store, "lookup:111122223333:us-east-1", NOW - timedelta(minutes=2))
    add_exception(store, "later", NOW + timedelta(days=30))
    digest = DigestService(store, tz="UTC", sources=lambda: ["lookup:111122223333:us-east-1"]).build(NOW)
    assert digest.figures.quiet
    watched = "Watched: 1 source(s) polled successfully within the last 30 minutes: lookup:111122223333:us-east-1."
    assert digest.plain == f"{watched}\n{QUIET_LINE}"
    assert digest.text == f"{watched} {QUIET_LINE}"
    assert len(digest.blocks) == 1 and digest.blocks[0].to_dict()["text"]["text"] == f"{watched}\n{QUIET_LINE}"


def test_nothing_configured_is_never_all_quiet(store: Store) -> None:
    """No AWS_ACCOUNTS, TRAIL_BUCKETS or TRAIL_QUEUE_URLS: nothing was checked, and the digest says so first."""
    digest = DigestService(store, tz="UTC", sources=list).build(NOW)
    assert not digest.figures.quiet
    assert "All quiet" not in digest.plain + digest.text + texts(digest.blocks)
    assert digest.plain.splitlines()[1].startswith("⚠️ Nothing is watched: AWS_ACCOUNTS, TRAIL_BUCKETS and")
    assert digest.text.startswith("⚠️ Nothing is watched")
    assert digest.blocks[1].to_dict()["text"]["text"].startswith("⚠️ Nothing is watched")
    # An old source left in the database from an earlier configuration does not count as watched.
    add_poller(store, "lookup:999988887777:us-east-1", NOW - timedelta(minutes=2))
    again = DigestService(store, tz="UTC", sources=list).build(NOW)
    assert not again.figures.quiet and "lookup:999988887777" not in again.plain


def test_a_configured_source_never_polled_is_named_not_quiet(store: Store) -> None:
    names = ["lookup:111122223333:us-east-1", "trail:org-trail"]
    add_poller(store, names[0], NOW - timedelta(minutes=2))
    digest = DigestService(store, tz="UTC", sources=lambda: names).build(NOW)
    assert not digest.figures.quiet
    lines = digest.plain.splitlines()
    assert lines[1] == "⚠️ 1 of 2 source(s) failing, late or never polled: trail:org-trail (see Pollers)."
    assert lines[2].startswith("Watched: 1 source(s) polled successfully")


@pytest.mark.parametrize("trouble", ["failing", "late", "expiring"])
def test_not_quiet_when_a_poller_fails_or_an_exception_ends_soon(store: Store, trouble: str) -> None:
    if trouble == "failing":
        add_poller(
            store,
            "lookup:111122223333:eu-west-1",
            NOW - 2 * H,
            error="AccessDenied: no cloudtrail:LookupEvents",
            attempt=NOW - timedelta(minutes=1),
        )
    elif trouble == "late":
        add_poller(store, "lookup:111122223333:eu-west-1", NOW - 3 * H)
    else:
        add_exception(store, "site", NOW + 3 * 24 * H)
    add_poller(store, "lookup:111122223333:us-east-1", NOW - timedelta(minutes=1))
    digest = DigestService(store, tz="UTC").build(NOW)
    assert not digest.figures.quiet
    if trouble == "expiring":
        assert [e.bucket for e in digest.figures.expiring] == ["site"]
        assert "Exceptions ending within 7 days (1)" in digest.plain
    else:
        assert [p.healthy for p in digest.figures.pollers] == [False, True]  # the failing one first
        assert "Pollers (1 healthy, 1 failing or late)" in digest.plain
        assert ("AccessDenied" in digest.plain) == (trouble == "failing")


def test_exceptions_expiring_within_seven_days_only(store: Store) -> None:
    add_exception(store, "soon", NOW + 2 * 24 * H)
    add_exception(store, "sooner", NOW + 5 * H)
    add_exception(store, "later", NOW + 10 * 24 * H)
    add_exception(store, "revoked", NOW + 24 * H, revoked=True)
    add_exception(store, "gone", NOW - H)
    fig = DigestService(store, tz="UTC").figures(NOW)
    assert [e.bucket for e in fig.expiring] == ["sooner", "soon"]


def test_every_stored_string_is_escaped(store: Store) -> None:
    hostile = "<!channel>"
    reason = "<https://evil.example|click> & <@U0VICTIM>"
    add_alert(store, hostile, NOW - H, account="<!here>")
    add_alert(
        store, "acked", NOW - 2 * H, "acknowledged", moves=(("acknowledged", NOW - H),), ack_by="<!everyone>"
    )
    add_exception(store, hostile, NOW + 24 * H, reason=reason, owner="<!subteam^S0X>")
    add_poller(store, "lookup:<!here>:us-east-1", NOW - 2 * H, error="<!channel> denied", attempt=NOW)
    digest = DigestService(store, tz="UTC", recheck=lambda a, b, r: True).build(NOW)
    rendered = texts(digest.blocks)
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<https://evil", "<@U0VICTIM>", "<!subteam"):
        assert raw not in rendered
    assert (
        "&lt;!channel&gt;" in rendered
        and "&lt;https://evil.example|click&gt; &amp; &lt;@U0VICTIM&gt;" in rendered
    )
    assert "Still public on a fresh re-check (2)" in rendered
    # The terminal shows the names as they are: nothing there pings anyone.
    assert hostile in digest.plain and reason in digest.plain


def test_recheck_verdicts_and_failures(store: Store) -> None:
    for name in ("public", "closed", "unknown", "broken"):
        add_alert(store, name, NOW - H)
    add_alert(store, None, NOW - H)  # account-level alert: re-checked with bucket None
    asked = []

    def recheck(account: str, bucket: str | None, region: str) -> bool | None:
        asked.append((account, bucket, region))
        if bucket == "broken":
            raise RuntimeError("boom")
        return {"public": True, "closed": False, "unknown": None, None: True}[bucket]

    fig = DigestService(store, tz="UTC", recheck=recheck).figures(NOW)
    assert [a.bucket for a in fig.still_public] == ["public", None]
    assert fig.recheck_unknown == 2 and fig.recheck_skipped == 0
    assert ("111122223333", None, "us-east-1") in asked


def test_five_hundred_open_alerts_stay_within_slack_limits(store: Store, slack: SlackStandin) -> None:
    with store.atomic():
        for i in range(500):
            add_alert(
                store, f"bucket-{i:03d}-" + "x" * 40, NOW - (i + 1) * timedelta(minutes=5), history=False
            )
    for i in range(60):
        add_poller(store, f"lookup:{i:012d}:us-east-1", NOW - 2 * H, error="AccessDenied", attempt=NOW)
    calls = []

    def recheck(account: str, bucket: str | None, region: str) -> bool:
        calls.append(bucket)
        return True

    service = DigestService(store, tz="UTC", recheck=recheck)
    digest = service.build(NOW)
    assert digest.figures.open == 500 and len(calls) == MAX_RECHECKS
    assert digest.figures.recheck_skipped == 500 - MAX_RECHECKS
    assert len(digest.blocks) <= 50
    dicts = [b.to_dict() for b in digest.blocks]  # to_dict() runs slack_sdk's own limit checks too
    for block in dicts:
        assert len(block.get("text", {}).get("text", "")) <= 3000
        assert len(block.get("fields", [])) <= 10
    open_section = next(
        b["text"]["text"] for b in dicts if b.get("text", {}).get("text", "").startswith("*Still open")
    )
    shown = open_section.count("\n• #")
    assert 10 < shown < 500 and open_section.endswith(f"… and {500 - shown} more")
    assert service.post(slack.client(), "C0ALERTS", NOW)
    assert len(slack.posts()) == 1 and slack.posts()[0]["channel"] == "C0ALERTS"


def paris(day: int, hh: int, mm: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(2025, 3, day, hh, mm, tzinfo=ZoneInfo("Europe/Paris"))


def test_send_if_due_posts_once_a_day(store: Store, slack: SlackStandin) -> None:
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


def test_a_first_start_after_digest_time_waits_for_tomorrow(store: Store, slack: SlackStandin) -> None:
    """`run` started at 15:00 for the first time: no digest until DIGEST_TIME, not one at start."""
    service = DigestService(store, tz="Europe/Paris", digest_time="09:00")
    client = slack.client()
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 15, 0))
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 23, 55))
    assert slack.posts() == [] and store.db["digest_runs"].count == 0
    assert service.send_if_due(client, "C0ALERTS", paris(25, 9, 0))
    assert "Sent late" not in json.dumps(slack.posts())


def test_a_bot_down_at_digest_time_catches_up_and_says_so(store: Store, slack: SlackStandin) -> None:
    service = DigestService(store, tz="Europe/Paris", digest_time="09:00")
    client = slack.client()
    assert service.send_if_due(client, "C0ALERTS", paris(23, 9, 0))  # yesterday, on time
    assert service.send_if_due(client, "C0ALERTS", paris(24, 14, 32))  # down at 09:00 today, back at 14:32
    late = slack.posts()[-1]
    note = "Sent late: bucketwatch was not running at 09:00 Europe/Paris (DIGEST_TIME) and caught up at 14:32."
    assert note in json.dumps(late["blocks"], ensure_ascii=False)
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 14, 37))
    assert len(slack.posts()) == 2


def test_a_failed_post_is_retried_even_when_late(store: Store, slack: SlackStandin) -> None:
    service = DigestService(store, tz="Europe/Paris")
    client = slack.client()
    slack.fail_next = ["ratelimited", "ratelimited"]
    for minute in (0, 5):
        with pytest.raises(DigestPostError):
            service.send_if_due(client, "C0ALERTS", paris(24, 9, minute))
    assert service.send_if_due(client, "C0ALERTS", paris(24, 11, 0))  # Slack is back two hours later
    assert "Sent late" in json.dumps(slack.posts()[-1]["blocks"])


def test_concurrent_callers_post_once(store: Store, slack: SlackStandin) -> None:
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


def test_a_failed_post_releases_the_claim(store: Store, slack: SlackStandin) -> None:
    service = DigestService(store, tz="Europe/Paris")
    client = slack.client()
    slack.fail_next = ["channel_not_found"]
    with pytest.raises(DigestPostError):
        service.send_if_due(client, "C0ALERTS", paris(24, 9, 0))
    assert store.db["digest_runs"].count == 0
    assert service.send_if_due(client, "C0ALERTS", paris(24, 9, 5))  # the retry job
    assert not service.send_if_due(client, "C0ALERTS", paris(24, 9, 10))
    assert len(slack.posts()) == 2  # one refused, one accepted


def test_expiry_reminder_reopens_an_accepted_alert_still_public(store: Store, slack: SlackStandin) -> None:
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
    store: Store, slack: SlackStandin
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
    store: Store, slack: SlackStandin
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slack: SlackStandin
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
