"""`python -m bot digest [--post]`: the digest, printed or posted to ALERT_CHANNEL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slack_sdk.errors import SlackApiError

from bot.app import build_services, build_web_client
from bot.aws.clients import AwsClients
from bot.cli.common import configure, open_store
from bot.core.config import ConfigError, load_settings


def cli_digest(args: argparse.Namespace) -> int:
    """`python -m bot digest [--post]`: the digest `/bucketwatch digest` shows, printed or posted to ALERT_CHANNEL."""

    settings = load_settings(dotenv=Path(".env"))
    configure(settings, one_shot=True)
    # The bot's own wiring, so the digest is re-checked against AWS exactly as the slash command's is.
    services = build_services(settings, build_web_client(settings), open_store(settings), AwsClients(settings))
    if not getattr(args, "post", False):
        print(services.digest.build().plain)
        return 0
    if not (settings.alert_channel and settings.slack_bot_token):
        raise ConfigError("posting the digest needs ALERT_CHANNEL and SLACK_BOT_TOKEN")
    try:
        ts = services.digest.post(services.slack, settings.alert_channel)
    except SlackApiError as exc:
        print(f"bucketwatch digest: Slack refused the post: {exc.response.get('error')}", file=sys.stderr)
        return 1
    print(f"digest posted to {settings.alert_channel} (ts {ts})")
    return 0
