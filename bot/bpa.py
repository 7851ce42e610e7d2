"""S3 Block Public Access: the actions that read, put and delete it, and pure helpers about it.

One action per kind of target (bucket, account), registered in ACTIONS with the IAM permissions it
needs, as Cloud Custodian registers `set-public-block`. bot.remediation drives them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws import AwsError

FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_DENIED = ("AccessDenied", "AccessDeniedException", "AllAccessDisabled", "UnauthorizedOperation")
_THROTTLED = ("Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded", "TooManyRequests")
# AwsError: the account cannot be reached at all (unknown account, no remediation role configured).
AWS_ERRORS = (ClientError, BotoCoreError, AwsError)

Config = dict[str, bool]


class BpaAction:
    """One Block Public Access configuration to read, put and delete (a Custodian-style action)."""

    name: ClassVar[str]
    service: ClassVar[str]
    read_permission: ClassVar[str]
    write_permission: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]

    def __init__(self, client: Any, account: str, bucket: str | None):
        self.client, self.account, self.bucket = client, account, bucket

    def params(self) -> dict[str, str]:
        raise NotImplementedError

    def read(self) -> Config | None:
        """The current configuration; None when there is none (every flag off)."""
        try:
            response = self.client.get_public_access_block(**self.params())
        except ClientError as exc:
            if _code(exc) == "NoSuchPublicAccessBlockConfiguration":
                return None
            raise
        got = response.get("PublicAccessBlockConfiguration") or {}
        return {flag: bool(got.get(flag, False)) for flag in FLAGS}

    def write(self, config: Config) -> str:
        response = self.client.put_public_access_block(**self.params(), PublicAccessBlockConfiguration=config)
        return _request_id(response)

    def delete(self) -> str:
        return _request_id(self.client.delete_public_access_block(**self.params()))


ACTIONS: dict[str, type[BpaAction]] = {}


def register(name: str) -> Callable[[type[BpaAction]], type[BpaAction]]:
    """Add an action to ACTIONS under `name`; deploy/ IAM policies list their permissions."""

    def add(cls: type[BpaAction]) -> type[BpaAction]:
        cls.name = name
        ACTIONS[name] = cls
        return cls

    return add


@register("set-bucket-public-block")
class BucketPublicBlock(BpaAction):
    service = "s3"
    read_permission = "s3:GetBucketPublicAccessBlock"
    # DeletePublicAccessBlock (used by undo) is authorised by the same Put permission.
    write_permission = "s3:PutBucketPublicAccessBlock"
    permissions = (read_permission, write_permission)

    def params(self) -> dict[str, str]:
        return {"Bucket": self.bucket or ""}


@register("set-account-public-block")
class AccountPublicBlock(BpaAction):
    service = "s3control"
    read_permission = "s3:GetAccountPublicAccessBlock"
    write_permission = "s3:PutAccountPublicAccessBlock"
    permissions = (read_permission, write_permission)

    def params(self) -> dict[str, str]:
        return {"AccountId": self.account}


def action_for(bucket: str | None) -> type[BpaAction]:
    return ACTIONS["set-account-public-block" if bucket is None else "set-bucket-public-block"]


def changes_needed(current: Config | None) -> tuple[str, ...]:
    """Flags a fix turns on: the false ones, or all four when the configuration is absent."""
    return FLAGS if current is None else tuple(f for f in FLAGS if not current.get(f, False))


def target_label(account: str, bucket: str | None) -> str:
    return f"bucket {bucket} (account {account})" if bucket else f"account {account} (account-level)"


def describe_config(config: Config | None) -> str:
    """Say "all four flags on", "on: A, B; off: C, D" or "no configuration (all off)"."""
    if config is None:
        return "no configuration (all off)"
    off = [f for f in FLAGS if not config.get(f)]
    if not off:
        return "all four flags on"
    return f"on: {', '.join(f for f in FLAGS if config.get(f)) or 'none'}; off: {', '.join(off)}"


@dataclass(frozen=True)
class FixPlan:
    """What a fix would change, for the confirm dialog and dry runs."""

    alert_id: int
    action: str
    account: str
    region: str
    bucket: str | None
    current: Config | None
    changes: tuple[str, ...]
    error: str = ""  # set when the configuration could not be read

    @property
    def after(self) -> Config:
        return {f: f in self.changes or bool((self.current or {}).get(f)) for f in FLAGS}

    def summary(self) -> str:
        label = target_label(self.account, self.bucket)
        if self.error:
            return self.error
        if not self.changes:
            return f"Block Public Access is already fully on for {label}; nothing to change."
        absent = " (it has no configuration now)" if self.current is None else ""
        return f"Turn on {', '.join(self.changes)} for {label}{absent}."


def explain(exc: Exception, cls: type[BpaAction], account: str, bucket: str | None) -> tuple[str, str, str]:
    """(error code, plain-text message naming what is missing, AWS request id) for an AWS error."""
    resource = f"arn:aws:s3:::{bucket}" if bucket else f"account {account}"
    if isinstance(exc, AwsError):
        return type(exc).__name__, f"Cannot fix {resource}: {exc}", ""
    if not isinstance(exc, ClientError):
        return type(exc).__name__, f"Could not reach AWS for {resource}: {exc}", ""
    code, op, request_id = _code(exc), exc.operation_name, _request_id(exc.response)
    permission = cls.read_permission if op.startswith("Get") else cls.write_permission
    if code in _DENIED and op == "AssumeRole":
        message = (
            f"AccessDenied: the bot may not assume the remediation role in account {account} (sts:AssumeRole)"
        )
    elif code in _DENIED:
        message = f"AccessDenied: the remediation role needs {permission} on {resource}"
    elif code == "NoSuchBucket":
        message = f"NoSuchBucket: bucket {bucket} no longer exists in account {account}; nothing to fix."
    elif code in _THROTTLED:
        message = f"{code}: AWS throttled {op} on {resource} and retries ran out; try again in a minute."
    else:
        message = f"{code}: {op} on {resource} failed: {exc.response.get('Error', {}).get('Message', '')}"
    return code, message.rstrip(": "), request_id


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _request_id(response: Any) -> str:
    meta = response.get("ResponseMetadata") or {}
    return str(meta.get("RequestId") or meta.get("HTTPHeaders", {}).get("x-amz-request-id") or "")
