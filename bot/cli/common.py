"""What several commands share: logging (LOG_LEVEL, LOG_FORMAT) and opening the database where DB_PATH says.

Logs go to stderr, as text or as one JSON object per line (python-json-logger) for log shippers;
fields given with `extra=` (such as `alert_id`) become JSON fields. Libraries that log request and
response bodies or headers at DEBUG stay at INFO whatever LOG_LEVEL says, and anything shaped like a
Slack token is masked in every line, so neither a token nor a request body reaches the log.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from bot.core.config import Settings
from bot.store.database import Store

# These log request and response bodies and headers at DEBUG: Slack tokens, request bodies, STS AssumeRole
# credentials, x-amz-security-token. Kept out of the log even when LOG_LEVEL=DEBUG ("bucketwatch.bolt" is
# the logger bolt is given in bot.app: bolt logs request bodies on it at DEBUG).
SECRET_BEARING_LOGGERS = ("slack_sdk", "slack_bolt", "bucketwatch.bolt", "botocore", "boto3", "urllib3", "s3transfer")
# APScheduler logs "Running job …" and "… executed successfully" at INFO for every run of every job (the
# outbox runs every 5 s): shown only at LOG_LEVEL=DEBUG. Its warnings (missed runs) and errors still show.
CHATTY_LOGGERS = ("apscheduler",)
_TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    """Mask anything shaped like a Slack token (a last guard: tokens are never logged on purpose)."""
    return _TOKEN.sub(r"\1-…", text)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, and every `extra=` field."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _Ours(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs (and replaces when called again)."""


def configure_logging(level: str, log_format: str = "text", *, stream: TextIO | None = None) -> None:
    """Root logging at `level`, as text or JSON lines on stderr; quiet libraries; no secrets."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Ours)]:
        root.removeHandler(handler)
    handler = _Ours(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    for name in SECRET_BEARING_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)


def configure(settings: Settings, *, one_shot: bool = False) -> None:
    """Logging as the settings say. `one_shot` commands (poll, backfill, digest) print their report on
    stdout and log only warnings and errors beside it, unless LOG_LEVEL=DEBUG."""
    level = settings.log_level
    if one_shot and level != "DEBUG" and logging.getLevelName(level) < logging.WARNING:
        level = "WARNING"
    configure_logging(level, settings.log_format)


def open_store(settings: Settings, *, out: Any = None) -> Store:
    """The database at DB_PATH, saying where it is on stderr (another folder must not mean another database)."""
    print(f"bucketwatch: database {settings.db_path.absolute()}", file=out or sys.stderr)
    return Store(settings.db_path)
