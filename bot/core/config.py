"""The one settings table: every environment variable, its default, how it is read, and its help line.

Read once by `load_settings`, frozen, and passed down; nothing else reads the environment. Each
default is written once, in `SETTINGS`: the `Settings` dataclass takes its defaults from the table,
and `doctor`, `--help` and the README's settings table are checked against it (tests/test_docs.py).
`load_settings` reports every value it cannot read at once; `settings_problems` then checks what a
running bot needs (token prefixes, id shapes, regions, URLs) and `run` refuses to start on any.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dotenv import dotenv_values


class ConfigError(ValueError):
    """One or more settings have values the bot cannot use; `problems` holds one line for each."""

    def __init__(self, *problems: str):
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = problems


# ---- how a value is read: (name, text) → value, or ConfigError ------------------------------------
Parse = Callable[[str, str], Any]


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def _text(name: str, text: str) -> str:
    return text.strip()


def _list(name: str, text: str) -> tuple[str, ...]:
    return tuple(_split(text))


def _bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected true or false, got {text!r}")


def _int(minimum: int, maximum: int | None = None) -> Parse:
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


def _choice(*choices: str) -> Parse:
    def parse(name: str, text: str) -> str:
        # Any case in, the table's spelling out.
        found = next((c for c in choices if c.lower() == text.strip().lower()), None)
        if found is None:
            raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {text!r}")
        return found

    return parse


def _hhmm(name: str, text: str) -> str:
    hh, _, mm = text.strip().partition(":")
    if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(f"{name}: expected HH:MM, got {text!r}")
    return f"{int(hh):02d}:{int(mm):02d}"


def _zone(name: str, text: str) -> str:
    try:
        ZoneInfo(text)
    except Exception:
        raise ConfigError(f"{name}: unknown time zone {text!r}") from None
    return text


def _path(name: str, text: str) -> Path:
    if not text.strip():
        raise ConfigError(f"{name}: empty; give a file path")
    try:
        return Path(text.strip()).expanduser()
    except RuntimeError:  # `~` with no home directory to expand it to
        raise ConfigError(f"{name}: cannot expand {text!r}: no home directory; give an absolute path") from None


def _regions(name: str, text: str) -> tuple[str, ...]:
    # An empty AWS_REGIONS means the default, as an unset one does.
    return tuple(_split(text)) or _regions(name, _BY_NAME[name].default)


@dataclass(frozen=True)
class Account:
    """One AWS account to watch: bare id uses ambient credentials, else AssumeRole."""

    account_id: str
    role_arn: str | None = None
    external_id: str | None = None


def parse_accounts(text: str) -> tuple[Account, ...]:
    """Parse `AWS_ACCOUNTS`: `id` or `id:arn:aws:iam::id:role/name[:external-id]`."""
    accounts = []
    for raw in _split(text):
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

    @property
    def field_name(self) -> str:
        return self.attr or self.name.lower()

    def read(self, text: str | None) -> Any:
        """The value of `text` (the default when None); ConfigError when it cannot be read."""
        return self.parse(self.name, self.default if text is None else text)


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
    Setting("AWS_ACCOUNTS", "", "Comma-separated account ids, or id:role-arn[:external-id] to assume a role.",
            lambda name, text: parse_accounts(text), attr="accounts"),
    Setting("AWS_REGIONS", "us-east-1", "Comma-separated regions to poll.", _regions, attr="regions"),
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
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _default(name: str) -> Callable[[], Any]:
    """The table default, read as the environment would be; a factory so `~` expands when Settings is built."""
    setting = _BY_NAME[name]
    return lambda: setting.read(None)


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
    regions: tuple[str, ...] = field(default_factory=_default("AWS_REGIONS"))
    remediation_role: str = field(default_factory=_default("REMEDIATION_ROLE"))
    lookup_polling: bool = field(default_factory=_default("LOOKUP_POLLING"))
    trail_buckets: tuple[str, ...] = field(default_factory=_default("TRAIL_BUCKETS"))
    trail_queue_urls: tuple[str, ...] = field(default_factory=_default("TRAIL_QUEUE_URLS"))
    findings_queue_url: str = field(default_factory=_default("FINDINGS_QUEUE_URL"))
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

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    def redacted(self) -> dict[str, str]:
        """Every setting as text, secrets shown only as set/unset (for `doctor`)."""
        out = {}
        for s in SETTINGS:
            value = getattr(self, s.field_name)
            if isinstance(value, tuple):
                value = ",".join(a.account_id if isinstance(a, Account) else str(a) for a in value)
            text = str(value)
            out[s.name] = ("set" if text else "unset") if s.secret else text
        return out


def read_settings(env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> tuple[Settings, list[str]]:
    """The settings from `env` (default os.environ), `.env` filling gaps only; and one line per value
    that cannot be read (that setting keeps its default, so the other checks still run)."""
    source = dict(os.environ if env is None else env)
    if dotenv is not None and dotenv.is_file():
        for key, value in dotenv_values(dotenv).items():
            # The .env file is for development: it never overrides a variable already set.
            if key in _BY_NAME and key not in source and value is not None:
                source[key] = value
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        try:
            values[setting.field_name] = setting.read(source.get(setting.name))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return Settings(**values), problems


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
    """The settings, read as `read_settings` reads them; one ConfigError listing every unreadable value."""
    settings, problems = read_settings(env, dotenv=dotenv)
    if problems:
        raise ConfigError(*problems)
    return settings


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


# ---- what a running bot needs ------------------------------------------------------------------------
BOT_TOKEN_PREFIX, APP_TOKEN_PREFIX = "xoxb-", "xapp-"
_TOKEN_KINDS = {"xoxb-": "a bot token", "xoxp-": "a user token", "xapp-": "an app-level token",
                "xoxe": "a refresh or rotating token", "xoxa-": "a workspace app token", "xoxr-": "a refresh token"}
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
# Slack ids: U…/W… are users (W for Enterprise Grid), S… are user groups.
USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
GROUP_ID = re.compile(r"^S[A-Z0-9]+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_COMMAND = re.compile(r"^/[a-z0-9_-]{1,31}$")  # Slack: lower case, no spaces, 32 characters with the slash
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,512}$")  # a name, with its path if it has one


def _token_problem(name: str, value: str, prefix: str) -> str | None:
    if value.startswith(prefix) and len(value) > len(prefix):
        return None
    kind = next((k for p, k in _TOKEN_KINDS.items() if value.startswith(p)), None)
    seen = f"this is {kind}" if kind else "this does not look like a Slack token"
    # Never the value itself: a token pasted into the wrong variable is still a secret.
    return f"{name}: must start with {prefix} ({seen}; the value is not shown)"


def _queue_problem(url: str, name: str = "TRAIL_QUEUE_URLS") -> str | None:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    account = segments[0] if len(segments) == 2 else ""
    if parts.scheme in ("https", "http") and parts.hostname and len(account) == 12 and account.isdigit():
        return None
    return f"{name}: {url!r} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"


def _db_problem(path: Path) -> str | None:
    """Whether the database file can be opened for writing (or created), without creating anything."""
    path = path.absolute()
    if path.exists():
        if path.is_dir():
            return f"DB_PATH: {path} is a folder; give a file path"
        return None if os.access(path, os.R_OK | os.W_OK) else f"DB_PATH: {path} is not writable"
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
    if not _COMMAND.match(s.slash_command):
        out.append(f"SLASH_COMMAND: {s.slash_command!r} is not a slash command name (lower case, no spaces)")
    bad = [r for r in s.responders if not (USER_ID.match(r) or GROUP_ID.match(r))]
    if bad:
        out.append(f"RESPONDERS: {', '.join(map(repr, bad))} not a Slack user id (U…, W…) or user-group id (S…)")
    for account in s.accounts:
        if account.role_arn is not None and not _ROLE_ARN.match(account.role_arn):
            out.append(f"AWS_ACCOUNTS: {account.role_arn!r} is not a role ARN (arn:aws:iam::<account>:role/<name>)")
    bad = [r for r in s.regions if not REGION.match(r)]
    if bad:
        out.append(f"AWS_REGIONS: {', '.join(map(repr, bad))} not a region name (like us-east-1)")
    role = s.remediation_role
    if role and not (_ROLE_ARN.match(role) or _ROLE_NAME.match(role)):
        out.append(f"REMEDIATION_ROLE: {role!r} is neither a role name nor a role ARN")
    for trail in s.trail_buckets:
        bucket = trail[5:].split("/", 1)[0] if trail.startswith("s3://") else ""
        if not _BUCKET.match(bucket):
            out.append(f"TRAIL_BUCKETS: {trail!r} is not s3://bucket/prefix")
    out.extend(_queue_problem(url) for url in s.trail_queue_urls)
    if s.findings_queue_url:
        out.append(_queue_problem(s.findings_queue_url, "FINDINGS_QUEUE_URL"))
    # Numbers, times and choices: the table's own readers, for settings built in code rather than read.
    for setting in SETTINGS:
        value = getattr(s, setting.field_name)
        if isinstance(value, int | str) and not isinstance(value, bool) and setting.parse is not _text:
            try:
                setting.read(str(value))
            except ConfigError as exc:
                out.extend(exc.problems)
    out.append(_db_problem(s.db_path))
    return [p for p in out if p]


def settings_help() -> str:
    """The settings table as aligned text (for --help and doctor)."""
    width = max(len(s.name) for s in SETTINGS)
    return "\n".join(f"  {s.name:<{width}}  {s.help} Default: {s.default or '(none)'}" for s in SETTINGS)
