"""`python -m bot manifest`: the Slack app manifest for the configured command name and mode."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.core.config import load_settings
from bot.slack.manifest import build_manifest


def cli_manifest(args: argparse.Namespace) -> int:
    """Print the manifest as JSON (paste into api.slack.com/apps → Create New App → From a manifest)."""
    settings = load_settings(dotenv=Path(".env"))
    print(json.dumps(build_manifest(settings), indent=2))
    return 0
