"""The one settings table: every environment variable, its default and its help line.

Read once by `load_settings`, frozen, and passed down; nothing else reads the environment.
`doctor`, `--help` and the README's settings table are generated from `SETTINGS`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from dotenv import dotenv_values


class ConfigError(ValueError):
    """A setting has a value the bot cannot use."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("SLACK_BOT_TOKEN", "", "Bot token (xoxb-…) used for the Slack Web API.", secret=True),
    Setting("SLACK_APP_TOKEN", "", "App-level token (xapp-…); when set the bot uses Socket Mode.", secret=True),
    Setting("SLACK_SIGNING_SECRET", "", "Signing secret; verifies requests in HTTP mode.", secret=True),
    Setting("SLACK_API_URL", "https://slack.com/api/", "Slack Web API base URL (GovSlack, proxies, stand-ins)."),
    Setting("ALERT_CHANNEL", "", "Channel id where alert cards and the digest are posted."),
    Setting("SLASH_COMMAND", "/bucketwatch", "Name of the slash command."),
    Setting("RESPONDERS", "", "Comma-separated Slack user ids (U…) and user-group ids (S…) who may fix, undo, allow."),
    Setting(
        "AWS_ACCOUNTS",
        "",
        "Comma-separated account ids, or id:role-arn[:external-id] to assume a role, or org:<role-name>[:external-id]"
        " for every active account of the AWS Organization (refreshed daily).",
    ),
    Setting("AWS_REGIONS", "us-east-1", "Comma-separated regions to poll, or all: each account's enabled regions."),
    Setting("REMEDIATION_ROLE", "", "Role name or ARN assumed for fixes; the read-only role never writes."),
    Setting(
        "LOOKUP_POLLING",
        "true",
        "false: AWS_ACCOUNTS only give roles (verdict, fix); events come from TRAIL_BUCKETS / TRAIL_QUEUE_URLS.",
    ),
    Setting("TRAIL_BUCKETS", "", "Comma-separated s3://bucket/prefix of trails to read (data events, big orgs)."),
    Setting(
        "TRAIL_QUEUE_URLS",
        "",
        "Comma-separated SQS queue URLs receiving the trail bucket's s3:ObjectCreated notifications (big orgs).",
    ),
    Setting(
        "EVENT_QUEUE_URLS",
        "",
        "Comma-separated SQS queue URLs fed by an EventBridge rule on S3 API calls (seconds, not minutes);"
        " any queue also reads trail-file notifications.",
    ),
    Setting(
        "SAFETY_NET_FACTOR",
        "5",
        "With a queue set, LookupEvents is the safety net: it polls every POLL_SECONDS × this (1: as often as"
        " without a queue).",
    ),
    Setting("POLL_SECONDS", "60", "Seconds between poll cycles."),
    Setting("LOOKBACK_MINUTES", "20", "Overlap window, at least 15: CloudTrail can deliver events 15 minutes late."),
    Setting("DIGEST_TIME", "09:00", "Local time (HH:MM) of the daily digest."),
    Setting("DIGEST_TZ", "UTC", "IANA time zone of DIGEST_TIME."),
    Setting("DB_PATH", "./data/bucketwatch.db", "SQLite database file."),
    Setting("DRY_RUN", "false", "true: show what a fix would change and change nothing."),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    Setting("PORT", "3000", "HTTP port in HTTP mode; Slack requests arrive at /slack/events."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Account:
    """One AWS account to watch: bare id uses ambient credentials, else AssumeRole."""

    account_id: str
    role_arn: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Organization:
    """`AWS_ACCOUNTS=org:<role-name>[:external-id]`: every active account of the AWS Organization."""

    role_name: str
    external_id: str | None = None

    def account(self, account_id: str) -> Account:
        """The account read through `role_name` in it (the roles template's read-only role)."""
        return Account(account_id, f"arn:aws:iam::{account_id}:role/{self.role_name}", self.external_id)

    def __str__(self) -> str:
        return f"org:{self.role_name}"


ALL_REGIONS = "all"
_ROLE_NAME = re.compile(r"[\w+=,.@/-]{1,512}")


def parse_organization(text: str) -> Organization | None:
    """The `org:` entry of AWS_ACCOUNTS, if any (at most one)."""
    entries = [raw for raw in _split(text) if raw.startswith("org:")]
    if not entries:
        return None
    if len(entries) > 1:
        raise ConfigError("AWS_ACCOUNTS: at most one org:<role-name> entry")
    role, _, external_id = entries[0][len("org:") :].partition(":")
    role = role.removeprefix("role/")
    if not _ROLE_NAME.fullmatch(role) or role.startswith("arn"):
        raise ConfigError(f"AWS_ACCOUNTS: {entries[0]!r}: after org: comes a role name (org:bucketwatch-readonly)")
    return Organization(role, external_id or None)


def parse_accounts(text: str) -> tuple[Account, ...]:
    """Parse `AWS_ACCOUNTS`: `id` or `id:arn:aws:iam::id:role/name[:external-id]` (the `org:` entry is apart)."""
    accounts = []
    for raw in _split(text):
        if raw.startswith("org:"):
            continue
        account_id, _, rest = raw.partition(":")
        if not (account_id.isdigit() and len(account_id) == 12):
            raise ConfigError(f"AWS_ACCOUNTS: {raw!r} does not start with a 12-digit account id")
        role_arn = external_id = None
        if rest:
            if not rest.startswith("arn:"):
                raise ConfigError(f"AWS_ACCOUNTS: {raw!r}: after the id comes a role ARN")
            # An ARN holds five colons (arn:partition:iam::account:role/name); what follows is the external id.
            parts = rest.split(":")
            role_arn = ":".join(parts[:6])
            external_id = ":".join(parts[6:]) or None
        accounts.append(Account(account_id, role_arn, external_id))
    return tuple(accounts)


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def _bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected true or false, got {text!r}")


def _int(name: str, text: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    """Frozen, parsed settings. Build with `load_settings` or directly in tests."""

    slack_bot_token: str = ""
    slack_app_token: str = ""
    slack_signing_secret: str = ""
    slack_api_url: str = "https://slack.com/api/"
    alert_channel: str = ""
    slash_command: str = "/bucketwatch"
    responders: tuple[str, ...] = ()
    accounts: tuple[Account, ...] = ()
    organization: Organization | None = None  # AWS_ACCOUNTS=org:<role>: accounts discovered at run time
    regions: tuple[str, ...] = ("us-east-1",)  # empty with all_regions
    all_regions: bool = False  # AWS_REGIONS=all: each account's enabled regions, discovered at run time
    remediation_role: str = ""
    lookup_polling: bool = True
    trail_buckets: tuple[str, ...] = ()
    trail_queue_urls: tuple[str, ...] = ()
    event_queue_urls: tuple[str, ...] = ()
    safety_net_factor: int = 5
    poll_seconds: int = 60
    lookback_minutes: int = 20
    digest_time: str = "09:00"
    digest_tz: str = "UTC"
    db_path: Path = field(default_factory=lambda: Path("./data/bucketwatch.db"))
    dry_run: bool = False
    log_level: str = "INFO"
    port: int = 3000

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def home_region(self) -> str:
        """Where global and ambient calls go (IAM, STS, the queues' and trail buckets' default)."""
        return self.regions[0] if self.regions else "us-east-1"

    @property
    def queue_urls(self) -> tuple[str, ...]:
        """Every queue the bot reads: EVENT_QUEUE_URLS, then TRAIL_QUEUE_URLS (each read for every shape)."""
        return tuple(dict.fromkeys(self.event_queue_urls + self.trail_queue_urls))

    @property
    def has_accounts(self) -> bool:
        return bool(self.accounts or self.organization)

    def redacted(self) -> dict[str, str]:
        """Every setting as text, secrets shown only as set/unset (for `doctor`)."""
        out = {}
        for s in SETTINGS:
            value = getattr(self, _attr(s.name))
            if s.name == "AWS_ACCOUNTS" and self.organization is not None:
                value = (str(self.organization), *value)  # the role name, never the external id
            if s.name == "AWS_REGIONS" and self.all_regions:
                value = (ALL_REGIONS,)
            if isinstance(value, tuple):
                value = ",".join(a.account_id if isinstance(a, Account) else str(a) for a in value)
            text = str(value)
            out[s.name] = ("set" if text else "unset") if s.secret else text
        return out


def _attr(name: str) -> str:
    return {"AWS_ACCOUNTS": "accounts", "AWS_REGIONS": "regions", "RESPONDERS": "responders"}.get(
        name, name.lower()
    )


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
    """Read the settings table from `env` (default os.environ), with `.env` filling gaps only."""
    source = dict(os.environ if env is None else env)
    if dotenv is not None and dotenv.is_file():

        for key, value in dotenv_values(dotenv).items():
            # The .env file is for development: it never overrides a variable already set.
            if key in _BY_NAME and key not in source and value is not None:
                source[key] = value

    def get(name: str) -> str:
        return source.get(name, _BY_NAME[name].default)

    hhmm = get("DIGEST_TIME")
    hh, _, mm = hhmm.partition(":")
    if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(f"DIGEST_TIME: expected HH:MM, got {hhmm!r}")
    tz = get("DIGEST_TZ")
    try:

        ZoneInfo(tz)
    except Exception:
        raise ConfigError(f"DIGEST_TZ: unknown time zone {tz!r}") from None
    regions = tuple(_split(get("AWS_REGIONS")))
    all_regions = ALL_REGIONS in regions
    if all_regions and len(regions) > 1:
        raise ConfigError("AWS_REGIONS: all stands alone (each account's enabled regions)")
    api_url = get("SLACK_API_URL")
    if not api_url.endswith("/"):
        api_url += "/"
    return Settings(
        slack_bot_token=get("SLACK_BOT_TOKEN"),
        slack_app_token=get("SLACK_APP_TOKEN"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_api_url=api_url,
        alert_channel=get("ALERT_CHANNEL"),
        slash_command="/" + get("SLASH_COMMAND").lstrip("/"),
        responders=tuple(_split(get("RESPONDERS"))),
        accounts=parse_accounts(get("AWS_ACCOUNTS")),
        organization=parse_organization(get("AWS_ACCOUNTS")),
        regions=() if all_regions else (regions or ("us-east-1",)),
        all_regions=all_regions,
        remediation_role=get("REMEDIATION_ROLE"),
        lookup_polling=_bool("LOOKUP_POLLING", get("LOOKUP_POLLING")),
        trail_buckets=tuple(_split(get("TRAIL_BUCKETS"))),
        trail_queue_urls=tuple(_split(get("TRAIL_QUEUE_URLS"))),
        event_queue_urls=tuple(_split(get("EVENT_QUEUE_URLS"))),
        safety_net_factor=_int("SAFETY_NET_FACTOR", get("SAFETY_NET_FACTOR"), 1),
        poll_seconds=_int("POLL_SECONDS", get("POLL_SECONDS"), 5),
        # CloudTrail can deliver an event 15 minutes late: a shorter overlap silently drops late events.
        lookback_minutes=_int("LOOKBACK_MINUTES", get("LOOKBACK_MINUTES"), 15),
        digest_time=f"{int(hh):02d}:{int(mm):02d}",
        digest_tz=tz,
        db_path=Path(get("DB_PATH")),
        dry_run=_bool("DRY_RUN", get("DRY_RUN")),
        log_level=get("LOG_LEVEL").upper(),
        port=_int("PORT", get("PORT"), 1),
    )


def settings_help() -> str:
    """The settings table as aligned text (for --help and doctor)."""
    width = max(len(s.name) for s in SETTINGS)
    lines = []
    for s in SETTINGS:
        default = "(none)" if not s.default else s.default
        lines.append(f"  {s.name:<{width}}  {s.help} Default: {default}")
    return "\n".join(lines)
