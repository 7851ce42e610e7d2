"""The whole organisation: accounts from AWS Organizations, each account's enabled regions, where buckets live.

One helper per AWS read; callers decide what a failure means (bot.sources.fleet keeps the last good
answer, `doctor` prints it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# ListAccounts' `State` (2025) replaced `Status`: PENDING_ACTIVATION, ACTIVE, SUSPENDED, PENDING_CLOSURE,
# CLOSED. Only ACTIVE accounts can be read; the others are dropped until they come back.
ACTIVE = "ACTIVE"
# DescribeRegions(AllRegions=True) marks each region: enabled by default, opted in, or not opted in.
ENABLED = frozenset({"opt-in-not-required", "opted-in"})
BUCKET_LOCATIONS = 200  # GetBucketLocation calls at most, when ListBuckets gives no BucketRegion


@dataclass(frozen=True)
class OrgAccount:
    """One ListAccounts entry."""

    account_id: str
    name: str
    state: str

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


def list_org_accounts(organizations: Any) -> list[OrgAccount]:
    """Every account of the organisation, active or not (ListAccounts, paginated).

    Only the management account or a delegated administrator may call it ("ListAccounts",
    AWS Organizations API reference).
    """
    out: list[OrgAccount] = []
    for page in organizations.get_paginator("list_accounts").paginate():
        for entry in page.get("Accounts") or []:
            # Answers before 2025 carry only the deprecated `Status` (ACTIVE, SUSPENDED, PENDING_CLOSURE).
            state = str(entry.get("State") or entry.get("Status") or "")
            out.append(OrgAccount(str(entry.get("Id") or ""), str(entry.get("Name") or ""), state))
    return [a for a in out if a.account_id.isdigit() and len(a.account_id) == 12]


@dataclass(frozen=True)
class Regions:
    """One account's regions as DescribeRegions(AllRegions=True) lists them."""

    enabled: tuple[str, ...]
    disabled: tuple[str, ...]  # opt-in regions not opted in: CloudTrail records nothing there


def account_regions(ec2: Any) -> Regions:
    """The account's enabled and not-enabled regions (ec2:DescribeRegions with each one's OptInStatus)."""
    reply = ec2.describe_regions(AllRegions=True)
    enabled: list[str] = []
    disabled: list[str] = []
    for region in reply.get("Regions") or []:
        name = str(region.get("RegionName") or "")
        if name:
            (enabled if region.get("OptInStatus") in ENABLED else disabled).append(name)
    return Regions(tuple(sorted(enabled)), tuple(sorted(disabled)))


def bucket_regions(s3: Any, *, limit: int = BUCKET_LOCATIONS) -> Counter[str]:
    """How many of the account's buckets live in each region (ListBuckets; GetBucketLocation where it is silent).

    ListBuckets names each bucket's region (`BucketRegion`) since 2024; S3-compatible endpoints and
    older stand-ins do not, so up to `limit` buckets are looked up one by one and the rest counted as "?".
    """
    counts: Counter[str] = Counter()
    looked_up = 0
    for bucket in s3.list_buckets().get("Buckets") or []:
        region = bucket.get("BucketRegion")
        if not region:
            if looked_up >= limit:
                counts["?"] += 1
                continue
            looked_up += 1
            try:
                constraint = s3.get_bucket_location(Bucket=bucket["Name"]).get("LocationConstraint")
            except ClientError:
                counts["?"] += 1
                continue
            # GetBucketLocation answers null for us-east-1 and the legacy "EU" for eu-west-1.
            region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)
        counts[str(region)] += 1
    return counts
