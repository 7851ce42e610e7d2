"""Shared fixtures: fake AWS credentials and a clean environment for every test, a fresh store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.store import Store

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test can reach a real account or workspace: fake credentials, no config files."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "SLACK_", "BOTO")) or name in ("ALERT_CHANNEL", "RESPONDERS", "DB_PATH"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh, migrated database file for one test."""
    return Store(tmp_path / "bucketwatch.db")


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    return CORPUS
