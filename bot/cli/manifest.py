"""`python -m bot manifest`: the Slack app manifest for the configured command name and mode."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.core.config import load_settings
from bot.slack.manifest import APP_TOKEN_SCOPE, build_manifest


def cli_manifest(args: argparse.Namespace) -> int:
    """Print the manifest as JSON (paste into api.slack.com/apps → Create New App → From a manifest).

    `--socket-mode` (or SLACK_APP_TOKEN set) prints the Socket Mode manifest; `--url https://host`
    puts the bot's address in the HTTP-mode request URLs instead of the YOUR-HOST placeholder.
    """
    settings = load_settings(dotenv=Path(".env"))
    url = getattr(args, "url", None)
    # --url asks for the HTTP manifest even where SLACK_APP_TOKEN is set (moving a bot off Socket Mode).
    socket_mode = True if getattr(args, "socket_mode", False) else (False if url else None)
    manifest = build_manifest(settings, url=url, socket_mode=socket_mode)
    print(json.dumps(manifest, indent=2))
    if manifest["settings"]["socket_mode_enabled"]:
        print(
            f"Socket Mode also needs an app-level token with the {APP_TOKEN_SCOPE} scope (Basic Information →"
            " App-Level Tokens): set it as SLACK_APP_TOKEN.",
            file=sys.stderr,
        )
    return 0
