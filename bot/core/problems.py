"""What stops the bot from running as configured: one line per problem, checked before `run` acts.

`settings_problems` checks what the table's readers cannot see alone (token prefixes, id shapes,
regions, URLs, secrets that go together, a writable database); `all_problems` adds what could not be
read at all, in the table's order (`doctor`, `serve`); `checked_settings` raises them as one ConfigError.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from bot.core.config import SETTINGS, Settings, read_settings
from bot.core.readers import ConfigError, read_text
from bot.core.routes import parse_routes
from bot.core.shapes import (
    APP_TOKEN_PREFIX,
    BOT_TOKEN_PREFIX,
    BUCKET,
    CHANNEL_ID,
    COMMAND,
    GROUP_ID,
    REGION,
    ROLE_ARN,
    ROLE_NAME,
    TOKEN_KINDS,
    USER_ID,
    arn_account,
)


def checked_settings(env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
    """Settings fit to run the bot; else one ConfigError listing every problem (`run` calls this first)."""
    settings, problems = all_problems(env, dotenv=dotenv)
    if problems:
        raise ConfigError(*problems)
    return settings


def all_problems(env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> tuple[Settings, list[str]]:
    """The settings (unreadable values at their defaults) and every problem, in the table's order (`doctor`)."""
    settings, problems = read_settings(env, dotenv=dotenv)
    order = {s.name: i for i, s in enumerate(SETTINGS)}
    problems += settings_problems(settings)
    return settings, sorted(problems, key=lambda p: order.get(p.partition(":")[0], len(order)))


def _token_problem(name: str, value: str, prefix: str) -> str | None:
    if value.startswith(prefix) and len(value) > len(prefix):
        return None
    kind = next((k for p, k in TOKEN_KINDS.items() if value.startswith(p)), None)
    seen = f"this is {kind}" if kind else "this does not look like a Slack token"
    # Never the value itself: a token pasted into the wrong variable is still a secret.
    return f"{name}: must start with {prefix} ({seen}; the value is not shown)"


def _queue_problem(name: str, url: str) -> str | None:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    account = segments[0] if len(segments) == 2 else ""
    if parts.scheme in ("https", "http") and parts.hostname and len(account) == 12 and account.isdigit():
        return None
    return f"{name}: {url!r} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"


_SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def _db_problem(path: Path) -> str | None:
    """Whether the database file can be opened for writing (or created), without creating anything."""
    path = path.absolute()
    if path.exists():
        if path.is_dir():
            return f"DB_PATH: {path} is a folder; give a file path"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"DB_PATH: {path} is not writable"
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
        if head and head != _SQLITE_HEADER:  # an empty file becomes a database; anything else is not one
            return f"DB_PATH: {path} is not a SQLite database; give the bot's database file or a new path"
        return None
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"DB_PATH: cannot create {path}: {parent} is not a folder"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"DB_PATH: cannot create {path}: {parent} is not writable"


def settings_problems(settings: Settings) -> list[str]:
    """Everything that stops the bot from running as configured, one line each (`run` and `doctor`)."""
    s = settings
    out: list[str | None] = []
    if not s.slack_bot_token:
        out.append("SLACK_BOT_TOKEN: not set; required to run the bot")
    else:
        out.append(_token_problem("SLACK_BOT_TOKEN", s.slack_bot_token, BOT_TOKEN_PREFIX))
    if s.slack_app_token:
        out.append(_token_problem("SLACK_APP_TOKEN", s.slack_app_token, APP_TOKEN_PREFIX))
    elif not s.slack_signing_secret:
        # With an empty secret anyone could compute a valid signature.
        out.append("SLACK_SIGNING_SECRET: not set; required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")
    api = urlsplit(s.slack_api_url)
    if api.scheme not in ("https", "http") or not api.hostname:
        out.append(f"SLACK_API_URL: {s.slack_api_url!r} is not an http(s) URL")
    if not s.alert_channel:
        out.append("ALERT_CHANNEL: not set; required to run the bot (a channel id, C…)")
    elif not CHANNEL_ID.match(s.alert_channel):
        hint = ": that is a name; copy the id from the channel's details" if s.alert_channel.startswith("#") else ""
        out.append(f"ALERT_CHANNEL: {s.alert_channel!r} is not a channel id (C… or G…){hint}")
    if not COMMAND.match(s.slash_command):
        out.append(f"SLASH_COMMAND: {s.slash_command!r} is not a slash command name (lower case, no spaces)")
    bad = [r for r in s.responders if not (USER_ID.match(r) or GROUP_ID.match(r))]
    if bad:
        out.append(f"RESPONDERS: {', '.join(map(repr, bad))} not a Slack user id (U…, W…) or user-group id (S…)")
    for account in s.accounts:
        if account.role_arn is not None and not ROLE_ARN.match(account.role_arn):
            out.append(f"AWS_ACCOUNTS: {account.role_arn!r} is not a role ARN (arn:aws:iam::<account>:role/<name>)")
        elif account.role_arn is not None and arn_account(account.role_arn) != account.account_id:
            # LookupEvents answers for the account whose role asks: this would read another account's events.
            out.append(f"AWS_ACCOUNTS: {account.account_id} is to be read through a role of account"
                       f" {arn_account(account.role_arn)}; the role must be in the account it reads")
    bad = [r for r in s.regions if not REGION.match(r)]
    if bad:
        out.append(f"AWS_REGIONS: {', '.join(map(repr, bad))} not a region name (like us-east-1)")
    role = s.remediation_role
    if role and not (ROLE_ARN.match(role) or ROLE_NAME.match(role)):
        out.append(f"REMEDIATION_ROLE: {role!r} is neither a role name nor a role ARN")
    elif role and ROLE_ARN.match(role):
        others = sorted({a.account_id for a in s.accounts} - {arn_account(role)})
        if others or s.organization:
            where = "the organisation's accounts" if s.organization else ", ".join(others)
            out.append(f"REMEDIATION_ROLE: an ARN names a role of account {arn_account(role)} only, and fixes in"
                       f" {where} would assume it; give the role's name, which each account has")
    for trail in s.trail_buckets:
        bucket = trail[5:].split("/", 1)[0] if trail.startswith("s3://") else ""
        if not BUCKET.match(bucket):
            out.append(f"TRAIL_BUCKETS: {trail!r} is not s3://bucket/prefix")
    if not s.lookup_polling and s.has_accounts and not (s.trail_buckets or s.queue_urls or s.findings_queue_url):
        out.append("LOOKUP_POLLING: false, and no TRAIL_BUCKETS, TRAIL_QUEUE_URLS, EVENT_QUEUE_URLS or"
                   " FINDINGS_QUEUE_URL is set: AWS_ACCOUNTS would be watched by nothing")
    out.extend(_queue_problem("EVENT_QUEUE_URLS", url) for url in s.event_queue_urls)
    out.extend(_queue_problem("TRAIL_QUEUE_URLS", url) for url in s.trail_queue_urls)
    if s.findings_queue_url:
        out.append(_queue_problem("FINDINGS_QUEUE_URL", s.findings_queue_url))
    try:  # routes built in code rather than read: the table's own reader
        parse_routes("ROUTES", ",".join(f"{r.kind}:{r.value}={r.channel}" for r in s.routes))
    except ConfigError as exc:
        out.extend(exc.problems)
    if s.webhook_url and len(s.webhook_secret) < 16:
        out.append("WEBHOOK_SECRET: " + ("not set" if not s.webhook_secret else "shorter than 16 characters")
                   + "; required with WEBHOOK_URL (the receiver verifies the signature with it)")
    key = s.pagerduty_routing_key
    if key and not (len(key) == 32 and key.isalnum()):
        # Never the value: it is a secret.
        out.append("PAGERDUTY_ROUTING_KEY: not an Events API v2 integration key (32 letters and digits;"
                   " the value is not shown)")
    # Numbers, times and choices: the table's own readers, for settings built in code rather than read.
    for setting in SETTINGS:
        value = getattr(s, setting.field_name)
        if isinstance(value, int | str) and not isinstance(value, bool) and setting.parse is not read_text:
            try:
                setting.read(str(value))
            except ConfigError as exc:
                out.extend(exc.problems)
    out.append(_db_problem(s.db_path))
    return [p for p in out if p]
