"""The whole organisation over moto (Organizations, STS, EC2): accounts discovered page by page, suspended ones
dropped, new ones picked up; AWS_REGIONS=all as each account's enabled regions; failures keep what was known."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from bot.aws.clients import AwsClients
from bot.core.config import ConfigError, Organization, load_settings
from bot.sources.poller import Poller
from bot.store.database import Store

ROLE = "bucketwatch-readonly"


@pytest.fixture
def org() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        yield client


def new_account(org: Any, name: str) -> str:
    return str(org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"])


def answer(client: Any, operation: str, status: int, body: dict[str, Any]) -> Any:
    """Make `client` answer `operation` with `body` (an error when status ≥ 400), as AWS would; returns the hook."""

    def hook(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://aws.example", status, {}, None), body

    client.meta.events.register(f"before-call.{client.meta.service_model.service_name}.{operation}", hook)
    return hook


DENIED = {"Error": {"Code": "AccessDeniedException", "Message": "not the management account"}}


def test_settings_parse_org_and_all() -> None:
    settings = load_settings({"AWS_ACCOUNTS": f"org:{ROLE}:ext-1, 111122223333", "AWS_REGIONS": "all"})
    assert settings.organization == Organization(ROLE, "ext-1")
    assert [a.account_id for a in settings.accounts] == ["111122223333"]
    assert settings.all_regions and settings.regions == () and settings.home_region == "us-east-1"
    assert settings.redacted()["AWS_ACCOUNTS"] == f"org:{ROLE},111122223333"  # never the external id
    assert settings.redacted()["AWS_REGIONS"] == "all"
    for bad, message in (({"AWS_ACCOUNTS": "org:"}, "role name"), ({"AWS_ACCOUNTS": "org:a,org:b"}, "at most one"),
                         ({"AWS_REGIONS": "all,eu-west-1"}, "stands alone")):
        with pytest.raises(ConfigError, match=message):
            load_settings(bad)


def test_active_accounts_are_discovered_page_by_page_and_suspended_ones_dropped(org: Any, store: Store) -> None:
    ids = [new_account(org, f"team-{n}") for n in range(5)]
    org.close_account(AccountId=ids[1])  # SUSPENDED: nothing can be read there
    settings = load_settings({"AWS_ACCOUNTS": f"org:{ROLE}:ext-1"})
    aws = AwsClients(settings)
    poller = Poller(settings, store, aws)
    pages: list[dict[str, Any]] = []
    listing = aws.ambient_client("organizations", "us-east-1")

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["MaxResults"] = 2
        pages.append(params)

    listing.meta.events.register("before-parameter-build.organizations.ListAccounts", small_pages)
    report = poller.refresh_fleet()
    assert len(pages) == 3  # 6 accounts (the management account too), 2 a page
    watched = sorted(a.account_id for a in aws.accounts)
    assert watched == sorted(["123456789012", *ids[:1], *ids[2:]])
    assert report.dropped == {ids[1]: "SUSPENDED"}
    assert aws.account(ids[0]).role_arn == f"arn:aws:iam::{ids[0]}:role/{ROLE}"
    assert aws.account(ids[0]).external_id == "ext-1"
    assert sorted(t.source for t in poller.targets) == sorted(f"lookup:{a}:us-east-1" for a in watched)
    # The role really is assumed in a discovered account (moto's STS), and the read goes there.
    assert aws.client("sts", ids[0], "us-east-1").get_caller_identity()["Account"] == ids[0]

    latecomer = new_account(org, "joined-today")
    assert poller.refresh_fleet().added == [latecomer]
    health = {h.source: h for h in poller.health()}
    assert health[f"accounts:org:{ROLE}"].healthy


def test_a_failed_listing_keeps_the_accounts_known_and_shows_in_health(org: Any, store: Store) -> None:
    ids = [new_account(org, f"team-{n}") for n in range(2)]
    settings = load_settings({"AWS_ACCOUNTS": f"org:{ROLE}"})
    aws = AwsClients(settings)
    poller = Poller(settings, store, aws)
    poller.refresh_fleet()
    answer(aws.ambient_client("organizations", "us-east-1"), "ListAccounts", 400, DENIED)
    report = poller.refresh_fleet()
    assert set(ids) <= {a.account_id for a in aws.accounts}  # nothing forgotten on a failure
    [health] = [h for h in poller.health() if h.source.startswith("accounts:")]
    assert not health.healthy and "AccessDeniedException" in (health.last_error or "")
    assert report.errors == ["ListAccounts: AccessDeniedException: not the management account"]


def test_the_first_poll_discovers_before_it_reads(org: Any, store: Store) -> None:
    new_account(org, "team-0")
    settings = load_settings({"AWS_ACCOUNTS": f"org:{ROLE}", "LOOKUP_POLLING": "false"})
    poller = Poller(settings, store, AwsClients(settings))
    poller.poll_once()
    assert len(poller.aws.accounts) == 2 and poller.source_names() == [f"accounts:org:{ROLE}"]


REGIONS = {
    "Regions": [
        {"RegionName": "us-east-1", "OptInStatus": "opt-in-not-required", "Endpoint": "ec2.us-east-1.amazonaws.com"},
        {"RegionName": "eu-west-1", "OptInStatus": "opt-in-not-required", "Endpoint": "ec2.eu-west-1.amazonaws.com"},
        {"RegionName": "af-south-1", "OptInStatus": "opted-in", "Endpoint": "ec2.af-south-1.amazonaws.com"},
        {"RegionName": "me-south-1", "OptInStatus": "not-opted-in", "Endpoint": "ec2.me-south-1.amazonaws.com"},
    ]
}


def test_regions_all_means_each_accounts_enabled_regions(store: Store) -> None:
    with mock_aws():
        settings = load_settings({"AWS_ACCOUNTS": "111122223333,444455556666", "AWS_REGIONS": "all"})
        aws = AwsClients(settings)
        poller = Poller(settings, store, aws)
        assert poller.targets == []  # nothing is guessed before the accounts answer
        answer(aws.client("ec2", "111122223333", "us-east-1"), "DescribeRegions", 200, REGIONS)
        answer(aws.client("ec2", "444455556666", "us-east-1"), "DescribeRegions", 400,
               {"Error": {"Code": "UnauthorizedOperation", "Message": "no ec2:DescribeRegions"}})
        poller.refresh_fleet()
        assert aws.regions_for("111122223333") == ("af-south-1", "eu-west-1", "us-east-1")  # not me-south-1
        assert aws.regions_for("444455556666") == ("us-east-1",)  # the home region until it answers
        [health] = [h for h in poller.health() if h.source == "accounts:regions=all"]
        assert "444455556666 DescribeRegions: UnauthorizedOperation" in (health.last_error or "")
        assert len(poller.targets) == 4
