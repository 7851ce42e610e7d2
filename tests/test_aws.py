"""AwsClients: ambient vs assumed-role credentials (moto STS), write roles, retries, endpoint variables."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from bot.aws.clients import (
    AwsClients,
    NoWriteAccess,
    UnknownAccount,
    error_code,
    error_message,
    request_id,
    role_arn_for,
    source_identity,
    write_session_name,
)
from bot.core.config import Settings, parse_accounts

BARE = "111122223333"
ROLE = "444455556666"
ACCOUNTS = f"{BARE},{ROLE}:arn:aws:iam::{ROLE}:role/BucketwatchRead:ext-42"


def settings(remediation_role: str = "") -> Settings:
    return Settings(accounts=parse_accounts(ACCOUNTS), regions=("us-east-1",), remediation_role=remediation_role)


def test_bare_account_uses_ambient_credentials_without_assume_role() -> None:
    aws = AwsClients(settings())
    client = aws.client("s3", BARE, "us-east-1")
    creds = client._request_signer._credentials
    assert creds.access_key == "testing"  # from the environment, as conftest sets it
    assert aws.role_for(BARE) is None


@mock_aws
def test_role_account_gets_credentials_from_the_assumed_role() -> None:
    aws = AwsClients(settings())
    sts = aws.client("sts", ROLE, "us-east-1")
    identity = sts.get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ROLE}:assumed-role/BucketwatchRead/bucketwatch-read"
    creds = sts._request_signer._credentials
    # botocore's own refreshing credentials, not a frozen copy: they renew themselves before expiry.
    assert isinstance(creds, DeferredRefreshableCredentials)
    assert creds.access_key != "testing"
    assert creds._expiry_time is not None


@mock_aws
def test_write_uses_remediation_role_never_the_read_role() -> None:
    aws = AwsClients(settings(remediation_role="BucketwatchFix"))
    for account in (BARE, ROLE):
        identity = aws.client("sts", account, "us-east-1", write=True).get_caller_identity()
        assert identity["Arn"] == f"arn:aws:sts::{account}:assumed-role/BucketwatchFix/bucketwatch-remediate"
    assert aws.role_for(ROLE, write=True) == (f"arn:aws:iam::{ROLE}:role/BucketwatchFix", "ext-42")


def test_role_account_without_remediation_role_refuses_to_write() -> None:
    aws = AwsClients(settings())
    with pytest.raises(NoWriteAccess):
        aws.client("s3", ROLE, "us-east-1", write=True)
    # A bare-id account writes with the ambient credentials, like it reads.
    assert aws.client("s3", BARE, "us-east-1", write=True)._request_signer._credentials.access_key == "testing"


def test_unknown_account_is_a_named_error() -> None:
    with pytest.raises(UnknownAccount):
        AwsClients(settings()).client("s3", "999999999999", "us-east-1")


def test_clients_are_cached_and_retry_adaptively() -> None:
    aws = AwsClients(settings(), max_attempts=5)
    client = aws.client("cloudtrail", BARE, "eu-west-1")
    assert aws.client("cloudtrail", BARE, "eu-west-1") is client
    assert aws.client("cloudtrail", BARE, "us-east-1") is not client
    assert client.meta.config.retries["mode"] == "adaptive"
    assert client.meta.region_name == "eu-west-1"


def test_boto3_endpoint_variables_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", "http://127.0.0.1:8")
    aws = AwsClients(settings())
    assert aws.client("s3", BARE, "us-east-1").meta.endpoint_url == "http://127.0.0.1:9"
    assert aws.client("cloudtrail", BARE, "us-east-1").meta.endpoint_url == "http://127.0.0.1:8"


def test_injected_factories_are_used() -> None:
    built: list[tuple[str, str]] = []

    def client_factory(session, service, region, config):  # type: ignore[no-untyped-def]
        built.append((service, region))
        return object()

    aws = AwsClients(settings(), client_factory=client_factory)
    aws.client("s3", BARE, "us-east-1")
    aws.client("s3", BARE, "us-east-1")
    assert built == [("s3", "us-east-1")]


def test_role_names_become_arns() -> None:
    assert role_arn_for("Fix", ROLE) == f"arn:aws:iam::{ROLE}:role/Fix"
    assert role_arn_for(f"arn:aws:iam::{ROLE}:role/X", ROLE) == f"arn:aws:iam::{ROLE}:role/X"
    # Another account's role is never assumed for a fix here (settings refuse it; this is the last guard).
    with pytest.raises(NoWriteAccess, match="is a role of account 1, not of"):
        role_arn_for("arn:aws:iam::1:role/X", ROLE)


def test_error_helpers() -> None:
    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"RequestId": "R1"}}, "GetBucketAcl"
    )
    assert error_code(denied) == "AccessDenied"
    assert error_message(denied) == "AccessDenied: no"
    assert request_id(denied) == "R1"
    assert request_id({"ResponseMetadata": {"RequestId": "R2"}}) == "R2"
    # S3 and other services name the request id header differently.
    assert request_id({"ResponseMetadata": {"HTTPHeaders": {"x-amz-request-id": "S3R"}}}) == "S3R"
    assert request_id({"ResponseMetadata": {"HTTPHeaders": {"x-amzn-requestid": "CTR"}}}) == "CTR"
    assert request_id(None) == ""
    assert error_code(EndpointConnectionError(endpoint_url="http://x")) == "EndpointConnectionError"


def _recording_sessions(sent: list[dict[str, Any]]) -> Any:
    """Botocore sessions that note every AssumeRole request's parameters (moto's STS does not echo them)."""

    def factory() -> botocore.session.Session:
        session = botocore.session.get_session()
        session.register("before-call.sts.AssumeRole", lambda params, **_: sent.append(dict(params["body"])))
        return session

    return factory


@mock_aws
def test_each_presser_writes_through_a_session_that_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    aws = AwsClients(settings(remediation_role="BucketwatchFix"), session_factory=_recording_sessions(sent))
    alice = aws.client("sts", ROLE, "us-east-1", write=True, actor="U0ALICE").get_caller_identity()["Arn"]
    bob = aws.client("sts", ROLE, "us-east-1", write=True, actor="U0BOB").get_caller_identity()["Arn"]
    # CloudTrail in the watched account shows the session name in the ARN and SourceIdentity beside it.
    assert alice == f"arn:aws:sts::{ROLE}:assumed-role/BucketwatchFix/bucketwatch-U0ALICE"
    assert bob == f"arn:aws:sts::{ROLE}:assumed-role/BucketwatchFix/bucketwatch-U0BOB"
    assert [(p["RoleSessionName"], p["SourceIdentity"], p["ExternalId"]) for p in sent] == [
        ("bucketwatch-U0ALICE", "U0ALICE", "ext-42"),
        ("bucketwatch-U0BOB", "U0BOB", "ext-42"),
    ]
    # Reads never carry a presser: the read-only role's one session, no SourceIdentity.
    aws.client("sts", ROLE, "us-east-1", actor="U0ALICE").get_caller_identity()
    assert sent[-1]["RoleSessionName"] == "bucketwatch-read" and "SourceIdentity" not in sent[-1]
    # Past the cap the oldest presser's session goes, and is assumed again on their next press.
    monkeypatch.setattr("bot.aws.clients.MAX_WRITE_SESSIONS", 1)
    aws.client("sts", ROLE, "us-east-1", write=True, actor="U0CAROL").get_caller_identity()
    aws.client("sts", ROLE, "us-east-1", write=True, actor="U0ALICE").get_caller_identity()
    assert [p["SourceIdentity"] for p in sent if "SourceIdentity" in p][-2:] == ["U0CAROL", "U0ALICE"]


def test_a_presser_id_is_made_safe_for_sts() -> None:
    assert source_identity("U0ALICE") == "U0ALICE"
    assert source_identity("<!channel> x") == "--channel--x"
    assert source_identity("") is None and source_identity("U") is None
    assert write_session_name("W" * 80) == ("bucketwatch-" + "W" * 64)[:64]
    assert write_session_name("") == "bucketwatch-remediate"
