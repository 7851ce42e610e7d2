"""Errors of the store that callers above it turn into one line for a person (no SQLite import here)."""

from __future__ import annotations


class StoreWriteError(Exception):
    """The database cannot be written (disk full, read-only file or folder): one line for a person."""
