"""What valid Slack and AWS identifiers look like: token prefixes, channel, user and group ids, regions,
slash commands, bucket names, role ARNs and names. The settings checks (bot.core.problems), routes and
permissions use them; nothing here reads a setting.
"""

from __future__ import annotations

import re

BOT_TOKEN_PREFIX, APP_TOKEN_PREFIX = "xoxb-", "xapp-"
TOKEN_KINDS = {"xoxb-": "a bot token", "xoxp-": "a user token", "xapp-": "an app-level token",
                "xoxe": "a refresh or rotating token", "xoxa-": "a workspace app token", "xoxr-": "a refresh token"}
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
# Slack ids: U…/W… are users (W for Enterprise Grid), S… are user groups.
USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
GROUP_ID = re.compile(r"^S[A-Z0-9]+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
COMMAND = re.compile(r"^/[a-z0-9_-]{1,31}$")  # Slack: lower case, no spaces, 32 characters with the slash
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Any bucket name S3 ever allowed (us-east-1's legacy names: capitals, underscores, up to 255): what a person
# may ask about; never a space, a quote or Slack markup.
ANY_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,512}$")  # a name, with its path if it has one


def arn_account(arn: str) -> str:
    """The account id in an IAM ARN (arn:aws:iam::<account>:role/…); '' when there is none."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""
