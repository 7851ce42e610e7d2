"""How a setting's text is read: (name, text) → value, or a ConfigError naming the setting.

The readers of the settings table (bot.core.config) and of AWS_ACCOUNTS (bot.core.accounts).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo


class ConfigError(ValueError):
    """One or more settings have values the bot cannot use; `problems` holds one line for each."""

    def __init__(self, *problems: str):
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = problems


Parse = Callable[[str, str], Any]


def split(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def read_text(name: str, text: str) -> str:
    return text.strip()


def read_list(name: str, text: str) -> tuple[str, ...]:
    return tuple(split(text))


def read_bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected true or false, got {text!r}")


def read_int(minimum: int, maximum: int | None = None) -> Parse:
    def parse(name: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{name}: expected a whole number, got {text!r}") from None
        if value < minimum:
            raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name}: must be at most {maximum}, got {value}")
        return value

    return parse


def read_choice(*choices: str) -> Parse:
    def parse(name: str, text: str) -> str:
        # Any case in, the table's spelling out.
        found = next((c for c in choices if c.lower() == text.strip().lower()), None)
        if found is None:
            raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {text!r}")
        return found

    return parse


def read_hhmm(name: str, text: str) -> str:
    hh, _, mm = text.strip().partition(":")
    if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(f"{name}: expected HH:MM, got {text!r}")
    return f"{int(hh):02d}:{int(mm):02d}"


def read_zone(name: str, text: str) -> str:
    try:
        ZoneInfo(text)
    except Exception:
        raise ConfigError(f"{name}: unknown time zone {text!r}") from None
    return text


def read_path(name: str, text: str) -> Path:
    if not text.strip():
        raise ConfigError(f"{name}: empty; give a file path")
    try:
        return Path(text.strip()).expanduser()
    except RuntimeError:  # `~` with no home directory to expand it to
        raise ConfigError(f"{name}: cannot expand {text!r}: no home directory; give an absolute path") from None
