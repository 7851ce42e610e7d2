"""`doctor`'s checks of coverage: the organisation's accounts, regions against where buckets live, the queues
and LookupEvents as their safety net. Kept apart from bot.cli.doctor (settings, Slack, per-account access),
which prints these lines with its own."""

from __future__ import annotations

from typing import NamedTuple

from botocore.exceptions import ClientError

from bot.aws.clients import AWS_ERRORS, AwsClients, error_code, error_message
from bot.aws.organization import account_regions, bucket_regions
from bot.core.clock import utcnow
from bot.core.config import Settings
from bot.sources.fleet import refresh_fleet
from bot.sources.health import late_after
from bot.sources.sqs import SqsQueue
from bot.store.database import Store

MAX_REGION_CHECKS = 50  # accounts whose regions and buckets doctor compares (the rest are counted)


class Check(NamedTuple):
    """One line for `doctor` (bot.cli.doctor.Check takes the same fields)."""

    ok: bool
    name: str
    detail: str
    essential: bool = True


def check_fleet(settings: Settings, aws: AwsClients, store: Store) -> list[Check]:
    """AWS_ACCOUNTS=org:… and AWS_REGIONS=all: discover now, as the bot does at start, and say what was found."""
    if settings.organization is None and not settings.all_regions:
        return []
    report = refresh_fleet(settings, aws, store, utcnow())
    checks: list[Check] = []
    if settings.organization is not None:
        listing_failed = next((e for e in report.errors if e.startswith("ListAccounts")), None)
        dropped = ", ".join(f"{a} ({state.lower()})" for a, state in sorted(report.dropped.items()))
        detail = listing_failed or (
            f"{len(report.accounts)} active account(s), each read through role {settings.organization.role_name};"
            f" re-listed daily" + (f"; not watched: {dropped}" if dropped else "")
        )
        checks.append(Check(listing_failed is None and bool(report.accounts), "AWS Organizations", detail))
    if settings.all_regions:
        failed = [e for e in report.errors if "DescribeRegions" in e]
        total = sum(len(r) for r in report.regions.values())
        detail = f"{total} account-region(s) across {len(report.regions)} account(s)"
        checks.append(Check(not failed, "AWS_REGIONS=all", detail + (f"; {failed[0]}" if failed else ""), False))
    return checks


def check_queues(settings: Settings, aws: AwsClients | None = None) -> list[Check]:
    """The queues (each asked for its attributes, as the bot's role would), and how often LookupEvents still
    polls behind them."""
    checks: list[Check] = []
    if settings.queue_urls:
        checks.append(Check(True, "queues", f"{len(settings.queue_urls)} queue(s) long-polled by listener threads:"
                                            " a change reaches the channel within seconds of EventBridge"))
    if aws is not None:
        urls = [*settings.queue_urls, *([settings.findings_queue_url] if settings.findings_queue_url else [])]
        checks += [_queue_reachable(settings, aws, url) for url in urls]
    if not (settings.queue_urls and settings.lookup_polling and settings.has_accounts):
        return checks
    every = settings.poll_seconds * settings.safety_net_factor
    detail = (
        f"safety net: LookupEvents polls every {every} s (POLL_SECONDS {settings.poll_seconds} × SAFETY_NET_FACTOR"
        f" {settings.safety_net_factor}) because a queue brings the events; it catches what the queue misses"
    )
    detail += (f"; `status`, the digest and /readyz call a source late after"
               f" {int(late_after(every).total_seconds() // 60)} minutes without a successful poll")
    checks.append(Check(True, "LookupEvents", detail, False))
    return checks


def _queue_reachable(settings: Settings, aws: AwsClients, url: str) -> Check:
    queue = SqsQueue.parse(url, "queue")
    try:
        found = aws.ambient_client("sqs", queue.region or settings.home_region).get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "VisibilityTimeout"])["Attributes"]
    except AWS_ERRORS as exc:
        return Check(False, f"queue {queue.name}", f"cannot be read: {error_message(exc)} (sqs:GetQueueAttributes,"
                                                    " ReceiveMessage and DeleteMessage are needed)")
    waiting = found.get("ApproximateNumberOfMessages", "?")
    return Check(True, f"queue {queue.name}", f"reachable; {waiting} message(s) waiting")


def check_regions(settings: Settings, aws: AwsClients) -> list[Check]:
    """Configured regions against each account's enabled regions and the regions holding its buckets."""
    checks: list[Check] = []
    if not settings.all_regions and settings.has_accounts:
        where = ", ".join(settings.regions)
        elsewhere = (
            "seen only through the queue(s) or trail" if settings.queue_urls or settings.trail_buckets else "missed"
        )
        checks.append(Check(
            False, "AWS_REGIONS",
            f"{where}: LookupEvents reads only these; changes made in other regions are {elsewhere}"
            " (AWS_REGIONS=all reads each account's enabled regions)", False,
        ))  # fmt: skip
    accounts = aws.accounts
    for account in accounts[:MAX_REGION_CHECKS]:
        name = f"AWS {account.account_id} regions"
        try:
            checks.append(_compare(settings, aws, account.account_id, name))
        except Exception as exc:  # one account's failure is one line, never a traceback (nor a secret)
            why = error_message(exc) if isinstance(exc, ClientError) else error_code(exc)
            checks.append(Check(False, name, why, False))
    if len(accounts) > MAX_REGION_CHECKS:
        checks.append(Check(True, "regions", f"{len(accounts) - MAX_REGION_CHECKS} more account(s) not compared"))
    return checks


def _compare(settings: Settings, aws: AwsClients, account_id: str, name: str) -> Check:
    home = settings.home_region
    watched = set(aws.regions_for(account_id))
    enabled: set[str] | None = None
    try:
        enabled = set(account_regions(aws.client("ec2", account_id, home)).enabled)
        enabled_text = f"{len(enabled)} enabled"
    except AWS_ERRORS as exc:  # a missing ec2:DescribeRegions only narrows this check
        enabled_text = f"enabled regions unknown ({error_message(exc)})"
    buckets = bucket_regions(aws.client("s3", account_id, home))
    problems = []
    outside = sorted(r for r in buckets if r != "?" and r not in watched)
    if outside:
        counts = ", ".join(f"{r} ({buckets[r]})" for r in outside)
        problems.append(f"buckets in {counts} are outside the watched regions")
    if enabled is not None and watched - enabled:
        problems.append(f"{', '.join(sorted(watched - enabled))} not enabled in this account")
    held = ", ".join(f"{r} ({n})" for r, n in sorted(buckets.items())) or "no buckets"
    detail = f"watching {', '.join(sorted(watched)) or 'no region'} of {enabled_text}; buckets: {held}"
    return Check(not problems, name, "; ".join([*problems, detail]), False)
