"""The committed slack-manifest.yaml is what `python -m bot manifest` prints for the defaults; --url and
--socket-mode as a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_committed_manifest_matches_the_generator(tmp_path: Path) -> None:
    committed = "\n".join(
        line for line in (ROOT / "slack-manifest.yaml").read_text().splitlines() if not line.startswith("#")
    )
    printed = subprocess.run(
        [sys.executable, "-m", "bot", "manifest"], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    ).stdout
    assert json.loads(committed) == json.loads(printed)


def _manifest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "manifest", *args], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
    )


def test_manifest_url_replaces_the_placeholder_in_every_request_url(tmp_path: Path) -> None:
    done = _manifest(tmp_path, "--url", "https://bw.example.org/")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    urls = {
        manifest["features"]["slash_commands"][0]["url"],
        manifest["settings"]["interactivity"]["request_url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
    }
    assert urls == {"https://bw.example.org/slack/events"}
    assert "YOUR-HOST" not in done.stdout and manifest["settings"]["socket_mode_enabled"] is False
    # Moving a Socket Mode bot to HTTP: --url wins over the token in the environment.
    moved = json.loads(_manifest(tmp_path, "--url", "https://bw.example.org", SLACK_APP_TOKEN="xapp-1").stdout)
    assert moved["settings"]["socket_mode_enabled"] is False


def test_manifest_socket_mode_needs_no_app_token_and_names_its_scope(tmp_path: Path) -> None:
    done = _manifest(tmp_path, "--socket-mode")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in manifest["settings"]["interactivity"]
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "connections:write" in done.stderr


@pytest.mark.parametrize("url", ["http://bw.example.org", "bw.example.org", "https://bw.example.org/?x=1"])
def test_manifest_refuses_a_url_slack_would_not_call(tmp_path: Path, url: str) -> None:
    done = _manifest(tmp_path, "--url", url)
    assert done.returncode == 2 and "manifest --url" in done.stderr and not done.stdout
    assert "Traceback" not in done.stderr
