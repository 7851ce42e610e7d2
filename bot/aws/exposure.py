"""The live exposure read: the bucket's (and the account's) current configuration, one helper per AWS read.

Reads go through the account's read-only role. A read that is not configured is `Missing.ABSENT`, a
refused one `Missing.REFUSED` (and its permission is listed): the verdict then says what it could not
tell. bot.core.exposure judges what was read and puts it into words; `live_verdict` does both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.bpa import action_for, read_bpa
from bot.aws.clients import DENIED, error_code
from bot.core.access_point_exposure import AccessPointState, judge_access_point
from bot.core.bpa import Config
from bot.core.clock import utcnow
from bot.core.exposure import ExposureState, ExposureVerdict, Grants, Missing, judge
from bot.core.policy import ACCESS_POINT_POLICY, evaluate_policy

# An alert about object ACLs re-reads at most this many objects' ACLs (a bulk upload can name thousands).
MAX_OBJECT_ACLS = 5


def _read(call: Callable[..., Any], absent: str, action: str, denied: list[str], **kwargs: Any) -> Any:
    """One AWS read: the response, `Missing.ABSENT` for the not-configured code, `Missing.REFUSED` when denied."""
    try:
        return call(**kwargs)
    except ClientError as error:
        code = error_code(error)
        if code == absent:
            return Missing.ABSENT
        if code in DENIED:
            denied.append(action)
            return Missing.REFUSED
        raise


def read_bpa_flags(client: Any, account_id: str, bucket: str | None, denied: list[str]) -> Config | Missing:
    """The bucket's (s3 client) or, bucket None, the account's (s3control) Block Public Access flags."""
    got = read_bpa(client, account_id, bucket)
    if got.denied is not None:
        denied.append(action_for(bucket).read_permission)
        return Missing.REFUSED
    return Missing.ABSENT if got.config is None else got.config


def read_policy_status(s3: Any, bucket: str, denied: list[str]) -> bool | Missing:
    """AWS's own IsPublic for the bucket policy."""
    got = _read(s3.get_bucket_policy_status, "NoSuchBucketPolicy", "s3:GetBucketPolicyStatus", denied, Bucket=bucket)
    return bool(got.get("PolicyStatus", {}).get("IsPublic")) if isinstance(got, dict) else got


def read_policy(s3: Any, bucket: str, denied: list[str]) -> str | Missing:
    """The bucket policy text."""
    got = _read(s3.get_bucket_policy, "NoSuchBucketPolicy", "s3:GetBucketPolicy", denied, Bucket=bucket)
    return str(got.get("Policy", "")) if isinstance(got, dict) else got


def read_acl(s3: Any, bucket: str, denied: list[str]) -> Grants | Missing:
    """The bucket ACL's grants."""
    got = _read(s3.get_bucket_acl, "", "s3:GetBucketAcl", denied, Bucket=bucket)
    return list(got.get("Grants", [])) if isinstance(got, dict) else got


def read_object_acl(s3: Any, bucket: str, key: str, denied: list[str]) -> Grants | Missing:
    """One object's ACL grants (`Missing.ABSENT` when the object is gone)."""
    got = _read(s3.get_object_acl, "NoSuchKey", "s3:GetObjectAcl", denied, Bucket=bucket, Key=key)
    return list(got.get("Grants", [])) if isinstance(got, dict) else got


def read_ownership(s3: Any, bucket: str, denied: list[str]) -> str | Missing:
    """The Object Ownership setting (`Missing.ABSENT`: legacy, ACLs apply)."""
    got = _read(s3.get_bucket_ownership_controls, "OwnershipControlsNotFoundError", "s3:GetBucketOwnershipControls",
                denied, Bucket=bucket)
    if isinstance(got, dict):
        rules = got.get("OwnershipControls", {}).get("Rules") or [{}]
        return str(rules[0].get("ObjectOwnership", ""))
    return Missing(got)


def read_exposure(s3_client: Any, s3control_client: Any, account_id: str, bucket: str | None, *,
                  object_keys: Iterable[str] = ()) -> ExposureState:
    """Everything the verdict needs, read now; `object_keys`: objects the alert is about (public ACLs)."""
    denied: list[str] = []
    account_bpa = read_bpa_flags(s3control_client, account_id, None, denied)
    if bucket is None:
        return ExposureState(account_id, None, utcnow(), account_bpa, denied=tuple(denied))
    try:
        bucket_bpa = read_bpa_flags(s3_client, account_id, bucket, denied)
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            return ExposureState(account_id, bucket, utcnow(), account_bpa, bucket_gone=True)
        raise
    status = read_policy_status(s3_client, bucket, denied)
    policy = read_policy(s3_client, bucket, denied)
    grants = read_acl(s3_client, bucket, denied)
    ownership = read_ownership(s3_client, bucket, denied)
    keys = list(object_keys)[:MAX_OBJECT_ACLS]
    objects = tuple((key, read_object_acl(s3_client, bucket, key, denied)) for key in keys)
    return ExposureState(account_id, bucket, utcnow(), account_bpa, bucket_bpa, status, policy, grants, objects,
                         ownership, tuple(denied))


def live_verdict(s3_client: Any, s3control_client: Any, account_id: str, bucket: str | None, *,
                 object_keys: Iterable[str] = ()) -> ExposureVerdict:
    """Read the current configuration and say whether the bucket (or account guard) is open now."""
    return judge(read_exposure(s3_client, s3control_client, account_id, bucket, object_keys=object_keys))


def read_access_point(s3_client: Any, s3control_client: Any, account_id: str, name: str) -> AccessPointState:
    """An access point's policy status, its own Block Public Access, its bucket's and the account's."""
    denied: list[str] = []
    point = _read(s3control_client.get_access_point, "NoSuchAccessPoint", "s3:GetAccessPoint", denied,
                  AccountId=account_id, Name=name)
    account_bpa = read_bpa_flags(s3control_client, account_id, None, denied)
    if point is Missing.ABSENT:
        return AccessPointState(account_id, name, utcnow(), Missing.ABSENT, Missing.ABSENT, None, Missing.ABSENT,
                                account_bpa, tuple(denied), gone=True)
    # The policy itself, judged by AWS's rule as bot.core.policy writes it (the same rule the detection used),
    # rather than GetAccessPointPolicyStatus: one reading of "public" for the card and the fix.
    got = _read(s3control_client.get_access_point_policy, "NoSuchAccessPointPolicy", "s3:GetAccessPointPolicy",
                denied, AccountId=account_id, Name=name)
    policy_public: bool | Missing = got if isinstance(got, Missing) else evaluate_policy(
        got.get("Policy"), owner_account=account_id, kind=ACCESS_POINT_POLICY).public
    point_bpa: Config | Missing = Missing.REFUSED
    bucket: str | None = None
    bucket_bpa: Config | Missing = Missing.ABSENT
    if isinstance(point, dict):
        got = point.get("PublicAccessBlockConfiguration")
        point_bpa = {flag: bool(got.get(flag)) for flag in got} if isinstance(got, dict) else Missing.ABSENT
        bucket = str(point.get("Bucket") or "") or None
    if bucket:
        try:
            bucket_bpa = read_bpa_flags(s3_client, account_id, bucket, denied)
        except ClientError as error:
            if error_code(error) != "NoSuchBucket":
                raise
    return AccessPointState(account_id, name, utcnow(), policy_public, point_bpa, bucket, bucket_bpa, account_bpa,
                            tuple(denied))


def access_point_verdict(s3_client: Any, s3control_client: Any, account_id: str, name: str) -> ExposureVerdict:
    """Read an access point's configuration now and say whether it is public through it."""
    return judge_access_point(read_access_point(s3_client, s3control_client, account_id, name))
