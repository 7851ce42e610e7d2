"""AWS's "is public" rule at its edges, and `python -m bot policy` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.core.policy import ALL_USERS, AUTHENTICATED_USERS, evaluate_acl, evaluate_document, evaluate_policy

OWNER = "111122223333"
OTHER = "444455556666"
REPO = Path(__file__).resolve().parents[1]


def _allow(principal: Any = "*", condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::h1-bucket/*",
    }
    if condition is not None:
        statement["Condition"] = condition
    statement.update(extra)
    return {"Version": "2012-10-17", "Statement": [statement]}


def _public(policy: Any, owner: str | None = OWNER) -> bool:
    return evaluate_policy(policy, owner_account=owner).public


# --- principals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "public"),
    [
        ("*", True),
        ({"AWS": "*"}, True),
        ({"AWS": ["arn:aws:iam::111122223333:role/Reader", "*"]}, True),
        ({"AWS": "arn:aws:iam::*:root"}, True),
        ({"AWS": "arn:aws:iam::111122223333:role/team-?"}, True),
        ({"CanonicalUser": "*"}, True),
        ({"Federated": "cognito-identity.amazonaws.com"}, True),
        ({"Federated": "arn:aws:iam::111122223333:saml-provider/Okta"}, True),
        ({"AWS": "arn:aws:iam::111122223333:role/Reader"}, False),
        ({"AWS": "111122223333"}, False),
        ({"Service": "cloudtrail.amazonaws.com"}, False),
        ({"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}, False),
        ({"AWS": "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E2EXAMPLE"}, False),
    ],
)
def test_principals(principal: Any, public: bool) -> None:
    assert _public(_allow(principal)) is public


@pytest.mark.parametrize("principal", [123, b"bytes", ("tuple",), [{1: "int key"}], float("nan")])
def test_a_principal_of_no_known_shape_is_judged_public_not_an_error(principal: Any) -> None:
    # Found by test_properties (a bytes Principal made json.dumps raise): unknown shapes count as public.
    assert _public(_allow(principal)) is True
    assert evaluate_document({"Statement": [{"Effect": "Allow", "Principal": principal, "Resource": b"x"}]}).public


def test_not_principal_allow_is_public() -> None:
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "NotPrincipal": {"AWS": f"arn:aws:iam::{OWNER}:root"},
                "Action": "s3:*",
                "Resource": "*",
            }
        ]
    }
    verdict = evaluate_policy(policy, owner_account=OWNER)
    assert verdict.public and "NotPrincipal" in verdict.reasons[0]


def test_only_allow_statements_count() -> None:
    deny = _allow("*", Effect="Deny")
    assert not _public(deny)
    mixed = {
        "Statement": [
            _allow({"AWS": f"arn:aws:iam::{OWNER}:role/R"})["Statement"][0],
            _allow("*", Sid="Sneaky")["Statement"][0],
        ]
    }
    verdict = evaluate_policy(mixed, owner_account=OWNER)
    assert verdict.public and len(verdict.public_statements) == 1
    assert "Sneaky" in verdict.reasons[0]


def test_single_statement_object() -> None:
    policy = {"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}}
    assert evaluate_policy(policy).public


# --- conditions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "public"),
    [
        ("0.0.0.0/0", True),
        ("12.0.0.0/7", True),
        ("12.0.0.0/8", False),
        ("203.0.113.0/24", False),
        ("203.0.113.7", False),
        ("10.0.0.0/8", False),  # RFC 1918 ranges are fixed values too (corpus README, corrected)
        ("172.16.4.0/24", False),
        ("192.168.1.10/32", False),
        ("10.0.0.0/7", True),
        ("2001:db8::/31", True),
        ("2001:db8::/32", False),
        ("2001:db8:1234::/48", False),
        ("not-an-ip", True),
    ],
)
def test_source_ip_thresholds(cidr: str, public: bool) -> None:
    assert _public(_allow("*", {"IpAddress": {"aws:SourceIp": cidr}})) is public


def test_every_listed_cidr_must_be_fixed() -> None:
    assert not _public(_allow("*", {"IpAddress": {"aws:SourceIp": ["198.51.100.0/24", "203.0.113.0/24"]}}))
    assert _public(_allow("*", {"IpAddress": {"aws:SourceIp": ["198.51.100.0/24", "0.0.0.0/0"]}}))


@pytest.mark.parametrize(
    ("condition", "public"),
    [
        ({"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}, False),
        ({"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}, True),
        ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, True),
        ({"StringNotLike": {"aws:userid": "AIDAEXAMPLE"}}, True),
        ({"ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::logs"}}, True),
        ({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1a2b3c4d"}}, True),  # absent key → allowed
        ({"ForAllValues:StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}, True),  # absent key → allowed
        ({"ForAnyValue:StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}, False),
        ({"stringequals": {"AWS:SOURCEVPC": "vpc-0abc"}}, False),
        ({"ARNLike": {"aws:sourcearn": "arn:aws:s3:::h1-logs"}}, False),
        ({"IpAddress": {"AWS:SourceIP": "198.51.100.0/24"}}, False),
        ({"StringEquals": {"aws:SourceAccount": OWNER}}, False),
        ({"StringLike": {"aws:SourceArn": "arn:aws:s3:::*"}}, True),
        ({"StringLike": {"aws:SourceVpce": "vpce-?bc"}}, True),
        ({"StringEquals": {"aws:PrincipalOrgID": "${aws:PrincipalOrgID}"}}, True),  # policy variable
        ({"StringEquals": {"aws:userid": "AROAEXAMPLE:*"}}, True),
        ({"StringEquals": {"aws:userid": "AIDAEXAMPLEUSER"}}, False),
        ({"StringEquals": {"aws:Referer": "https://example.com"}}, True),
        ({"StringLike": {"aws:UserAgent": "internal-tool/*"}}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, True),
        ({"StringEquals": {"aws:SourceVpce": ["vpce-1", "vpce-*"]}}, True),
        ({"StringEquals": {"aws:SourceVpce": []}}, True),
        ({"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"aws:SourceVpce": "vpce-1"}}, False),
    ],
)
def test_conditions(condition: dict[str, Any], public: bool) -> None:
    assert _public(_allow("*", condition)) is public


def test_junk_condition_blocks_are_public_not_errors() -> None:
    for condition in (
        "StringEquals",
        ["x"],
        {"StringEquals": "aws:SourceVpce"},
        {"StringEquals": {"aws:SourceVpce": 5}},
    ):
        assert _public(_allow("*", condition))  # type: ignore[arg-type]


# --- cross-account ---------------------------------------------------------------------------------


def test_cross_account_principals_are_listed_not_public() -> None:
    policy = _allow({"AWS": [f"arn:aws:iam::{OTHER}:root", f"arn:aws:iam::{OWNER}:role/Own", "999988887777"]})
    verdict = evaluate_policy(policy, owner_account=OWNER)
    assert not verdict.public
    assert verdict.cross_account_principals == ["999988887777", f"arn:aws:iam::{OTHER}:root"]
    assert OTHER in verdict.reasons[0]
    same = evaluate_policy(_allow({"AWS": f"arn:aws:iam::{OWNER}:role/Own"}), owner_account=OWNER)
    assert same.cross_account_principals == []


def test_policy_as_text_and_get_bucket_policy_output() -> None:
    text = json.dumps(_allow("*"))
    assert evaluate_document(text).public
    assert evaluate_document({"Policy": text}).public
    bad = evaluate_policy("{not json")
    assert not bad.public and not bad.readable


def test_access_point_policy_kind() -> None:
    policy = _allow("*", Resource=f"arn:aws:s3:us-east-1:{OWNER}:accesspoint/h1-ap/object/*")
    verdict = evaluate_document(policy)
    assert verdict.public and verdict.kind == "access_point_policy"


# --- ACLs ------------------------------------------------------------------------------------------


def _grant(uri: str, permission: str) -> dict[str, Any]:
    return {"Grantee": {"Type": "Group", "URI": uri}, "Permission": permission}


OWNER_GRANT = {"Grantee": {"Type": "CanonicalUser", "ID": "abc123"}, "Permission": "FULL_CONTROL"}


@pytest.mark.parametrize(
    ("acl", "public", "severe"),
    [
        ({"x-amz-acl": "public-read"}, True, False),
        ({"x-amz-acl": ["public-read-write"]}, True, True),
        ({"x-amz-acl": "authenticated-read"}, True, False),
        ({"x-amz-acl": "private"}, False, False),
        ({"x-amz-acl": "log-delivery-write"}, False, False),
        ({"x-amz-acl": "bucket-owner-full-control"}, False, False),
        ({"Owner": {"ID": "abc123"}, "Grants": [OWNER_GRANT, _grant(ALL_USERS, "READ")]}, True, False),
        ({"Grants": [OWNER_GRANT, _grant(AUTHENTICATED_USERS, "FULL_CONTROL")]}, True, True),
        (
            {"Grants": [OWNER_GRANT, _grant("http://acs.amazonaws.com/groups/s3/LogDelivery", "WRITE")]},
            False,
            False,
        ),
        ({"AccessControlList": {"Grant": _grant(ALL_USERS, "WRITE_ACP")}}, True, True),
        ({"AccessControlList": {"Grant": [OWNER_GRANT, _grant(ALL_USERS, "READ_ACP")]}}, True, False),
        ({"AccessControlList": {"Grant": OWNER_GRANT}}, False, False),
        ({"x-amz-grant-read": f'uri="{ALL_USERS}"'}, True, False),
        ({"x-amz-grant-write": [f'id="abc123", uri="{AUTHENTICATED_USERS}"']}, True, True),
        ({"x-amz-grant-full-control": 'id="abc123"'}, False, False),
    ],
)
def test_acls(acl: dict[str, Any], public: bool, severe: bool) -> None:
    verdict = evaluate_acl(acl)
    assert (verdict.public, verdict.severe) == (public, severe)
    assert verdict.reasons
    assert evaluate_document(acl).public is public


def test_acl_grant_names_group_and_permission() -> None:
    verdict = evaluate_acl({"Grants": [_grant(AUTHENTICATED_USERS, "WRITE")]})
    assert verdict.public_grants == [{"grantee": "AuthenticatedUsers", "permission": "WRITE"}]
    assert "any AWS account" in verdict.reasons[0]


# --- the command line ------------------------------------------------------------------------------


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "policy", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_cli_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(_allow("*")))
    done = _cli(str(path))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["public"] is True and out["reasons"] and out["cross_account_principals"] == []


def test_cli_policy_stdin_with_owner_account() -> None:
    policy = json.dumps(_allow({"AWS": [f"arn:aws:iam::{OTHER}:root", f"arn:aws:iam::{OWNER}:root"]}))
    done = _cli("-", "--account", OWNER, stdin=policy.encode())
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["public"] is False
    assert out["cross_account_principals"] == [f"arn:aws:iam::{OTHER}:root"]


def test_cli_acl_from_get_bucket_acl_output() -> None:
    acl = {"Owner": {"ID": "abc123"}, "Grants": [OWNER_GRANT, _grant(ALL_USERS, "READ")]}
    out = json.loads(_cli("-", stdin=json.dumps(acl).encode()).stdout)
    assert out["public"] is True and out["kind"] == "acl"


def test_cli_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    done = _cli(str(tmp_path / "nope.json"))
    assert done.returncode != 0
    assert b"nope.json" in done.stderr and b"Traceback" not in done.stderr
    assert done.stdout == b""


def test_cli_not_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.txt"
    path.write_text("Statement: allow everyone")
    done = _cli(str(path))
    assert done.returncode != 0
    assert b"not JSON" in done.stderr and b"Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("{}", "an empty JSON object"),
        ('{"PolicyStatus": {"IsPublic": true}}', "get-bucket-policy-status output"),
        ("[1, 2]", "a JSON list of 2 item(s)"),
        ("42", "a JSON number"),
        ('{"Records": []}', "CloudTrail records"),
        ('{"BlockPublicAcls": true, "IgnorePublicAcls": true}', "a Block Public Access configuration"),
        ('{"Policy": "{oops"}', "get-bucket-policy output whose Policy is not JSON"),
        ('{"Owner": "me"}', "a JSON object with keys Owner, but no Statement"),
    ],
)
def test_cli_input_that_is_not_a_policy_or_acl_is_an_error_saying_what_it_is(document: str, says: str) -> None:
    done = _cli("-", stdin=document.encode())
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode().startswith(f"bucketwatch policy: stdin is {says}"), done.stderr


@pytest.mark.parametrize(("text", "public"), [("public-read", True), ('"authenticated-read"', True),
                                               ("private\n", False), ("bucket-owner-full-control", False)])
def test_cli_reads_a_canned_acl_name(text: str, public: bool) -> None:
    done = _cli("-", stdin=text.encode())
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["public"] is public and out["kind"] == "acl" and out["reasons"]


def test_cli_fail_if_public_gates_a_ci_job(tmp_path: Path) -> None:
    public, private = tmp_path / "public.json", tmp_path / "private.json"
    public.write_text(json.dumps(_allow("*")))
    private.write_text(json.dumps(_allow({"AWS": f"arn:aws:iam::{OWNER}:role/Reader"})))
    assert _cli(str(public), "--fail-if-public").returncode == 1
    assert _cli(str(public)).returncode == 0
    assert _cli(str(private), "--fail-if-public", "--account", OWNER).returncode == 0


def test_cli_owner_account_is_never_another_account() -> None:
    policy = _allow({"AWS": [f"arn:aws:iam::{OWNER}:root", f"arn:aws:iam::{OWNER}:role/CI", OWNER]})
    out = json.loads(_cli("-", "--account", OWNER, stdin=json.dumps(policy).encode()).stdout)
    assert out["cross_account_principals"] == [] and out["owner_account"] == OWNER
    assert out["reasons"][0].startswith("Not public: every Allow statement")
    assert OWNER not in " ".join(out["reasons"])
    bad = _cli("-", "--account", "1111", stdin=json.dumps(policy).encode())
    assert bad.returncode == 2 and b"12-digit account id" in bad.stderr
