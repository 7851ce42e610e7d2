"""SQLite through sqlite-utils: numbered migrations, WAL, one connection per thread.

Bolt listeners, the scheduler and the poller run in different threads; SQLite connections must
not be shared across threads, so `Store.db` hands each thread its own connection to the same file.
WAL lets one thread read while another writes.

Several processes may open one file at once (a first deploy with replicas, `poll --once` beside
`run`). Switching a fresh file to WAL and applying migrations are not safe to race: sqlite-utils reads
the pending list outside a transaction, and `PRAGMA journal_mode=wal` can answer "database is locked"
without waiting. So opening a store holds an exclusive lock file (`<DB_PATH>.lock`, fcntl.flock) while
it switches to WAL and migrates; every later writer waits on SQLite's busy timeout (30 s) instead.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from bot.store.errors import StoreWriteError
from bot.store.migrations import MIGRATIONS


def connect(path: Path | str) -> sqlite_utils.Database:
    """One connection, WAL on, waiting (not failing) when another thread holds the write lock."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    db = sqlite_utils.Database(conn)
    if str(path) != ":memory:":
        db.enable_wal()
    conn.execute("PRAGMA synchronous = NORMAL")
    return db


@contextlib.contextmanager
def migration_lock(path: Path) -> Iterator[None]:
    """Hold `<path>.lock` exclusively (blocking) across processes: one opener migrates at a time."""
    if str(path) == ":memory:":
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a+b") as handle:
        # flock, not a row in the database: the first opener has no schema yet, and the kernel releases
        # the lock when a process dies (kill -9 mid-migration leaves no stale lock behind).
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# SQLite's words for "this database cannot be written"; anything else is a bug and keeps its traceback.
_CANNOT_WRITE = ("database or disk is full", "readonly database", "unable to open database file", "disk I/O error")


def _cannot_write(path: Path, exc: BaseException) -> StoreWriteError | None:
    if isinstance(exc, sqlite3.OperationalError) and any(words in str(exc) for words in _CANNOT_WRITE):
        return StoreWriteError(f"cannot write the database {path}: {exc}")
    if isinstance(exc, PermissionError | IsADirectoryError) or (
        isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT)
    ):  # the lock file beside it too: a read-only or full filesystem
        return StoreWriteError(f"cannot write the database {path}: {exc.strerror or exc}")
    return None


class Store:
    """The database file plus a connection per thread; migrations applied once at open."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._local = threading.local()
        try:
            with migration_lock(self.path):
                MIGRATIONS.apply(self.db)
        except sqlite3.DatabaseError as exc:
            if not isinstance(exc, sqlite3.OperationalError) and "not a database" in str(exc):
                raise StoreWriteError(f"{self.path} is not a bucketwatch database ({exc}); DB_PATH must name"
                                      " a SQLite file or a file not yet made") from exc
            raise _cannot_write(self.path, exc) or exc from exc
        except OSError as exc:
            raise _cannot_write(self.path, exc) or exc from exc

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path)
        return db

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A transaction that rolls back everything on error (sqlite-utils' own atomic() when nested)."""
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():
                yield db
            return
        # BEGIN IMMEDIATE takes the write lock up front, waiting (busy_timeout) for other writers. A
        # deferred BEGIN that reads and then writes fails at once with "database is locked" when
        # another thread committed in between: SQLite cannot upgrade a stale read snapshot.
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.conn.commit()
        except BaseException as exc:
            if db.conn.in_transaction:
                db.conn.rollback()
            raise _cannot_write(self.path, exc) or exc from exc

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
