"""A fresh, migrated database file for a test, without running every migration again for each test.

One file per test process is migrated once (what Store does on a new file) and closed, its WAL
checkpointed away; each test gets a copy, which Store then opens as any existing database.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from bot.store.database import Store


@cache
def _migrated() -> Path:
    folder = tempfile.TemporaryDirectory(prefix="bucketwatch-migrated-")
    atexit.register(folder.cleanup)
    path = Path(folder.name) / "bucketwatch.db"
    Store(path).close()
    return path


def migrated_copy(path: Path) -> Path:
    """`path` (its folder made) holds a new, fully migrated database; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated(), path)
    return path
