"""`python -m bot doctor`: settings, Slack token scopes and channel, AWS access per account and region.

Prints one ✓/✗ line per check and never a secret (settings come from Settings.redacted(); tokens are
only ever sent to Slack). Exits non-zero when something essential fails: the bot could not post,
be reached, or read CloudTrail. Other failures (a missing optional scope, the account-level Block
Public Access read) are marked "(degrades …)" and do not change the exit code.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO
from urllib.error import URLError
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.app import build_web_client
from bot.aws.bpa import read_bpa
from bot.aws.clients import AwsClients, error_code, error_message
from bot.cli import doctor_fleet
from bot.core.config import Settings
from bot.core.problems import all_problems, settings_problems
from bot.slack.manifest import BOT_SCOPES, ESSENTIAL_SCOPES
from bot.slack.permissions import slack_error
from bot.store.database import Store

# Who doctor's remediation-role check says it is: SourceIdentity `doctor`, session `bucketwatch-doctor`.
DOCTOR = "doctor"


@dataclass(frozen=True)
class Check:
    ok: bool
    name: str
    detail: str
    essential: bool = True

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        tail = "" if self.ok or self.essential else " (not essential: degrades one feature)"
        return f"{mark} {self.name}: {self.detail}{tail}"


def _guard(name: str, essential: bool, run: Callable[[], Check], host: str = "") -> Check:
    """One check; an unexpected error becomes a ✗ line with its code, never a traceback or a secret.

    A connection failure names the host it could not reach and why (DNS, refused, timeout, TLS).
    """
    where = host or "the server"
    try:
        return run()
    except SlackApiError as exc:
        return Check(False, name, f"Slack said {slack_error(exc)}", essential)
    except URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        return Check(False, name, f"could not reach {where}: {reason}", essential)
    except (ClientError, BotoCoreError) as exc:
        # botocore's own messages name the endpoint (EndpointConnectionError: ... "https://sts...").
        return Check(False, name, error_message(exc), essential)
    except OSError as exc:
        return Check(False, name, f"could not reach {where}: {exc.strerror or exc}", essential)
    except Exception as exc:
        return Check(False, name, error_code(exc), essential)


def _sources(s: Settings) -> tuple[bool, str, str]:
    """What will be read, counting only what will be: accounts are not a source with LOOKUP_POLLING off."""
    polled = s.lookup_polling and s.has_accounts
    if polled:
        who = f"{len(s.accounts)} account(s)"
        if s.organization:
            who = "the organisation's accounts" + (f" and {len(s.accounts)} more" if s.accounts else "")
        where = "their enabled regions" if s.all_regions else f"{len(s.regions)} region(s)"
        lookup = f"LookupEvents in {who} × {where}"
    else:
        lookup = "LookupEvents off (LOOKUP_POLLING=false)" if s.has_accounts else "LookupEvents: no AWS_ACCOUNTS"
    detail = (f"{lookup}, {len(s.trail_buckets)} trail bucket(s), {len(s.event_queue_urls)} event queue(s),"
              f" {len(s.trail_queue_urls)} trail queue(s), {1 if s.findings_queue_url else 0} findings queue(s)")
    return bool(polled or s.trail_buckets or s.queue_urls or s.findings_queue_url), "sources", detail


def check_settings(settings: Settings, problems: Sequence[str] | None = None) -> list[Check]:
    """Every problem `run` would refuse to start on (one ✗ line each), then what is set up."""
    problems = settings_problems(settings) if problems is None else problems
    checks = [Check(False, *_named(problem)) for problem in problems]
    transport = "Socket Mode (SLACK_APP_TOKEN)" if settings.socket_mode else f"HTTP on port {settings.port}"
    if not checks:
        checks.append(Check(True, "settings", "every setting is usable"))
    checks += [
        Check(True, "transport", transport, essential=False),
        Check(True, "database", str(settings.db_path.absolute()), essential=False),
        Check(*_sources(settings)),
        Check(
            bool(settings.responders),
            "RESPONDERS",
            f"{len(settings.responders)} user(s) or group(s) may fix, undo and allow"
            if settings.responders
            else "not set: nobody may press Re-enable Block Public Access, Undo or Mark as expected",
            essential=False,
        ),
        Check(True, "DRY_RUN", "fixes change nothing" if settings.dry_run else "fixes change AWS"),
        *_routing_checks(settings),
        Check(True, "ASK_ACTOR", _asking(settings), essential=False),
    ]
    return checks


def _routing_checks(settings: Settings) -> list[Check]:
    """Where cards go (ROUTES, MIN_SEVERITY) and where alerts are handed off; never a key or a secret."""
    routes = ", ".join(f"{r.kind} {r.value} → {r.channel}" for r in settings.routes)
    muted = settings.min_severity != "low"
    return [
        Check(True, "ROUTES", routes or "none: every card goes to ALERT_CHANNEL", essential=False),
        Check(True, "MIN_SEVERITY", f"alerts below {settings.min_severity} are muted (no card, no hand-off)"
              if muted else "every alert gets a card", essential=False),
        Check(True, "PagerDuty", f"alerts handed off to {urlsplit(settings.pagerduty_events_url).netloc}"
              if settings.pagerduty_routing_key else "not configured (PAGERDUTY_ROUTING_KEY)", essential=False),
        Check(True, "webhook", f"signed alerts POSTed to {urlsplit(settings.webhook_url).netloc}"
              if settings.webhook_url else "not configured (WEBHOOK_URL)", essential=False),
    ]


def _asking(settings: Settings) -> str:
    """Whether the person behind a change is asked by DM, and how they are found."""
    if not settings.asks_actor:
        return "off: nobody is asked by DM (set ACTOR_EMAIL_DOMAIN or ACTOR_MAP to turn it on)"
    how = [f"email domain {settings.actor_email_domain}"] if settings.actor_email_domain else []
    how += [f"{len(settings.actor_map)} mapped in ACTOR_MAP"] if settings.actor_map else []
    return (f"on: the person behind a change is asked by DM ({', '.join(how) or 'session names that are emails'};"
            " needs the users:read.email and im:write scopes)")


def _named(problem: str) -> tuple[str, str]:
    """`NAME: detail` → (NAME, detail): each problem line begins with its setting's name."""
    name, _, detail = problem.partition(": ")
    return (name, detail) if detail else ("settings", problem)


def check_slack(settings: Settings, slack: WebClient, problems: Sequence[str] = ()) -> list[Check]:
    """auth.test (token valid, scopes in its x-oauth-scopes header) and the alert channel."""
    if not settings.slack_bot_token:
        return []
    if any(p.startswith(("SLACK_BOT_TOKEN:", "SLACK_API_URL:")) for p in problems):
        # Not sent anywhere until it is a bot token and the URL is one.
        return [Check(False, "Slack token", "not checked: fix SLACK_BOT_TOKEN / SLACK_API_URL first")]
    checks: list[Check] = []

    def auth() -> Check:
        response = slack.auth_test()
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        raw = headers.get("x-oauth-scopes", "")
        granted = {s.strip() for s in (raw[0] if isinstance(raw, list) else raw).split(",") if s.strip()}
        for scope, why in BOT_SCOPES.items():
            ok = scope in granted
            checks.append(
                Check(ok, f"scope {scope}", why if ok else f"missing — needed for {why}", scope in ESSENTIAL_SCOPES)
            )
        return Check(True, "Slack token", f"valid for team {response.get('team')} as {response.get('user')}")

    host = urlsplit(settings.slack_api_url).netloc or settings.slack_api_url
    checks.insert(0, _guard("Slack token", True, auth, host))

    def channel(channel_id: str, label: str) -> Check:
        info = slack.conversations_info(channel=channel_id)["channel"]
        name = f"#{info.get('name')} ({channel_id})"
        if info.get("is_archived"):
            return Check(False, label, f"{name} is archived")
        if info.get("is_member") is False:
            return Check(False, label, f"{name}: the bot is not a member; /invite it")
        return Check(True, label, name)

    if settings.alert_channel and not any(p.startswith("ALERT_CHANNEL:") for p in problems):
        checks.append(_guard("alert channel", True, lambda: channel(settings.alert_channel, "alert channel"), host))
    if not any(p.startswith("ROUTES:") for p in problems):
        # Cards routed to a channel the bot cannot post in would never be seen: one look-up per channel.
        for routed in dict.fromkeys(r.channel for r in settings.routes if r.channel != settings.alert_channel):
            label = f"route channel {routed}"
            checks.append(_guard(label, True, functools.partial(channel, routed, label), host))
    return checks


def check_aws(settings: Settings, aws: AwsClients, *, now: datetime | None = None) -> list[Check]:
    """Per account: identity and account-level BPA read; per account-region: a one-event LookupEvents."""
    now = now or datetime.now(UTC)
    checks: list[Check] = []
    home = settings.home_region
    for account in aws.accounts:  # with AWS_ACCOUNTS=org:… the organisation's, once discovered
        acct = account.account_id

        def identity(acct: str = acct) -> Check:
            arn = aws.client("sts", acct, home).get_caller_identity()["Arn"]
            return Check(True, f"AWS {acct} identity", arn)

        def account_bpa(acct: str = acct) -> Check:
            got = read_bpa(aws.client("s3control", acct, home), acct, None)
            if got.denied is not None:
                raise got.denied  # _guard words it as every other refusal
            detail = "readable (no configuration set)" if got.config is None else "readable"
            return Check(True, f"AWS {acct} account BPA read", detail)

        checks.append(_guard(f"AWS {acct} identity", True, identity))
        checks.append(_guard(f"AWS {acct} account BPA read", False, account_bpa))
        if settings.remediation_role:

            def remediation(acct: str = acct) -> Check:
                # The roles require a SourceIdentity: this check names itself, as a press names its presser.
                arn = aws.client("sts", acct, home, write=True, actor=DOCTOR).get_caller_identity()["Arn"]
                return Check(True, f"AWS {acct} remediation role", arn)

            checks.append(_guard(f"AWS {acct} remediation role", False, remediation))
        for region in aws.regions_for(acct):

            def lookup(acct: str = acct, region: str = region) -> Check:
                aws.client("cloudtrail", acct, region).lookup_events(
                    LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "s3.amazonaws.com"}],
                    StartTime=now - timedelta(hours=1),
                    EndTime=now,
                    MaxResults=1,
                )
                return Check(True, f"AWS {acct} {region} CloudTrail", "LookupEvents allowed")

            checks.append(_guard(f"AWS {acct} {region} CloudTrail", True, lookup))
    return checks


def run_doctor(
    settings: Settings,
    *,
    slack: WebClient,
    aws: AwsClients,
    out: TextIO = sys.stdout,
    problems: Sequence[str] | None = None,
    store: Store | None = None,
) -> int:
    """Print settings (redacted) and every check; 0 when nothing essential failed, else 1.

    `problems`: those found while reading the environment (read_settings) and by settings_problems;
    computed from `settings` when not given. `store` (AWS_ACCOUNTS=org:…, AWS_REGIONS=all) records
    discovery's outcome, as the running bot would.
    """
    problems = settings_problems(settings) if problems is None else problems
    print("settings:", file=out)
    for name, value in settings.redacted().items():
        print(f"  {name} = {value}", file=out)
    checks = check_settings(settings, problems) + [Check(*c) for c in doctor_fleet.check_queues(settings, aws)]
    checks += check_slack(settings, slack, problems)
    if store is not None:
        checks += [Check(*c) for c in doctor_fleet.check_fleet(settings, aws, store)]
    checks += check_aws(settings, aws) + [Check(*c) for c in doctor_fleet.check_regions(settings, aws)]
    print("checks:", file=out)
    for check in checks:
        print("  " + check.line(), file=out)
    failed = [c for c in checks if not c.ok and c.essential]
    print(f"{len(failed)} essential check(s) failed" if failed else "all essential checks passed", file=out)
    return 1 if failed else 0


def cli_doctor(args: argparse.Namespace) -> int:
    """The same problems `run` refuses to start on (an unreadable value keeps its default here), then the rest."""
    settings, problems = all_problems(dotenv=Path(".env"))
    discovers = settings.organization is not None or settings.all_regions
    db_usable = not any(p.startswith("DB_PATH:") for p in problems)
    store = Store(settings.db_path) if discovers and db_usable else None
    return run_doctor(settings, slack=build_web_client(settings), aws=AwsClients(settings), problems=problems,
                      store=store)
