"""Which accounts and regions to watch when AWS_ACCOUNTS=org:<role> or AWS_REGIONS=all: discovered, refreshed daily.

`refresh_fleet` lists the organisation's accounts (ListAccounts from the management or a delegated
administrator account, with the bot's own credentials), keeps the ACTIVE ones (a suspended or closing
account is dropped; it comes back if it is reactivated), and with AWS_REGIONS=all asks each account
for its enabled regions (ec2:DescribeRegions through the account's read role). The answer replaces
the set in `AwsClients`, so the next poll, live verdict and fix use it.

A failure never empties what was known: if ListAccounts fails the previous accounts stay; an account
whose regions cannot be read keeps its previous regions, or the home region until it answers. Each
refresh is recorded as the source `accounts:…` in poller_state, so `status`, App Home and the digest
show when discovery fails.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from bot.aws.clients import AWS_ERRORS, AwsClients, error_message
from bot.aws.organization import Regions, account_regions, list_org_accounts
from bot.core.config import Account, Settings
from bot.sources.state import SourceResult, record_outcome
from bot.store.database import Store

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 24 * 3600  # new accounts and regions are picked up daily (bot.sources.health knows)
WORKERS = 16  # DescribeRegions calls in flight (one per account)


def fleet_source(settings: Settings) -> str | None:
    """The poller_state name of discovery, or None when nothing is discovered."""
    if settings.organization is not None:
        return f"accounts:{settings.organization}"
    if settings.all_regions:
        return "accounts:regions=all"
    return None


@dataclass
class FleetReport:
    """What one refresh found."""

    accounts: list[str] = field(default_factory=list)  # watched account ids, in order
    added: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # account id → state (SUSPENDED, …)
    regions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def refresh_fleet(settings: Settings, aws: AwsClients, store: Store, now: datetime) -> FleetReport:
    """Discover the organisation's accounts and each account's regions; update `aws`; record the outcome."""
    report = FleetReport()
    source = fleet_source(settings)
    if source is None:
        return report
    began = time.monotonic()
    result = SourceResult(source=source, kind="accounts")
    before = {a.account_id for a in aws.accounts}
    discovered = [a for a in aws.accounts if a not in settings.accounts]  # kept if ListAccounts fails
    if settings.organization is not None:
        try:
            result.calls += 1
            listing = list_org_accounts(aws.ambient_client("organizations", settings.home_region))
        except AWS_ERRORS as exc:
            report.errors.append(f"ListAccounts: {error_message(exc)}")
        else:
            discovered = [settings.organization.account(a.account_id) for a in listing if a.active]
            report.dropped = {a.account_id: a.state for a in listing if not a.active}
    regions: dict[str, tuple[str, ...]] = {}
    if settings.all_regions:
        accounts = list({a.account_id: a for a in (*settings.accounts, *discovered)}.values())
        # New accounts must be known before their role can be assumed; regions stay as they were meanwhile.
        aws.set_fleet(discovered, {a.account_id: aws.regions_for(a.account_id) for a in accounts})
        regions = _regions(settings, aws, accounts, report, result)
    aws.set_fleet(discovered, regions)
    report.accounts = [a.account_id for a in aws.accounts]
    report.added = [a for a in report.accounts if a not in before]
    report.regions = {a: aws.regions_for(a) for a in report.accounts}
    if report.added or report.dropped:
        logger.info("%s: %d account(s) watched, %d new, %d not active", source, len(report.accounts),
                    len(report.added), len(report.dropped))
    result.seconds = time.monotonic() - began
    if report.errors:
        result.error = f"{len(report.errors)} error(s): {report.errors[0]}"[:300]
    with store.atomic() as db:
        record_outcome(db, result, now)
    return report


def _regions(
    settings: Settings, aws: AwsClients, accounts: list[Account], report: FleetReport, result: SourceResult
) -> dict[str, tuple[str, ...]]:
    """Each account's enabled regions; one that cannot answer keeps what was known, else the home region."""

    def ask(account: Account) -> Regions | str:
        try:
            return account_regions(aws.client("ec2", account.account_id, settings.home_region))
        except AWS_ERRORS as exc:
            return error_message(exc)

    out: dict[str, tuple[str, ...]] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(accounts))), thread_name_prefix="regions") as pool:
        for account, answer in zip(accounts, pool.map(ask, accounts), strict=True):
            result.calls += 1
            if isinstance(answer, Regions) and answer.enabled:
                out[account.account_id] = answer.enabled
                continue
            known = aws.regions_for(account.account_id)
            out[account.account_id] = known or (settings.home_region,)
            why = answer if isinstance(answer, str) else "no enabled region listed"
            report.errors.append(
                f"{account.account_id} DescribeRegions: {why}; watching {', '.join(out[account.account_id])}"
            )
    return out
