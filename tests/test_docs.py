"""The README stays true to the code: every setting and every command is documented."""

import re
from pathlib import Path

from bot.cli import COMMANDS
from bot.core.config import SETTINGS
from handlers.commands import SUBCOMMANDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_settings_table_lists_exactly_the_settings() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.M))
    assert documented == {s.name for s in SETTINGS}


def test_readme_lists_every_command_and_subcommand() -> None:
    for name in COMMANDS:
        assert f"| `{name}" in README, name
    for sub in SUBCOMMANDS:
        assert f"`{sub}" in README, sub
