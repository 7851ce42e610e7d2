"""`python -m bot doctor`: settings, Slack token scopes and channel, AWS access per account and region.

Prints one ✓/✗ line per check and never a secret (settings come from Settings.redacted(); tokens are
only ever sent to Slack). Exits non-zero when something essential fails: the bot could not post,
be reached, or read CloudTrail. Other failures (a missing optional scope, the account-level Block
Public Access read) are marked "(degrades …)" and do not change the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from botocore.exceptions import ClientError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.app import build_web_client
from bot.aws.bpa import read_bpa
from bot.aws.clients import AwsClients, error_code, error_message
from bot.cli import doctor_fleet
from bot.core.config import Settings, load_settings
from bot.slack.manifest import BOT_SCOPES, ESSENTIAL_SCOPES
from bot.slack.permissions import slack_error
from bot.store.database import Store


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


def _guard(name: str, essential: bool, run: Callable[[], Check]) -> Check:
    """One check; an unexpected error becomes a ✗ line with its code, never a traceback or a secret."""
    try:
        return run()
    except SlackApiError as exc:
        return Check(False, name, f"Slack said {slack_error(exc)}", essential)
    except Exception as exc:
        return Check(False, name, error_message(exc) if isinstance(exc, ClientError) else error_code(exc), essential)


def check_settings(settings: Settings) -> list[Check]:
    """What must be set for the bot to run at all."""
    transport = "Socket Mode (SLACK_APP_TOKEN)" if settings.socket_mode else f"HTTP on port {settings.port}"
    return [
        Check(bool(settings.slack_bot_token), "SLACK_BOT_TOKEN", "set" if settings.slack_bot_token else "not set"),
        Check(
            settings.socket_mode or bool(settings.slack_signing_secret),
            "transport",
            transport
            + ("" if settings.socket_mode or settings.slack_signing_secret else ": SLACK_SIGNING_SECRET not set"),
        ),
        Check(bool(settings.alert_channel), "ALERT_CHANNEL", settings.alert_channel or "not set"),
        Check(
            bool(settings.has_accounts or settings.trail_buckets or settings.queue_urls),
            "sources",
            f"{'the organisation' if settings.organization else len(settings.accounts)} + account(s) × "
            f"{'enabled regions' if settings.all_regions else len(settings.regions)} region(s), "
            f"{len(settings.trail_buckets)} trail bucket(s), {len(settings.event_queue_urls)} event queue(s),"
            f" {len(settings.trail_queue_urls)} trail queue(s)",
        ),
        Check(True, "DRY_RUN", "fixes change nothing" if settings.dry_run else "fixes change AWS"),
    ]


def check_slack(settings: Settings, slack: WebClient) -> list[Check]:
    """auth.test (token valid, scopes in its x-oauth-scopes header) and the alert channel."""
    if not settings.slack_bot_token:
        return []
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

    checks.insert(0, _guard("Slack token", True, auth))

    def channel() -> Check:
        info = slack.conversations_info(channel=settings.alert_channel)["channel"]
        name = f"#{info.get('name')} ({settings.alert_channel})"
        if info.get("is_archived"):
            return Check(False, "alert channel", f"{name} is archived")
        if info.get("is_member") is False:
            return Check(False, "alert channel", f"{name}: the bot is not a member; /invite it")
        return Check(True, "alert channel", name)

    if settings.alert_channel:
        checks.append(_guard("alert channel", True, channel))
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
                arn = aws.client("sts", acct, home, write=True).get_caller_identity()["Arn"]
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
    settings: Settings, *, slack: WebClient, aws: AwsClients, out: TextIO = sys.stdout, store: Store | None = None
) -> int:
    """Print settings (redacted) and every check; 0 when nothing essential failed, else 1."""
    print("settings:", file=out)
    for name, value in settings.redacted().items():
        print(f"  {name} = {value}", file=out)
    checks = check_settings(settings) + [Check(*c) for c in doctor_fleet.check_queues(settings)]
    checks += check_slack(settings, slack)
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

    settings = load_settings(dotenv=Path(".env"))
    # The store records discovery's outcome, as the running bot would (AWS_ACCOUNTS=org:…, AWS_REGIONS=all).
    store = Store(settings.db_path) if settings.organization or settings.all_regions else None
    return run_doctor(settings, slack=build_web_client(settings), aws=AwsClients(settings), store=store)
