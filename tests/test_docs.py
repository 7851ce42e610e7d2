"""The README stays true to the code: every setting and every command is documented."""

import re
from importlib.metadata import version
from pathlib import Path

import pytest

from bot.cli import COMMANDS, build_parser, main
from bot.core.config import SETTINGS
from handlers.commands import SUBCOMMANDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_settings_table_lists_exactly_the_settings_with_their_defaults() -> None:
    rows = re.findall(r"^\| `([A-Z_]+)` \|([^|]*)\|", README, flags=re.M)
    assert [name for name, _ in rows] == [s.name for s in SETTINGS]  # the table's order, too
    documented = {name: default.strip().strip("`") for name, default in rows}
    assert documented == {s.name: s.default for s in SETTINGS}


def test_help_lists_every_setting_with_its_default_and_help() -> None:
    lines = build_parser().format_help().splitlines()
    for setting in SETTINGS:
        (line,) = [line for line in lines if line.split()[:1] == [setting.name]]
        assert line.endswith(f"{setting.help} Default: {setting.default or '(none)'}"), line


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"bucketwatch {version('bucketwatch')}"


def test_readme_lists_every_command_and_subcommand() -> None:
    for name in COMMANDS:
        assert f"| `{name}" in README, name
    for sub in SUBCOMMANDS:
        assert f"`{sub}" in README, sub
