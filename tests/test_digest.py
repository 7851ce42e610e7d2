"""The daily digest: figures against the alerts' history (frozen clock), chart, quiet line, escaping,
Slack limits, once-a-day posting through a local Slack Web API stand-in, and exception expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.alerts.digest import MAX_RECHECKS
from bot.services.digest import DigestService
from bot.slack.digest import QUIET_LINE, chart_lines
from bot.store.database import Store
from tests.digest_world import NOW, H, M, SlackStandin, add_alert, add_exception, add_poller, slack, texts  # noqa: F401


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
    watched = "Watched: 1 source(s) polled successfully within the last 5 minutes: lookup:111122223333:us-east-1."
    assert digest.plain == f"{watched}\n{QUIET_LINE}"
    assert digest.text == f"{watched} {QUIET_LINE}"
    assert len(digest.blocks) == 1 and digest.blocks[0].to_dict()["text"]["text"] == f"{watched}\n{QUIET_LINE}"


def test_nothing_configured_is_never_all_quiet(store: Store) -> None:
    """No AWS_ACCOUNTS, TRAIL_BUCKETS or TRAIL_QUEUE_URLS: nothing was checked, and the digest says so first."""
    digest = DigestService(store, tz="UTC", sources=list).build(NOW)
    assert not digest.figures.quiet
    assert "All quiet" not in digest.plain + digest.text + texts(digest.blocks)
    assert digest.plain.splitlines()[1].startswith("⚠️ Nothing is watched: none of AWS_ACCOUNTS, TRAIL_BUCKETS,")
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


def test_five_hundred_open_alerts_stay_within_slack_limits(store: Store, slack: SlackStandin) -> None:  # noqa: F811
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
