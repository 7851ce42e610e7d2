"""`python -m bot poll --once` and `backfill --days N` end to end against the fake CloudTrail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.store.database import Store
from bot.store.index import who_changed
from standins.cloudtrail import FakeCloudTrailServer, public_bpa_off, s3_record

ACCT_A = "111122223333"
ACCT_B = "444455556666"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_url: str) -> Iterator[FakeCloudTrailServer]:
    monkeypatch.chdir(tmp_path)  # no developer .env leaks in
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3_CONTROL", moto_url)
    with FakeCloudTrailServer() as srv:
        srv.fake.default_account = ACCT_A
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", srv.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", srv.url)
        monkeypatch.setenv("DB_PATH", str(tmp_path / "bw.db"))
        monkeypatch.setenv("AWS_ACCOUNTS", f"{ACCT_A},{ACCT_B}:arn:aws:iam::{ACCT_B}:role/Read")
        monkeypatch.setenv("AWS_REGIONS", "us-east-1")
        yield srv


def test_poll_without_once_points_at_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["poll"]) == 2
    assert "python -m bot run" in capsys.readouterr().err


def test_poll_once_prints_findings_and_a_line_per_source(
    server: FakeCloudTrailServer, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    server.fake.add(public_bpa_off(bucket="brett-public-test-bucket", when=now - timedelta(minutes=3)))
    server.fake.deny_accounts.add(ACCT_B)
    assert main(["poll", "--once"]) == 1  # one source failed
    out = capsys.readouterr().out
    assert "brett-public-test-bucket" in out and "brett" in out
    assert f"lookup:{ACCT_A}:us-east-1  ok  seen 1, new 1, findings 1" in out
    assert f"lookup:{ACCT_B}:us-east-1  ERROR AccessDeniedException" in out
    # A second run finds the event already handled.
    server.fake.deny_accounts.clear()
    assert main(["poll", "--once"]) == 0
    assert "0 new configuration change(s), 0 finding(s)" in capsys.readouterr().out


def test_poll_once_opens_the_alert_and_queues_its_card_for_the_bot(
    server: FakeCloudTrailServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.fake.add(public_bpa_off(bucket="brett-public-test-bucket", when=datetime.now(UTC) - timedelta(minutes=2)))
    assert main(["poll", "--once"]) == 0
    assert "1 Slack message(s) queued for the running bot" in capsys.readouterr().out
    store = Store(tmp_path / "bw.db")
    alerts = list(store.db.table("alerts").rows)
    assert [(a["bucket"], a["status"]) for a in alerts] == [("brett-public-test-bucket", "open")]
    assert main(["poll", "--once"]) == 0  # nothing new: no second alert, no second card
    assert store.db.table("alerts").count == 1 and store.db.table("outbox").count == 1


def test_poll_once_with_nothing_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DB_PATH", str(tmp_path / "bw.db"))
    assert main(["poll", "--once"]) == 2
    assert "AWS_ACCOUNTS" in capsys.readouterr().err


def test_backfill_fills_the_who_changed_index(
    server: FakeCloudTrailServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    server.fake.add(public_bpa_off(bucket="history", when=old))
    server.fake.add(s3_record("PutBucketVersioning", bucket="history", when=old + timedelta(hours=1)))
    server.fake.add(s3_record("GetBucketAcl", bucket="history", when=old))
    server.fake.add(public_bpa_off(bucket="too-old", when=old - timedelta(days=10)))
    assert main(["backfill", "--days", "5"]) == 0
    assert "2 configuration change(s) indexed" in capsys.readouterr().out
    changes = who_changed(Store(tmp_path / "bw.db"), "history", days=10)
    assert [c.event_name for c in changes] == ["PutBucketVersioning", "PutBucketPublicAccessBlock"]
    assert who_changed(Store(tmp_path / "bw.db"), "too-old", days=30) == []


def test_who_changed_cli_asks_lookup_events_when_the_index_is_empty(
    server: FakeCloudTrailServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.fake.add(public_bpa_off(bucket="never-polled-bucket", when=datetime.now(UTC) - timedelta(days=2)))
    assert main(["who-changed", "never-polled-bucket", "--days", "7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Asked: the local index (nothing there), then CloudTrail LookupEvents in")
    assert "CloudTrail LookupEvents" in out and "PutBucketPublicAccessBlock" in out
    # Now it is in the index: the second answer comes from there.
    assert main(["who-changed", "never-polled-bucket", "--days", "7"]) == 0
    assert "(from the local index)" in capsys.readouterr().out


def test_who_changed_says_every_lookup_failed_and_exits_1(
    server: FakeCloudTrailServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No credentials at all: nothing could be read, and the answer says so on stdout, not "no changes"."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    assert main(["who-changed", "some-bucket", "--days", "7"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Asked: the local index (nothing there), then CloudTrail LookupEvents in 2 account-region(s)."
    assert out[1] == "Failed: 2 of 2 look-up(s):"
    assert all("credentials" in line.lower() for line in out[2:4])
    assert out[-1] == (
        "No answer for some-bucket, last 7 days: nothing in the local index, and every CloudTrail look-up failed."
    )
    assert not any(line.startswith("No configuration changes") for line in out)


@pytest.mark.parametrize("command", [["who-changed", "b", "--days", "0"], ["backfill", "--days", "-1"],
                                     ["scan", "--workers", "-3", "x"], ["who-changed", "b", "--days", "soon"]])
def test_counts_below_one_are_refused(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(command)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert ("is below 1" in err or "is not a whole number" in err) and "Traceback" not in err
