"""Exact verdicts: grant headers wherever CloudTrail puts them, private SourceIp ranges, access-point
delegation, and reasons a responder can act on."""

from __future__ import annotations

import ipaddress
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.acl import ALL_USERS, AUTHENTICATED_USERS, GRANT_HEADERS
from bot.core.policy import evaluate_document, evaluate_policy
from bot.core.record import Record
from detections import evaluate

OWNER = "111122223333"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
CANONICAL = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
# Which detection sees a public ACL on each event that can carry one.
ACL_EVENTS = {
    "PutBucketAcl": "bucket_acl_public",
    "CreateBucket": "bucket_created_public",
    "PutObjectAcl": "object_acl_public",
    "PutObject": "object_acl_public",
    "CopyObject": "object_acl_public",
    "CreateMultipartUpload": "object_acl_public",
}


def _record(event_name: str, params: dict[str, Any]) -> Record:
    base = {"bucketName": "h1-bucket", "Host": "h1-bucket.s3.amazonaws.com", "key": "a/b.txt"}
    return Record({
        "eventVersion": "1.09",
        "eventSource": "s3.amazonaws.com",
        "eventName": event_name,
        "eventTime": "2025-03-04T10:00:00Z",
        "eventID": "verdict-0000",
        "awsRegion": "us-east-1",
        "recipientAccountId": OWNER,
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{OWNER}:user/mallory", "userName": "mallory"},
        "requestParameters": {**base, **params},
    })


def _place(where: str, header: str, value: Any) -> dict[str, Any]:
    if where == "top":
        return {header: value}
    return {where: {header: value}}


def _spell(header: str, underscore: bool, upper: bool) -> str:
    name = header.replace("-", "_") if underscore else header
    return name.title() if upper else name


# --- grant headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_name", "header", "where", "underscore"),
    list(itertools.product(ACL_EVENTS, GRANT_HEADERS, ("top", "accessControlList", "AccessControlList"), [0, 1])),
)
def test_every_grant_header_everywhere_on_every_event(
    event_name: str, header: str, where: str, underscore: bool
) -> None:
    params = _place(where, _spell(header, underscore, upper=False), f'id="{CANONICAL}", uri="{ALL_USERS}"')
    findings = [f for f in evaluate(_record(event_name, params)) if f.public]
    assert [f.detection for f in findings] == [ACL_EVENTS[event_name]]
    permission = GRANT_HEADERS[header]
    assert any(c.after == permission and "AllUsers" in c.what for c in findings[0].changes)
    # Write and ACP grants are worse than read: the severity says so.
    assert (findings[0].severity == "critical") is (permission != "READ" and permission != "READ_ACP")


@pytest.mark.parametrize("event_name", ACL_EVENTS)
@pytest.mark.parametrize(
    "value",
    [
        f'id="{CANONICAL}"',
        'emailAddress="AllUsers@example.com"',
        f'uri="{LOG_DELIVERY}"',
        f'uri="{ALL_USERS}-lookalike"',
        "",
        [f'id="{CANONICAL}"'],
    ],
)
def test_look_alike_grant_headers_do_not_alert(event_name: str, value: Any) -> None:
    for where in ("top", "accessControlList"):
        assert not evaluate(_record(event_name, _place(where, "x_amz_grant_full_control", value)))


grantee = st.sampled_from([f'id="{CANONICAL}"', 'emailAddress="ops@example.com"', f'uri="{LOG_DELIVERY}"',
                           f'uri="{ALL_USERS}"', f"uri={AUTHENTICATED_USERS}"])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(GRANT_HEADERS)),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["top", "accessControlList", "AccessControlList"]),
    st.lists(grantee, min_size=1, max_size=4),
    st.sampled_from(sorted(ACL_EVENTS)),
)
def test_grant_header_is_public_exactly_when_it_names_a_public_group(
    header: str, underscore: bool, upper: bool, where: str, grantees: list[str], event_name: str
) -> None:
    value = ", ".join(grantees)
    findings = evaluate(_record(event_name, _place(where, _spell(header, underscore, upper), value)))
    public = any(ALL_USERS in g or AUTHENTICATED_USERS in g for g in grantees)
    assert bool(findings) is public
    if public:
        groups = {"AllUsers" for g in grantees if ALL_USERS in g} | {
            "AuthenticatedUsers" for g in grantees if AUTHENTICATED_USERS in g
        }
        grants = [c.what for c in findings[0].changes if c.what.startswith("ACL grant to ")]
        assert {what.split(" ")[3] for what in grants} == groups


def test_private_acl_in_grant_headers_restores_and_says_what_it_set() -> None:
    """A PutObjectAcl whose only ACL is grant headers inside accessControlList still says what it set."""
    from bot.alerts.restore import restoration

    private = _record("PutObjectAcl", {"accessControlList": {"x-amz-grant-full-control": f'id="{CANONICAL}"'}})
    restored = restoration(private)
    assert restored is not None and "made private" in restored.reason


# --- aws:SourceIp ------------------------------------------------------------------------------------


def _allow(condition: dict[str, Any], resource: str = "arn:aws:s3:::h1-bucket/*") -> dict[str, Any]:
    return {"Statement": [{"Sid": "Scoped", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                           "Resource": resource, "Condition": condition}]}


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_ipv4_source_ip_is_fixed_up_to_a_slash_8(address: ipaddress.IPv4Address, prefix: int) -> None:
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    verdict = evaluate_policy(_allow({"IpAddress": {"aws:SourceIp": str(network)}}))
    assert verdict.public is (prefix < 8)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(v=6), st.integers(0, 128))
def test_ipv6_source_ip_is_fixed_up_to_a_slash_32(address: ipaddress.IPv6Address, prefix: int) -> None:
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    assert evaluate_policy(_allow({"IpAddress": {"aws:SourceIp": str(network)}})).public is (prefix < 32)


def test_private_source_ip_is_fixed_and_said_so() -> None:
    verdict = evaluate_policy(_allow({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.1.0/24"]}}))
    assert not verdict.public
    text = " ".join(verdict.reasons)
    assert "Statement Scoped" in text and "10.0.0.0/8" in text and "private network range" in text


# --- s3:DataAccessPointArn ---------------------------------------------------------------------------

DELEGATE = {"StringLike": {"s3:DataAccessPointArn": f"arn:aws:s3:us-east-1:{OWNER}:accesspoint/*"}}
AP_RESOURCE = f"arn:aws:s3:us-east-1:{OWNER}:accesspoint/h1-ap/object/*"


def test_access_point_delegation_in_a_bucket_policy_is_not_public() -> None:
    verdict = evaluate_document(_allow(DELEGATE))
    assert verdict.kind == "bucket_policy" and not verdict.public
    assert f"delegation to the access points of account {OWNER}" in " ".join(verdict.reasons)


def test_the_same_condition_in_an_access_point_policy_is_public() -> None:
    verdict = evaluate_document(_allow(DELEGATE, resource=AP_RESOURCE))
    assert verdict.kind == "access_point_policy" and verdict.public
    assert "only a bucket policy may delegate" in verdict.reasons[0]
    assert verdict.owner_account == OWNER  # read from the access point's own ARN


@pytest.mark.parametrize(
    "arn",
    ["arn:aws:s3:us-east-1:*:accesspoint/*", "arn:aws:s3:us-east-1:1111222233*:accesspoint/x", "*"],
)
def test_delegation_needs_a_fixed_account(arn: str) -> None:
    assert evaluate_document(_allow({"StringLike": {"s3:DataAccessPointArn": arn}})).public


# --- reasons in words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        (None, ["anyone", "s3:GetObject", "no condition that limits who"]),
        ({"StringEquals": {"aws:Referer": "https://example.com"}}, ["aws:Referer", "callers may set it"]),
        ({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}, ["only excludes values"]),
        ({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, ["wider than a /8"]),
        ({"StringLike": {"aws:SourceVpc": "vpc-*"}}, ["wildcard"]),
        ({"ForAllValues:StringEquals": {"aws:SourceVpce": "vpce-1"}}, ["no aws:SourceVpce"]),
        ({"StringEquals": {"aws:userid": "AROAEXAMPLE:*"}}, ["every session of a role"]),
    ],
)
def test_public_reasons_say_who_what_and_why_the_condition_does_not_help(
    condition: dict[str, Any] | None, words: list[str]
) -> None:
    policy = _allow(condition or {})
    if condition is None:
        del policy["Statement"][0]["Condition"]
    verdict = evaluate_policy(policy)
    assert verdict.public and len(verdict.reasons) == 1
    reason = verdict.reasons[0]
    assert reason.startswith("Statement Scoped lets anyone")
    for word in words:
        assert word in reason
    assert "None" not in reason and "{'" not in reason


def test_federated_principal_named_in_words() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"Federated": "accounts.google.com"},
                             "Action": "s3:PutObject", "Resource": "*"}]}
    assert "any user signed in through accounts.google.com" in evaluate_policy(policy).reasons[0]


def test_acl_reasons_say_what_strangers_can_do() -> None:
    verdict = evaluate_document({"accessControlList": {"x-amz-grant-write": f'uri="{ALL_USERS}"'}})
    assert verdict.public and verdict.severe
    assert verdict.reasons == [
        "The ACL grants WRITE to AllUsers: anyone on the internet can write (upload, overwrite and delete objects)."
    ]


def test_cross_account_without_the_owner_says_so() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"},
                             "Action": "s3:GetObject", "Resource": "*"}]}
    unknown = evaluate_policy(policy)
    assert unknown.cross_account_principals and "owner's account was not given" in unknown.reasons[0]
    known = evaluate_policy(policy, owner_account=OWNER)
    assert known.cross_account_principals == [] and known.reasons[0].startswith("Not public: every Allow")


def test_deny_only_policy_says_nothing_is_allowed() -> None:
    deny = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}
    assert evaluate_policy(deny).reasons == [
        "Not public: no statement allows anything (Deny statements only take access away)."
    ]


def test_verdict_json_names_the_owner_account() -> None:
    verdict = evaluate_policy(_allow({"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}}), owner_account=OWNER)
    assert json.loads(json.dumps(verdict.as_dict()))["owner_account"] == OWNER
