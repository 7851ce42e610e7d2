"""The live exposure verdict: is the bucket reachable by the public right now, and through which path?

Reads current state with the read-only role (one helper per AWS read) and applies how the four Block
Public Access flags interact (S3 user guide, "Blocking public access to your Amazon S3 storage"):
IgnorePublicAcls makes S3 ignore public ACLs and RestrictPublicBuckets limits a public policy to the
owner account and AWS services, at bucket or account level; BlockPublicAcls and BlockPublicPolicy
only reject *new* public ACLs or policies and change nothing about what is already there.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.bpa import action_for, read_bpa
from bot.aws.clients import DENIED, error_code
from bot.core.bpa import FLAGS
from bot.core.clock import utcnow
from bot.core.exposure import ExposureVerdict
from bot.core.policy import evaluate_acl, evaluate_policy

log = logging.getLogger(__name__)

# What a read returned instead of a value: not configured, or refused (AccessDenied).
_ABSENT = object()
_REFUSED = object()




def _read(call: Any, absent: str, action: str, denied: list[str], **kwargs: Any) -> Any:
    """One AWS read: the response, `_ABSENT` for the not-configured code, `_REFUSED` when denied."""
    try:
        return call(**kwargs)
    except ClientError as error:
        code = error_code(error)
        if code == absent:
            return _ABSENT
        if code in DENIED:
            denied.append(action)
            return _REFUSED
        raise


def read_bpa_flags(client: Any, account_id: str, bucket: str | None, denied: list[str]) -> Any:
    """The bucket's (s3 client) or, bucket None, the account's BPA flags, `_ABSENT` or `_REFUSED`."""
    got = read_bpa(client, account_id, bucket)
    if got.denied is not None:
        denied.append(action_for(bucket).read_permission)
        return _REFUSED
    return _ABSENT if got.config is None else got.config


def read_policy_status(s3: Any, bucket: str, denied: list[str]) -> Any:
    """AWS's own IsPublic for the bucket policy, `_ABSENT` (no policy) or `_REFUSED`."""
    got = _read(
        s3.get_bucket_policy_status, "NoSuchBucketPolicy", "s3:GetBucketPolicyStatus", denied, Bucket=bucket
    )
    if isinstance(got, dict):
        return bool(got.get("PolicyStatus", {}).get("IsPublic"))
    return got


def read_policy(s3: Any, bucket: str, denied: list[str]) -> Any:
    """The bucket policy text, `_ABSENT` or `_REFUSED`."""
    got = _read(s3.get_bucket_policy, "NoSuchBucketPolicy", "s3:GetBucketPolicy", denied, Bucket=bucket)
    return got.get("Policy", "") if isinstance(got, dict) else got


def read_acl(s3: Any, bucket: str, denied: list[str]) -> Any:
    """The bucket ACL's grants, or `_REFUSED`."""
    got = _read(s3.get_bucket_acl, "", "s3:GetBucketAcl", denied, Bucket=bucket)
    return got.get("Grants", []) if isinstance(got, dict) else got


def read_object_acl(s3: Any, bucket: str, key: str, denied: list[str]) -> Any:
    """One object's ACL grants, `_ABSENT` when the object is gone, or `_REFUSED`."""
    got = _read(s3.get_object_acl, "NoSuchKey", "s3:GetObjectAcl", denied, Bucket=bucket, Key=key)
    return got.get("Grants", []) if isinstance(got, dict) else got


def read_ownership(s3: Any, bucket: str, denied: list[str]) -> Any:
    """The Object Ownership setting, `_ABSENT` (legacy: ACLs apply) or `_REFUSED`."""
    got = _read(
        s3.get_bucket_ownership_controls,
        "OwnershipControlsNotFoundError",
        "s3:GetBucketOwnershipControls",
        denied,
        Bucket=bucket,
    )
    if isinstance(got, dict):
        rules = got.get("OwnershipControls", {}).get("Rules") or [{}]
        return str(rules[0].get("ObjectOwnership", ""))
    return got


def _state(flags: Any) -> str:
    return "denied" if flags is _REFUSED else "absent" if flags is _ABSENT else "present"


def _flag(flags: Any, name: str) -> bool | None:
    """One flag: True/False, None when the read was denied (absent configuration = off)."""
    if flags is _REFUSED:
        return None
    if flags is _ABSENT:
        return False
    return bool(flags.get(name))


def _either(bucket_flag: bool | None, account_flag: bool | None) -> tuple[bool | None, str]:
    """Whether a neutralising flag holds at either level, and which level holds it."""
    if bucket_flag and account_flag:
        return True, "bucket- and account-level Block Public Access"
    if bucket_flag:
        return True, "bucket-level Block Public Access"
    if account_flag:
        return True, "account-level Block Public Access"
    if bucket_flag is None or account_flag is None:
        return None, ""
    return False, ""


def _policy_access(statements: list[Any]) -> str:
    actions: list[str] = []
    for st in statements:
        raw = st.get("Action", "*") if isinstance(st, dict) else "*"
        actions += [str(a).lower() for a in (raw if isinstance(raw, list) else [raw])]
    writes = any(
        a in ("*", "s3:*") or a.startswith(("s3:put", "s3:delete")) or a.endswith(":*") for a in actions
    )
    reads = any(
        a in ("*", "s3:*") or a.startswith(("s3:get", "s3:list")) or a.endswith(":*") for a in actions
    )
    return "read and write" if reads and writes else "write" if writes else "read" if reads else "access"


_PERMISSION_ORDER = ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")


def _grant_words(grants: list[dict[str, str]]) -> str:
    """`AllUsers READ and WRITE`: every public permission, grouped by the group that holds it."""
    held: dict[str, set[str]] = {}
    for grant in grants:
        held.setdefault(grant["grantee"], set()).add(grant["permission"])
    rank = {p: n for n, p in enumerate(_PERMISSION_ORDER)}
    return ", ".join(
        f"{group} {' and '.join(sorted(perms, key=lambda p: (rank.get(p, len(rank)), p)))}"
        for group, perms in sorted(held.items())
    )


# An alert about object ACLs re-reads at most this many objects' ACLs (a bulk upload can name thousands).
MAX_OBJECT_ACLS = 5


def live_verdict(
    s3_client: Any, s3control_client: Any, account_id: str, bucket: str | None, *, object_keys: Any = ()
) -> ExposureVerdict:
    """Read the current configuration and say whether the bucket (or account guard) is open now.

    `object_keys`: objects the alert is about (public object ACLs); their ACLs are judged like the
    bucket's, under the same IgnorePublicAcls and Object Ownership rules."""
    denied: list[str] = []
    account_bpa = read_bpa_flags(s3control_client, account_id, None, denied)
    if bucket is None:
        return _account_verdict(account_id, account_bpa, denied)
    try:
        bucket_bpa = read_bpa_flags(s3_client, account_id, bucket, denied)
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            return ExposureVerdict(
                False,
                f"Not public now: bucket {bucket} no longer exists.",
                account=account_id,
                bucket=bucket,
                bucket_bpa_state="n/a",
                checked_at=utcnow(),
            )
        raise
    status = read_policy_status(s3_client, bucket, denied)
    policy = read_policy(s3_client, bucket, denied)
    grants = read_acl(s3_client, bucket, denied)
    ownership = read_ownership(s3_client, bucket, denied)

    paths: list[str] = []
    sentences: list[str] = []
    holding: list[str] = []
    neutralised: list[str] = []
    unknown = False

    # Bucket policy: AWS's IsPublic when readable, else our evaluation of the text.
    policy_public: bool | None
    access = "access"
    if isinstance(policy, str):
        judged = evaluate_policy(policy, owner_account=account_id)
        access = _policy_access(judged.public_statements)
        policy_public = judged.public if status in (_REFUSED, _ABSENT) else bool(status)
    elif policy is _ABSENT or status is _ABSENT:
        policy_public = False
    else:
        policy_public = status if isinstance(status, bool) else None
    restrict, restrict_by = _either(
        _flag(bucket_bpa, "RestrictPublicBuckets"), _flag(account_bpa, "RestrictPublicBuckets")
    )
    if policy_public is None:
        unknown = True
    elif policy_public:
        if restrict:
            neutralised.append(f"bucket policy lets anyone {access}")
            holding.append(f"{restrict_by} still restricts the public policy (RestrictPublicBuckets)")
        elif restrict is None:
            unknown = True
            neutralised.append(f"bucket policy lets anyone {access}")
        else:
            paths.append(f"{access} via bucket policy")
            sentences.append(f"anyone can {access} via the bucket policy")

    # ACLs (the bucket's, and those of the objects the alert names): public grants count unless
    # ignored (IgnorePublicAcls) or ACLs are disabled by BucketOwnerEnforced.
    acls = [("ACL", "bucket ACL", grants)]
    for key in list(object_keys)[:MAX_OBJECT_ACLS]:
        object_grants = read_object_acl(s3_client, bucket, key, denied)
        if object_grants is not _ABSENT:
            acls.append((f"ACL of object {key}", f"ACL of object {key}", object_grants))
    ignore, ignore_by = _either(_flag(bucket_bpa, "IgnorePublicAcls"), _flag(account_bpa, "IgnorePublicAcls"))
    for name, where, acl_grants in acls:
        if acl_grants is _REFUSED:
            unknown = True
            continue
        public = evaluate_acl({"Grants": acl_grants}).public_grants
        if not public:
            continue
        words = _grant_words(public)
        if ownership == "BucketOwnerEnforced":
            neutralised.append(f"{name} grants {words}")
            holding.append("Object Ownership is BucketOwnerEnforced, so ACLs are disabled")
        elif ignore:
            neutralised.append(f"{name} grants {words}")
            holding.append(f"{ignore_by} still ignores public ACLs")
        elif ignore is None:
            unknown = True
            neutralised.append(f"{name} grants {words}")
        else:
            paths.append(f"{words} via {where}")
            sentences.append(f"the {where} grants {words}")
    holding = list(dict.fromkeys(holding))

    guard_off = _weak_guards(bucket_bpa, account_bpa)
    if not paths and not neutralised:
        # Nothing public is configured: say which guards still stand against a future public policy/ACL.
        holding += _standing_guards(bucket_bpa, account_bpa)
    public_now: bool | None = True if paths else (None if unknown else False)
    denied_text = " and ".join(denied)
    if public_now:
        line = "Public now: " + "; ".join(sentences) + "."
        if holding:
            line = line[:-1] + "; " + "; ".join(holding) + "."
        if denied:
            line += f" ({denied_text} denied, so other paths are unknown.)"
    elif public_now is None:
        line = f"Could not tell: {denied_text} {'was' if len(denied) == 1 else 'were'} denied."
        if neutralised:
            line = line[:-1] + f", and {' and '.join(neutralised)}."
    elif neutralised:
        line = "Not public now: " + " and ".join(neutralised) + ", but " + " and ".join(holding) + "."
    else:
        line = "Not public now: no bucket policy or ACL grants public access"
        line += f", though {guard_off}." if guard_off else "."
    return ExposureVerdict(
        public_now,
        line,
        paths,
        holding,
        denied,
        account_id,
        bucket,
        bucket_bpa if isinstance(bucket_bpa, dict) else None,
        account_bpa if isinstance(account_bpa, dict) else None,
        _state(bucket_bpa),
        _state(account_bpa),
        ownership if isinstance(ownership, str) else None,
        utcnow(),
    )


def _weak_guards(bucket_bpa: Any, account_bpa: Any) -> str:
    """`Block Public Access is off on the bucket` style phrase for the flags that are off at both levels."""
    off = [f for f in FLAGS if _flag(bucket_bpa, f) is False and _flag(account_bpa, f) is False]
    if not off:
        return ""
    what = (
        "all four Block Public Access flags are"
        if len(off) == 4
        else ", ".join(off) + (" is" if len(off) == 1 else " are")
    )
    return f"{what} off at both bucket and account level"


def _standing_guards(bucket_bpa: Any, account_bpa: Any) -> list[str]:
    out = []
    for flag, words in (
        ("IgnorePublicAcls", "ignores public ACLs"),
        ("RestrictPublicBuckets", "restricts public policies"),
    ):
        holds, by = _either(_flag(bucket_bpa, flag), _flag(account_bpa, flag))
        if holds:
            out.append(f"{by} still {words}")
    return out


def _account_verdict(account_id: str, account_bpa: Any, denied: list[str]) -> ExposureVerdict:
    """Account-level alerts: the verdict is about the account guard only (buckets are not listed)."""
    common: dict[str, Any] = {
        "account": account_id,
        "bucket": None,
        "bucket_bpa_state": "n/a",
        "account_bpa_state": _state(account_bpa),
        "checked_at": utcnow(),
        "account_bpa": account_bpa if isinstance(account_bpa, dict) else None,
    }
    if account_bpa is _REFUSED:
        return ExposureVerdict(
            None, "Could not tell: s3:GetAccountPublicAccessBlock was denied.", denied=denied, **common
        )
    off = [f for f in FLAGS if not _flag(account_bpa, f)]
    if not off:
        return ExposureVerdict(
            False,
            "Not public now: account-level Block Public Access is fully on again.",
            holding=[
                "account-level Block Public Access ignores public ACLs and restricts "
                "public policies in every bucket"
            ],
            **common,
        )
    holding = [f"account-level {f} is still on" for f in FLAGS if f not in off]
    what = "removed" if account_bpa is _ABSENT else f"{', '.join(off)} off"
    line = (
        f"Account-level Block Public Access is {what}: each bucket's own settings now decide "
        "whether it is public (buckets not checked one by one)."
    )
    return ExposureVerdict(None, line, holding=holding, **common)
