"""DB_PATH's default does not depend on the working directory, and every command that opens the
database says where it is: run from another folder, `who-changed` still finds what `scan --index` stored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli import main
from standins.cloudtrail import public_bpa_off

BUCKET = "brett-public-test-bucket"


def test_another_folder_reads_the_same_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = Path(os.environ["HOME"]) / ".local/share/bucketwatch/bucketwatch.db"
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    (here / "trail.json").write_text(json.dumps({"Records": [public_bpa_off(bucket=BUCKET)]}))

    monkeypatch.chdir(here)
    assert main(["scan", "--index", "--no-progress", "trail.json"]) == 0
    assert f"bucketwatch: database {expected}\n" in capsys.readouterr().err

    monkeypatch.chdir(there)
    assert main(["who-changed", BUCKET]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0] == f"bucketwatch: database {expected}"
    assert "PutBucketPublicAccessBlock" in out and "brett" in out
    assert not (here / "data").exists() and not (there / "data").exists()


def test_a_relative_db_path_is_shown_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DB_PATH", "state/bw.db")
    assert main(["digest"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"bucketwatch: database {tmp_path}/state/bw.db"]
