"""Record: one normalised view of CloudTrail whatever era, exporter or identity made the record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.record import Record, classify_agent, deep_get, first, parse_time, unwrap

ACCT = "111122223333"


def _record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventVersion": "1.09",
        "eventTime": "2025-06-01T12:30:45Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketAcl",
        "awsRegion": "eu-central-1",
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.0",
        "eventID": "ev-1",
        "recipientAccountId": ACCT,
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/olga", "userName": "olga"},
    }
    base.update(fields)
    return base


# --- request parameters in both eras ---------------------------------------------------------------


def test_new_era_string_parameters_with_capital_host() -> None:
    r = Record(
        _record(
            requestParameters={
                "bucketName": "h1-new",
                "Host": "h1-new.s3.eu-central-1.amazonaws.com",
                "x-amz-acl": "public-read",
            }
        )
    )
    assert r.bucket == "h1-new"
    assert r.host == "h1-new.s3.eu-central-1.amazonaws.com"
    assert r.param("x-amz-acl") == "public-read"
    assert r.param("X-Amz-Acl") == "public-read"


def test_old_era_list_parameters_are_unwrapped() -> None:
    r = Record(
        _record(
            eventVersion="1.05",
            requestParameters={"host": ["h1-old.s3.amazonaws.com"], "x-amz-acl": ["private"], "acl": [""]},
        )
    )
    assert r.host == "h1-old.s3.amazonaws.com"
    assert r.bucket == "h1-old"
    assert r.param("x-amz-acl") == "private"


@pytest.mark.parametrize(
    ("params", "extra", "bucket"),
    [
        ({"bucketName": "by-name", "Host": "other.s3.amazonaws.com"}, {}, "by-name"),
        ({"Host": "dotted.bucket.name.s3.us-west-2.amazonaws.com"}, {}, "dotted.bucket.name"),
        ({"host": ["dash-host.s3-us-west-2.amazonaws.com"]}, {}, "dash-host"),
        (
            {"Host": "s3.us-west-2.amazonaws.com"},
            {"resources": [{"ARN": "arn:aws:s3:::from-arn"}]},
            "from-arn",
        ),
        (
            None,
            {"resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::obj-bucket/k/e/y"}]},
            "obj-bucket",
        ),
        (None, {"tlsDetails": {"clientProvidedHostHeader": "tls-host.s3.amazonaws.com"}}, "tls-host"),
        ({"Host": "s3.amazonaws.com"}, {}, None),
    ],
)
def test_bucket_sources(params: Any, extra: dict[str, Any], bucket: str | None) -> None:
    assert Record(_record(requestParameters=params, **extra)).bucket == bucket


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("PutAccountPublicAccessBlock", f"{ACCT}.s3-control.us-east-1.amazonaws.com"),
        ("DeleteAccountPublicAccessBlock", f"{ACCT}.s3-control.us-east-1.amazonaws.com"),
        ("PutAccessPointPolicy", f"{ACCT}.s3-control.us-east-1.amazonaws.com"),
        ("GetObject", f"myap-{ACCT}.s3-accesspoint.us-east-1.amazonaws.com"),
    ],
)
def test_account_level_and_control_hosts_name_no_bucket(name: str, host: str) -> None:
    r = Record(_record(eventName=name, requestParameters={"Host": host}))
    assert r.bucket is None
    assert r.account == ACCT
    if name.endswith("AccountPublicAccessBlock"):
        assert r.resource_label == f"account {ACCT}"


def test_null_parameters_and_missing_fields_are_empty_not_errors() -> None:
    r = Record({"eventName": "PutBucketPolicy", "requestParameters": None})
    assert r.params == {} and r.param("bucketPolicy") is None
    assert (r.bucket, r.host, r.account, r.region, r.source_ip, r.user_agent) == (None, "", "", "", "", "")
    assert r.event_time is None and r.succeeded and not r.is_s3
    assert r.actor.kind == "Unknown"


def test_account_falls_back_to_identity() -> None:
    raw = _record()
    del raw["recipientAccountId"]
    raw["userIdentity"]["accountId"] = "999988887777"
    assert Record(raw).account == "999988887777"


# --- success, read-only ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [{"errorCode": "AccessDenied", "errorMessage": "Access Denied"}, {"errorCode": "NoSuchBucket"}]
)
def test_error_code_means_nothing_changed(error: dict[str, str]) -> None:
    r = Record(_record(**error))
    assert not r.succeeded and r.error_code == error["errorCode"]


def test_read_only_from_flag_or_name() -> None:
    assert Record(_record(eventName="GetBucketAcl")).read_only
    assert Record(_record(eventName="ListObjects")).read_only
    assert not Record(_record(eventName="PutBucketAcl")).read_only
    assert Record(_record(eventName="PutBucketAcl", readOnly=True)).read_only


def test_look_alike_event_source_is_not_s3() -> None:
    for source in ("s3.amazonaws.com.evil.example", "s3-outposts.amazonaws.com", "ec2.amazonaws.com"):
        assert not Record(_record(eventSource=source)).is_s3
    assert Record(_record()).is_s3


# --- time -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-06-01T12:30:45Z", datetime(2025, 6, 1, 12, 30, 45, tzinfo=UTC)),
        ("2025-06-01T12:30:45.250Z", datetime(2025, 6, 1, 12, 30, 45, 250000, tzinfo=UTC)),
        ("2023-01-11 16:01:20", datetime(2023, 1, 11, 16, 1, 20, tzinfo=UTC)),
        ("2023-01-11 16:01:20.123", datetime(2023, 1, 11, 16, 1, 20, 123000, tzinfo=UTC)),
        ("2025-06-01T14:30:45+02:00", datetime(2025, 6, 1, 12, 30, 45, tzinfo=UTC)),
        (["2019-01-01T00:00:00Z"], datetime(2019, 1, 1, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (12, None),
    ],
)
def test_parse_time(raw: Any, expected: datetime | None) -> None:
    assert parse_time(raw) == expected


def test_event_time_falls_back_to_logstash_timestamp() -> None:
    raw = _record(**{"@timestamp": "2024-02-03T04:05:06.000Z"})
    del raw["eventTime"]
    assert Record(raw).event_time == datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)


# --- identities ------------------------------------------------------------------------------------


def _session(role: str, session: str, mfa: str = "true") -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{ACCT}:assumed-role/{role}/{session}",
        "accountId": ACCT,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCT}:role/{role}", "userName": role},
            "attributes": {"mfaAuthenticated": mfa, "creationDate": "2025-06-01T12:00:00Z"},
        },
    }


def test_iam_user() -> None:
    actor = Record(_record()).actor
    assert (actor.kind, actor.person, actor.display) == ("IAMUser", "olga", "olga")
    assert actor.mfa is None


def test_assumed_role_person_is_session_name_role_is_issuer() -> None:
    actor = Record(_record(userIdentity=_session("DeployRole", "ci-run-42", "false"))).actor
    assert actor.kind == "AssumedRole"
    assert actor.person == "ci-run-42" and actor.role == "DeployRole"
    assert actor.issuer == f"arn:aws:iam::{ACCT}:role/DeployRole"
    assert actor.mfa is False
    assert actor.display == "ci-run-42 (via role DeployRole)"


def test_sso_session_names_the_person() -> None:
    role = "AWSReservedSSO_PowerUser_abcdef0123456789"
    actor = Record(_record(userIdentity=_session(role, "nina@example.org"))).actor
    assert actor.kind == "SSO" and actor.person == "nina@example.org" and actor.mfa is True


def test_assumed_role_without_session_context_uses_arn() -> None:
    identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/Ops/pat"}
    actor = Record(_record(userIdentity=identity)).actor
    assert (actor.person, actor.role) == ("pat", "Ops")


def test_root_service_and_federated() -> None:
    root = Record(
        _record(
            userIdentity={
                "type": "Root",
                "arn": f"arn:aws:iam::{ACCT}:root",
                "accountId": ACCT,
                "sessionContext": {"attributes": {"mfaAuthenticated": "true"}},
            }
        )
    ).actor
    assert (root.kind, root.person, root.mfa) == ("Root", "root", True)
    service = Record(
        _record(userIdentity={"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"})
    ).actor
    assert (service.kind, service.display) == ("AWSService", "cloudformation.amazonaws.com")
    fed = Record(
        _record(
            userIdentity={
                "type": "FederatedUser",
                "arn": f"arn:aws:sts::{ACCT}:federated-user/quinn",
                "principalId": f"{ACCT}:quinn",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "IAMUser",
                        "userName": "broker",
                        "arn": f"arn:aws:iam::{ACCT}:user/broker",
                    }
                },
            }
        )
    ).actor
    assert (fed.kind, fed.person, fed.role) == ("FederatedUser", "quinn", "broker")


@pytest.mark.parametrize("identity", [None, "root", [], {"type": ["IAMUser"]}, {"sessionContext": "x"}, 7])
def test_junk_identity_never_raises(identity: Any) -> None:
    actor = Record(_record(userIdentity=identity)).actor
    assert isinstance(actor.display, str)


# --- user agents -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        ("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.600 Linux/5.10]", "Console"),
        ("signin.amazonaws.com", "Console"),
        ("aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64 command/s3api.put-bucket-acl", "CLI"),
        ("aws-cli/1.18.69 Python/3.8.10 Linux/5.4.0 botocore/1.17.0", "CLI"),
        ("Boto3/1.34.60 md/Botocore#1.34.60 ua/2.0 os/linux#6.1 lang/python#3.12.2", "SDK"),
        ("aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22 api/s3#1.51.1", "SDK"),
        ("aws-sdk-java/2.25.0 Linux/5.10 OpenJDK_64-Bit_Server_VM/17", "SDK"),
        (
            "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 terraform-provider-aws/5.40.0 aws-sdk-go-v2/1.25.2",
            "Terraform",
        ),
        ("aws-sdk-go/1.44.0 (go1.20; linux; amd64) APN/1.0 HashiCorp/1.0 Terraform/1.3.0", "Terraform"),
        ("cloudformation.amazonaws.com", "CloudFormation"),
        ("Mozilla/5.0 <!channel> curl/8.0", "Other"),
        ("", "Unknown"),
    ],
)
def test_user_agent_classification(agent: str, kind: str) -> None:
    assert classify_agent(agent) == kind
    assert Record(_record(userAgent=agent)).agent_kind == kind


# --- envelopes -------------------------------------------------------------------------------------


def test_unwrap_every_envelope() -> None:
    one, two = _record(eventID="a"), _record(eventID="b")
    assert unwrap({"Records": [one, two]}) == [one, two]
    bridge = {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": one}
    assert unwrap(bridge) == [one]
    assert unwrap(one) == [one]
    assert unwrap([bridge, {"Records": [two]}, one]) == [one, two, one]
    assert unwrap({"Records": []}) == []


@pytest.mark.parametrize("junk", [None, 3, "text", {"hello": "world"}, {"detail": {}}, [1, "x"]])
def test_unwrap_junk_yields_nothing(junk: Any) -> None:
    assert unwrap(junk) == []


def test_helpers_tolerate_wrong_types() -> None:
    assert deep_get({"a": [{"b": 1}]}, "a", 0, "b") == 1
    assert deep_get({"a": [{"b": 1}]}, "a", 5, "b", default="x") == "x"
    assert deep_get({"a": "str"}, "a", "b") is None
    assert first([[["deep"]]]) == "deep" and first([]) is None
    assert Record("not a dict").event_name == ""
