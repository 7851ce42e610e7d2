"""Shared fixtures: fake AWS credentials and a clean environment for every test, a fresh store."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
import pytest

from bot.cli.common import CHATTY_LOGGERS, SECRET_BEARING_LOGGERS
from bot.core.config import SETTINGS
from bot.store.database import Store
from tests.clocks import RetryClock
from tests.migrated import migrated_copy

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test can reach a real account or workspace: fake credentials, no config files, a home of its own."""
    settings_names = {setting.name for setting in SETTINGS}
    for name in list(os.environ):
        # Proxy variables too: slack-sdk and botocore would send loopback stand-in traffic through them.
        proxy = name.lower() in ("http_proxy", "https_proxy", "all_proxy")
        if proxy or name.startswith(("AWS_", "SLACK_", "BOTO", "MOTO_")) or name in settings_names:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # DB_PATH's default lives under the home folder: a test (or a command it starts) never touches the real one.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A command run in-process (`main([...])`) configures logging: undo it, so no handler outlives its test."""
    root = logging.getLogger()
    handlers, levels = list(root.handlers), {name: logging.getLogger(name).level for name in _LOGGERS}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


_LOGGERS = ("", *SECRET_BEARING_LOGGERS, *CHATTY_LOGGERS)


class _SearchPaths(list[str]):
    """A shared loader's search paths: boto3 appends its own data folder once per Session."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader() -> Iterator[None]:
    """Every botocore session in a test process reads the service models through one loader.

    The tests create hundreds of sessions (one AwsClients per test, one per assumed role), and each
    would parse the same JSON models again: half the CPU of the AWS-heavy tests. The models are
    the same files; the processes the tests start (CLI, `bot run`, the demo) load their own.
    """
    loaders: dict[str | None, botocore.loaders.Loader] = {}
    real = botocore.session.create_loader

    def shared(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in loaders:
            loader = real(search_path_string)
            loader._search_paths = _SearchPaths(loader.search_paths)
            loaders[search_path_string] = loader
        return loaders[search_path_string]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared)
        yield


_real_connect = socket.socket.connect


def _loopback_only(sock: socket.socket, address: Any) -> Any:
    """Tests talk to stand-ins on 127.0.0.1 only: a connection anywhere else is a bug, not a slow test."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ConnectionRefusedError(f"test tried to reach {host}: only 127.0.0.1 stand-ins are allowed")
    return _real_connect(sock, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def retry_clock(monkeypatch: pytest.MonkeyPatch) -> RetryClock:
    """Clients created during the test retry (throttling) without real back-off waits."""
    return RetryClock.install(monkeypatch)


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_url(_moto_server: str) -> str:
    """moto's server on 127.0.0.1, for tests that need S3/S3 Control/IAM over real HTTP (point
    AWS_ENDPOINT_URL_<SERVICE> at it); LookupEvents is the CloudTrail stand-in's.

    One server per test process (pytest-xdist worker), emptied before each test: what a test sees
    does not depend on which tests ran before it on the same worker.
    """
    request = urllib.request.Request(f"{_moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
    return _moto_server


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh, migrated database file for one test: a copy of one migrated file (tests/migrated.py)
    (running every migration again cost ~25 ms of CPU a test). Migrating a new file is still what
    every command started as a process does (the CLI, crash and process tests)."""
    return Store(migrated_copy(tmp_path / "bucketwatch.db"))


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    return CORPUS
