"""`scan --index`: the rows the workers built go into the who-changed index, in large transactions.

Apart from bot.cli.scan because the store brings sqlite-utils: about 0.25 CPU s of start-up that a
scan without `--index` does not need (docs/benchmarks.md §1). A rerun after an interrupted scan adds
what is missing: event ids are unique.
"""

from __future__ import annotations

from pathlib import Path

from bot.cli.common import open_store
from bot.core.config import load_settings
from bot.store.index import TRANSACTION_ROWS, insert_rows
from bot.store.rows import IndexRow


class IndexWriter:
    """Opens the index where DB_PATH says (saying where, as every command that opens it does)."""

    def __init__(self) -> None:
        self._store = open_store(load_settings(dotenv=Path(".env")))
        self._pending: list[IndexRow] = []

    def add(self, rows: list[IndexRow]) -> int:
        """Take rows; how many new events were written (0 until a transaction's worth is pending)."""
        self._pending += rows
        if len(self._pending) < TRANSACTION_ROWS:
            return 0
        return self.finish()

    def finish(self) -> int:
        """Write what is pending; how many new events."""
        rows, self._pending = self._pending, []
        return insert_rows(self._store, rows) if rows else 0
