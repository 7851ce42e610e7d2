"""The command line says what went wrong in one line, and refuses nothing it can do (a review of what the
CLI says against what it does; each case failed before its fix)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from bot.cli import main
from bot.core.config import ConfigError
from bot.core.problems import checked_settings
from tests.ports import unused_port

REPO = Path(__file__).resolve().parents[1]
GOOD = {"SLACK_BOT_TOKEN": "xoxb-1-good", "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
        "ALERT_CHANNEL": "C0ALERTS", "AWS_ACCOUNTS": "111122223333"}


def test_a_db_path_that_is_not_a_database_is_one_line_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_text("my notes, not a database\n")
    with pytest.raises(ConfigError) as refused:  # run and doctor
        checked_settings({**GOOD, "DB_PATH": str(garbage)})
    assert list(refused.value.problems) == [f"DB_PATH: {garbage} is not a SQLite database; give the bot's database file"
                                      " or a new path"]
    monkeypatch.setenv("DB_PATH", str(garbage))
    monkeypatch.chdir(tmp_path)
    assert main(["digest"]) == 3  # any command that opens it: one line, no traceback
    err = capsys.readouterr().err
    assert f"{garbage} is not a bucketwatch database" in err and "Traceback" not in err
    assert garbage.read_text() == "my notes, not a database\n"  # and nothing was written into it
    empty = tmp_path / "new.db"
    empty.touch()
    checked_settings({**GOOD, "DB_PATH": str(empty)})  # an empty file becomes the database


def test_a_dotenv_that_cannot_be_read_is_a_configuration_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_bytes(b"\xff\xfeSLACK_BOT_TOKEN=x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DB_PATH", str(tmp_path / "bw.db"))
    assert main(["digest"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bucketwatch: configuration: .env: cannot be read (UnicodeDecodeError)")
    assert "Traceback" not in err


def test_poll_once_reads_a_setup_with_only_the_findings_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "nothing to poll" (exit 2), though the poller reads FINDINGS_QUEUE_URL, as `run` does."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DB_PATH", str(tmp_path / "bw.db"))
    with mock_aws():
        url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="trail-findings")["QueueUrl"]
        monkeypatch.setenv("FINDINGS_QUEUE_URL", url)
        assert main(["poll", "--once"]) == 0
    said = capsys.readouterr()
    assert "findings:trail-findings" in said.out + said.err and "nothing to poll" not in said.err


def test_a_worker_that_cannot_reach_sqs_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{unused_port()}", "AWS_MAX_ATTEMPTS": "1",
           "FINDINGS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/findings",
           "DB_PATH": str(tmp_path / "bw.db")}
    done = subprocess.run([sys.executable, "-m", "bot", "worker", "--once", "--queue",
                           "https://sqs.us-east-1.amazonaws.com/111122223333/files"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "bucketwatch worker: cannot receive from https://sqs.us-east-1.amazonaws.com/111122223333/files:" \
           " EndpointConnectionError" in done.stderr
    assert "Traceback" not in done.stderr


def test_who_changed_on_the_command_line_takes_bucket_names_only(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("", "a b<!channel>"):
        with pytest.raises(SystemExit) as refused:
            main(["who-changed", name])
        assert refused.value.code == 2
        assert "is not a bucket name" in capsys.readouterr().err
