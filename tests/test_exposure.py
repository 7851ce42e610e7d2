"""The live exposure verdict against moto's S3 and S3 Control: paths, the layer that holds, denied reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.aws.exposure import live_verdict
from bot.core.bpa import FLAGS
from bot.core.exposure import ExposureVerdict

ACCOUNT = "123456789012"  # moto's default account
BUCKET = "bw-exposure-test"
ALL_ON = dict.fromkeys(FLAGS, True)


def public_policy(action: str = "s3:GetObject") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": action, "Resource": f"arn:aws:s3:::{BUCKET}/*"}]})


@pytest.fixture
def aws() -> Iterator[SimpleNamespace]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        control = boto3.client("s3control", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield SimpleNamespace(s3=s3, control=control)


def verdict(aws: SimpleNamespace, bucket: str | None = BUCKET) -> ExposureVerdict:
    return live_verdict(aws.s3, aws.control, ACCOUNT, bucket)


def deny(client: Any, operation: str) -> None:
    """Make one operation answer AccessDenied, as it would for a role without the permission."""
    def refuse(**_: Any) -> tuple[Any, dict[str, Any]]:
        error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                 "ResponseMetadata": {"HTTPStatusCode": 403}}
        return SimpleNamespace(status_code=403, headers={}), error

    client.meta.events.register(f"before-call.*.{operation}", refuse)


def test_public_policy_with_no_guard_is_public_now(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_policy(Bucket=BUCKET, Policy=public_policy())
    v = verdict(aws)
    assert v.public_now is True
    assert v.line == "Public now: anyone can read via the bucket policy."
    assert v.paths == ["read via bucket policy"]
    assert (v.bucket_bpa_state, v.account_bpa_state) == ("absent", "absent")
    assert v.flags_off() == list(FLAGS)


def test_public_acl_held_by_account_ignore_public_acls(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    aws.control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration={"IgnorePublicAcls": True})
    v = verdict(aws)
    assert v.public_now is False
    assert v.line == ("Not public now: ACL grants AllUsers READ, but account-level Block Public Access "
                      "still ignores public ACLs.")
    assert v.account_bpa == {**dict.fromkeys(FLAGS, False), "IgnorePublicAcls": True}


def test_every_public_permission_is_named_write_included(aws: SimpleNamespace) -> None:
    """public-read-write as S3 stores it: READ and WRITE grants to AllUsers; the verdict names both."""
    owner = aws.s3.get_bucket_acl(Bucket=BUCKET)["Owner"]
    everyone = {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}
    aws.s3.put_bucket_acl(Bucket=BUCKET, AccessControlPolicy={"Owner": owner, "Grants": [
        {"Grantee": everyone, "Permission": "WRITE"}, {"Grantee": everyone, "Permission": "READ"},
        {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
    ]})
    v = verdict(aws)
    assert v.public_now is True and v.paths == ["AllUsers READ and WRITE via bucket ACL"]
    aws.control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration={"IgnorePublicAcls": True})
    assert verdict(aws).line.startswith("Not public now: ACL grants AllUsers READ and WRITE, but account-level")


def test_public_acl_without_ignore_is_public_even_with_block_public_acls(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    # BlockPublicAcls only refuses new public ACLs; the one already there still works.
    aws.s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    v = verdict(aws)
    assert v.public_now is True and v.paths == ["AllUsers READ via bucket ACL"]
    assert v.flags_off() == ["IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"]


def test_block_public_policy_alone_does_not_stop_an_existing_public_policy(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_policy(Bucket=BUCKET, Policy=public_policy("s3:*"))
    aws.s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={"BlockPublicPolicy": True})
    v = verdict(aws)
    assert v.public_now is True
    assert v.line.startswith("Public now: anyone can read and write via the bucket policy")


def test_restrict_public_buckets_holds_a_public_policy(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_policy(Bucket=BUCKET, Policy=public_policy())
    aws.s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    v = verdict(aws)
    assert v.public_now is False
    assert v.line == ("Not public now: bucket policy lets anyone read, but bucket-level Block Public Access "
                      "still restricts the public policy (RestrictPublicBuckets).")


def test_policy_public_and_acl_held_names_both(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_policy(Bucket=BUCKET, Policy=public_policy())
    aws.s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    aws.s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={"IgnorePublicAcls": True})
    v = verdict(aws)
    assert v.public_now is True
    assert v.line == ("Public now: anyone can read via the bucket policy; bucket-level Block Public Access "
                      "still ignores public ACLs.")


def test_nothing_public_but_guards_off(aws: SimpleNamespace) -> None:
    v = verdict(aws)
    assert v.public_now is False
    assert v.line == ("Not public now: no bucket policy or ACL grants public access, though all four "
                      "Block Public Access flags are off at both bucket and account level.")


def test_nothing_public_and_account_guard_on_says_what_holds(aws: SimpleNamespace) -> None:
    aws.control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_ON)
    v = verdict(aws)
    assert v.public_now is False
    assert v.holding == ["account-level Block Public Access still ignores public ACLs",
                         "account-level Block Public Access still restricts public policies"]


def test_denied_policy_reads_say_so_instead_of_guessing(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_policy(Bucket=BUCKET, Policy=public_policy())
    deny(aws.s3, "GetBucketPolicy")
    deny(aws.s3, "GetBucketPolicyStatus")
    v = verdict(aws)
    assert v.public_now is None
    assert v.denied == ["s3:GetBucketPolicyStatus", "s3:GetBucketPolicy"]
    assert v.line == "Could not tell: s3:GetBucketPolicyStatus and s3:GetBucketPolicy were denied."


def test_denied_status_falls_back_to_judging_the_policy_text(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_policy(Bucket=BUCKET, Policy=public_policy())
    deny(aws.s3, "GetBucketPolicyStatus")
    v = verdict(aws)
    assert v.public_now is True and v.denied == ["s3:GetBucketPolicyStatus"]
    assert "s3:GetBucketPolicyStatus denied" in v.line


def test_denied_bpa_read_with_public_acl_is_unknown(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    deny(aws.s3, "GetPublicAccessBlock")
    v = verdict(aws)
    assert v.public_now is None and v.bucket_bpa_state == "denied"
    assert v.line.startswith("Could not tell: s3:GetBucketPublicAccessBlock was denied")
    assert v.flags_off() == list(FLAGS)  # a fix would set all four


def test_other_errors_are_raised(aws: SimpleNamespace) -> None:
    def throttle(**_: Any) -> tuple[Any, dict[str, Any]]:
        return SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": "InvalidRequest", "Message": "x"},
                                                              "ResponseMetadata": {"HTTPStatusCode": 400}}

    aws.s3.meta.events.register("before-call.*.GetBucketAcl", throttle)
    with pytest.raises(Exception, match="InvalidRequest"):
        verdict(aws)


def test_deleted_bucket_is_not_public(aws: SimpleNamespace) -> None:
    v = live_verdict(aws.s3, aws.control, ACCOUNT, "bw-gone-already")
    assert v.public_now is False and "no longer exists" in v.line


def test_account_level_verdict_is_about_the_account_guard(aws: SimpleNamespace) -> None:
    v = verdict(aws, None)
    assert v.public_now is None and v.bucket is None
    assert v.line.startswith("Account-level Block Public Access is removed")
    aws.control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration={
        **ALL_ON, "RestrictPublicBuckets": False})
    v = verdict(aws, None)
    assert "RestrictPublicBuckets off" in v.line and v.flags_off() == ["RestrictPublicBuckets"]
    aws.control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_ON)
    assert verdict(aws, None).public_now is False


def test_verdict_survives_storage(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_policy(Bucket=BUCKET, Policy=public_policy())
    v = verdict(aws)
    assert ExposureVerdict.from_json(v.to_json()) == v
    assert ExposureVerdict.from_json("{not json") is None


def test_an_object_acl_alert_reads_that_objects_acl(aws: SimpleNamespace) -> None:
    aws.s3.put_bucket_ownership_controls(
        Bucket=BUCKET, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    aws.s3.put_object(Bucket=BUCKET, Key="hr/salaries.xlsx", Body=b"x", ACL="public-read")
    v = live_verdict(aws.s3, aws.control, ACCOUNT, BUCKET, object_keys=("hr/salaries.xlsx", "gone.txt"))
    assert v.public_now is True
    assert "the ACL of object hr/salaries.xlsx grants" in v.line and "AllUsers" in v.line
    assert verdict(aws).public_now is False  # without the key, the bucket itself looks closed
    aws.control.put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration={**dict.fromkeys(FLAGS, False), "IgnorePublicAcls": True}
    )
    held = live_verdict(aws.s3, aws.control, ACCOUNT, BUCKET, object_keys=("hr/salaries.xlsx",))
    assert held.public_now is False
    assert held.line.startswith("Not public now: ACL of object hr/salaries.xlsx grants")
    assert "account-level Block Public Access still ignores public ACLs" in held.line


def test_an_object_acl_that_cannot_be_read_is_said_not_guessed(aws: SimpleNamespace) -> None:
    aws.s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    deny(aws.s3, "GetObjectAcl")
    v = live_verdict(aws.s3, aws.control, ACCOUNT, BUCKET, object_keys=("k",))
    assert v.public_now is None and "s3:GetObjectAcl" in v.line
