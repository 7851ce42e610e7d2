"""The one settings table: every environment variable, its default, how it is read, and its help line.

Read once by `load_settings`, frozen, and passed down; nothing else reads the environment. Each
default is written once, in `SETTINGS`: the `Settings` dataclass takes its defaults from the table,
and `doctor`, `--help` and the README's settings table are checked against it (tests/test_docs.py).
`load_settings` reports every value it cannot read at once; `settings_problems` then checks what a
running bot needs (token prefixes, id shapes, regions, URLs) and `run` refuses to start on any.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bot.core import readers
from bot.core.accounts import Account as Account  # part of this module's interface: Settings.accounts holds them
from bot.core.accounts import Organization, parse_accounts, parse_organization
from bot.core.asking import parse_actor_map, parse_ask_flag, parse_domain, parse_timeout
from bot.core.durations import format_duration
from bot.core.readers import ConfigError as ConfigError  # what every reader of the settings catches
from bot.core.readers import Parse
from bot.core.routes import SEVERITIES, parse_routes, read_https_url
from bot.core.routes import Route as Route  # Settings.routes holds them

# The table's readers (bot.core.readers) under short names.
_split, _text, _list, _bool = readers.split, readers.read_text, readers.read_list, readers.read_bool
_int, _choice, _hhmm, _zone, _path = (readers.read_int, readers.read_choice, readers.read_hhmm, readers.read_zone,
                                      readers.read_path)


ALL_REGIONS = "all"


def _reader(parse: Parse) -> Parse:
    """A reader that raises ValueError (bot.core.asking), as one that raises ConfigError."""

    def read(name: str, text: str) -> Any:
        try:
            return parse(name, text)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    return read


def _regions(name: str, text: str) -> tuple[str, ...]:
    # An empty AWS_REGIONS means the default, as an unset one does; `all` means none named (discovered).
    regions = tuple(_split(text))
    if ALL_REGIONS in regions:
        if len(regions) > 1:
            raise ConfigError(f"{name}: all stands alone (each account's enabled regions)")
        return ()
    return regions or _regions(name, _BY_NAME[name].default)


def _all_regions(name: str, text: str) -> bool:
    return ALL_REGIONS in _split(text)


def _replica_url(name: str, text: str) -> str:
    replica = text.strip()
    if replica and "://" not in replica:
        raise ConfigError(f"{name}: expected a URL such as s3://bucket/path, got {replica!r}")
    return replica


# ---- the table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Parse = _text
    secret: bool = False
    attr: str = ""  # the Settings field, when it is not the name in lower case
    also: tuple[tuple[str, Parse], ...] = ()  # further Settings fields read from the same text

    @property
    def field_name(self) -> str:
        return self.attr or self.name.lower()

    def read(self, text: str | None) -> Any:
        """The value of `text` (the default when None); ConfigError when it cannot be read."""
        return self.parse(self.name, self.default if text is None else text)

    def read_also(self, text: str | None) -> dict[str, Any]:
        """The further fields `also` reads from `text` (the default when None)."""
        return {attr: parse(self.name, self.default if text is None else text) for attr, parse in self.also}


# Where the database lives unless DB_PATH says otherwise: under the user's home (XDG's data folder),
# not the working directory, so every command finds the same file wherever it is run from.
DEFAULT_DB_PATH = "~/.local/share/bucketwatch/bucketwatch.db"

SETTINGS: tuple[Setting, ...] = (
    Setting("SLACK_BOT_TOKEN", "", "Bot token (xoxb-…) used for the Slack Web API.", secret=True),
    Setting("SLACK_APP_TOKEN", "", "App-level token (xapp-…); when set the bot uses Socket Mode.", secret=True),
    Setting("SLACK_SIGNING_SECRET", "", "Signing secret; verifies requests in HTTP mode.", secret=True),
    Setting("SLACK_API_URL", "https://slack.com/api/", "Slack Web API base URL (GovSlack, proxies, stand-ins).",
            lambda name, text: text.strip().rstrip("/") + "/"),
    Setting("ALERT_CHANNEL", "", "Channel id (C… or G…) where alert cards and the digest are posted."),
    Setting("SLASH_COMMAND", "/bucketwatch", "Name of the slash command.",
            lambda name, text: "/" + text.strip().lstrip("/")),
    Setting("RESPONDERS", "", "Comma-separated Slack user ids (U…) and user-group ids (S…) who may fix, undo, allow.",
            _list),
    Setting("AWS_ACCOUNTS", "",
            "Comma-separated account ids, or id:role-arn[:external-id] to assume a role, or org:<role-name>"
            "[:external-id] for every active account of the AWS Organization (refreshed daily).",
            lambda name, text: parse_accounts(text), attr="accounts",
            also=(("organization", lambda name, text: parse_organization(text)),)),
    Setting("AWS_REGIONS", "us-east-1", "Comma-separated regions to poll, or all: each account's enabled regions.",
            _regions, attr="regions", also=(("all_regions", _all_regions),)),
    Setting("REMEDIATION_ROLE", "", "Role name or ARN assumed for fixes; the read-only role never writes."),
    Setting("LOOKUP_POLLING", "true",
            "false: AWS_ACCOUNTS only give roles (verdict, fix); events come from TRAIL_BUCKETS / TRAIL_QUEUE_URLS.",
            _bool),
    Setting("TRAIL_BUCKETS", "", "Comma-separated s3://bucket/prefix of trails to read (data events, big orgs).",
            _list),
    Setting("TRAIL_QUEUE_URLS", "",
            "Comma-separated SQS queue URLs receiving the trail bucket's s3:ObjectCreated notifications (big orgs).",
            _list),
    Setting("FINDINGS_QUEUE_URL", "",
            "SQS queue scan workers (bucketwatch worker, Lambda) send S3 writes and findings to; the bot reads it."),
    Setting("EVENT_QUEUE_URLS", "",
            "Comma-separated SQS queue URLs fed by an EventBridge rule on S3 API calls (seconds, not minutes);"
            " any queue also reads trail-file notifications.", _list),
    Setting("SAFETY_NET_FACTOR", "5",
            "With a queue set, LookupEvents is the safety net: it polls every POLL_SECONDS × this (1: as often as"
            " without a queue).", _int(1)),
    Setting("POLL_SECONDS", "60", "Seconds between poll cycles (at least 5).", _int(5)),
    # CloudTrail can deliver an event 15 minutes late: a shorter overlap silently drops late events.
    Setting("LOOKBACK_MINUTES", "20", "Overlap window, at least 15: CloudTrail can deliver events 15 minutes late.",
            _int(15)),
    Setting("DIGEST_TIME", "09:00", "Local time (HH:MM) of the daily digest.", _hhmm),
    Setting("DIGEST_TZ", "UTC", "IANA time zone of DIGEST_TIME.", _zone),
    Setting("DB_PATH", DEFAULT_DB_PATH, "SQLite database file; every command that opens it says where.", _path),
    Setting("LITESTREAM_REPLICA_URL", "",
            "`serve`: replicate DB_PATH with Litestream to this URL (s3://bucket/path, gs://…), restored at start.",
            _replica_url),
    Setting("DRY_RUN", "false", "true: show what a fix would change and change nothing.", _bool),
    Setting("LOG_LEVEL", "INFO", "Python logging level (DEBUG also shows the scheduler's job lines).",
            _choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    Setting("LOG_FORMAT", "text", "text, or json: one JSON object per line for log shippers.",
            _choice("text", "json")),
    Setting("PORT", "3000", "HTTP port in HTTP mode; Slack requests arrive at /slack/events.", _int(1, 65535)),
    Setting("ROUTES", "",
            "Cards to other channels: account:<id>=<channel>,severity:<severity>=<channel>; first match wins,"
            " else ALERT_CHANNEL.", parse_routes),
    Setting("MIN_SEVERITY", "low", "Alerts below this severity get no card and no hand-off (muted), but are"
            " stored, counted in the digest and in status.", _choice(*SEVERITIES)),
    Setting("PAGERDUTY_ROUTING_KEY", "", "PagerDuty Events API v2 integration key: trigger on open, acknowledge"
            " on a Slack acknowledge, resolve on close (docs/handoff.md).", secret=True),
    Setting("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue",
            "PagerDuty Events API v2 endpoint (events.eu.pagerduty.com for EU service regions).", read_https_url),
    Setting("WEBHOOK_URL", "", "POST every alert event as JSON here, signed with WEBHOOK_SECRET (docs/handoff.md).",
            read_https_url),
    Setting("WEBHOOK_SECRET", "", "HMAC-SHA256 key for WEBHOOK_URL's signature; at least 16 characters.",
            secret=True),
    # Ask the actor (docs/slack.md): a DM to the person behind a change, "yes, intended" or "not me".
    Setting("ASK_ACTOR", "auto", "DM the person behind a change; auto: on when ACTOR_EMAIL_DOMAIN or ACTOR_MAP is set.",
            _reader(parse_ask_flag)),
    Setting("ACTOR_EMAIL_DOMAIN", "", "Email domain added to IAM user and session names to find them in Slack.",
            _reader(parse_domain)),
    Setting("ACTOR_MAP", "", "Comma-separated arn-or-name=U… pairs; wins over emails (users.lookupByEmail).",
            _reader(parse_actor_map)),
    Setting("UNATTENDED_ROLES", "", "Comma-separated role names or ARNs (* wildcards) of robots: never asked.",
            _list),
    Setting("ASK_TIMEOUT", "30m", "No answer within this long: the thread says so and mentions the responders.",
            _reader(parse_timeout)),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _default(name: str, also: str = "") -> Callable[[], Any]:
    """The table default, read as the environment would be; a factory so `~` expands when Settings is built."""
    setting = _BY_NAME[name]
    return (lambda: setting.read_also(None)[also]) if also else (lambda: setting.read(None))


@dataclass(frozen=True)
class Settings:
    """Frozen, parsed settings. Build with `load_settings`, or directly in tests; defaults come from SETTINGS."""

    slack_bot_token: str = field(default_factory=_default("SLACK_BOT_TOKEN"))
    slack_app_token: str = field(default_factory=_default("SLACK_APP_TOKEN"))
    slack_signing_secret: str = field(default_factory=_default("SLACK_SIGNING_SECRET"))
    slack_api_url: str = field(default_factory=_default("SLACK_API_URL"))
    alert_channel: str = field(default_factory=_default("ALERT_CHANNEL"))
    slash_command: str = field(default_factory=_default("SLASH_COMMAND"))
    responders: tuple[str, ...] = field(default_factory=_default("RESPONDERS"))
    accounts: tuple[Account, ...] = field(default_factory=_default("AWS_ACCOUNTS"))
    # AWS_ACCOUNTS=org:<role>: accounts discovered at run time
    organization: Organization | None = field(default_factory=_default("AWS_ACCOUNTS", "organization"))
    regions: tuple[str, ...] = field(default_factory=_default("AWS_REGIONS"))  # empty with all_regions
    # AWS_REGIONS=all: each account's enabled regions, discovered at run time
    all_regions: bool = field(default_factory=_default("AWS_REGIONS", "all_regions"))
    remediation_role: str = field(default_factory=_default("REMEDIATION_ROLE"))
    lookup_polling: bool = field(default_factory=_default("LOOKUP_POLLING"))
    trail_buckets: tuple[str, ...] = field(default_factory=_default("TRAIL_BUCKETS"))
    trail_queue_urls: tuple[str, ...] = field(default_factory=_default("TRAIL_QUEUE_URLS"))
    findings_queue_url: str = field(default_factory=_default("FINDINGS_QUEUE_URL"))
    event_queue_urls: tuple[str, ...] = field(default_factory=_default("EVENT_QUEUE_URLS"))
    safety_net_factor: int = field(default_factory=_default("SAFETY_NET_FACTOR"))
    poll_seconds: int = field(default_factory=_default("POLL_SECONDS"))
    lookback_minutes: int = field(default_factory=_default("LOOKBACK_MINUTES"))
    digest_time: str = field(default_factory=_default("DIGEST_TIME"))
    digest_tz: str = field(default_factory=_default("DIGEST_TZ"))
    db_path: Path = field(default_factory=_default("DB_PATH"))
    litestream_replica_url: str = field(default_factory=_default("LITESTREAM_REPLICA_URL"))
    dry_run: bool = field(default_factory=_default("DRY_RUN"))
    log_level: str = field(default_factory=_default("LOG_LEVEL"))
    log_format: str = field(default_factory=_default("LOG_FORMAT"))
    port: int = field(default_factory=_default("PORT"))
    routes: tuple[Route, ...] = field(default_factory=_default("ROUTES"))
    min_severity: str = field(default_factory=_default("MIN_SEVERITY"))
    pagerduty_routing_key: str = field(default_factory=_default("PAGERDUTY_ROUTING_KEY"))
    pagerduty_events_url: str = field(default_factory=_default("PAGERDUTY_EVENTS_URL"))
    webhook_url: str = field(default_factory=_default("WEBHOOK_URL"))
    webhook_secret: str = field(default_factory=_default("WEBHOOK_SECRET"))
    ask_actor: bool | None = field(default_factory=_default("ASK_ACTOR"))
    actor_email_domain: str = field(default_factory=_default("ACTOR_EMAIL_DOMAIN"))
    actor_map: tuple[str, ...] = field(default_factory=_default("ACTOR_MAP"))
    unattended_roles: tuple[str, ...] = field(default_factory=_default("UNATTENDED_ROLES"))
    ask_timeout: timedelta = field(default_factory=_default("ASK_TIMEOUT"))

    @property
    def asks_actor(self) -> bool:
        """ASK_ACTOR, where `auto` means on when there is a way to find the person (a domain or a map)."""
        return self.ask_actor if self.ask_actor is not None else bool(self.actor_email_domain or self.actor_map)

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

    def channel_for(self, account: str, severity: str) -> str:
        """Where a card of this account and severity goes: the first ROUTES rule that matches, else ALERT_CHANNEL."""
        for route in self.routes:
            if route.value == (account if route.kind == "account" else severity):
                return route.channel
        return self.alert_channel

    def muted(self, severity: str) -> bool:
        """Whether an alert of this severity is below MIN_SEVERITY (no card, no hand-off)."""
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        return rank.get(severity, 0) > rank.get(self.min_severity, len(SEVERITIES))

    def redacted(self) -> dict[str, str]:
        """Every setting as text, secrets shown only as set/unset (for `doctor`)."""
        out = {}
        for s in SETTINGS:
            value = getattr(self, s.field_name)
            if s.name == "AWS_ACCOUNTS" and self.organization is not None:
                value = (str(self.organization), *value)  # the role name, never the external id
            if s.name == "AWS_REGIONS" and self.all_regions:
                value = (ALL_REGIONS,)
            if isinstance(value, tuple):
                value = ",".join(a.account_id if isinstance(a, Account)
                                 else f"{a.kind}:{a.value}={a.channel}" if isinstance(a, Route) else str(a)
                                 for a in value)
            elif isinstance(value, timedelta) or value is None:  # ASK_TIMEOUT; ASK_ACTOR left to `auto`
                value = format_duration(value) if value is not None else "auto"
            text = str(value)
            out[s.name] = ("set" if text else "unset") if s.secret else text
        return out


def read_settings(env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> tuple[Settings, list[str]]:
    """The settings from `env` (default os.environ), `.env` filling gaps only; and one line per value
    that cannot be read (that setting keeps its default, so the other checks still run)."""
    source = dict(os.environ if env is None else env)
    if dotenv is not None and dotenv.is_file():
        try:
            from_file = dotenv_values(dotenv)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(f".env: cannot be read ({reason}); fix or remove {dotenv.absolute()}") from exc
        for key, value in from_file.items():
            # The .env file is for development: it never overrides a variable already set.
            if key in _BY_NAME and key not in source and value is not None:
                source[key] = value
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        try:
            values[setting.field_name] = setting.read(source.get(setting.name))
            values.update(setting.read_also(source.get(setting.name)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return Settings(**values), problems


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
    """The settings, read as `read_settings` reads them; one ConfigError listing every unreadable value."""
    settings, problems = read_settings(env, dotenv=dotenv)
    if problems:
        raise ConfigError(*problems)
    return settings


def settings_help() -> str:
    """The settings table as aligned text (for --help and doctor)."""
    width = max(len(s.name) for s in SETTINGS)
    return "\n".join(f"  {s.name:<{width}}  {s.help} Default: {s.default or '(none)'}" for s in SETTINGS)
