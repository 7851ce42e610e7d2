"""S3 Block Public Access: the one read of it, the actions that put and delete it, pure helpers about it.

One action per kind of target (bucket, account), registered in ACTIONS with the IAM permissions it
needs, as Cloud Custodian registers `set-public-block`. bot.remediation drives them; bot.exposure and
bot.doctor read through `read_bpa` too. Detections import FLAGS from here, so this module loads no AWS
SDK at import: bot.aws (boto3) is imported inside the functions that call AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from bot.aws.clients import DENIED, AwsError, error_code, request_id
from bot.core.bpa import FLAGS, Config, target_label

ABSENT_CODE = "NoSuchPublicAccessBlockConfiguration"
_THROTTLED = ("Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded", "TooManyRequests")



@dataclass(frozen=True)
class BpaRead:
    """One GetPublicAccessBlock: the flags, no configuration (every flag off), or a refusal."""

    config: Config | None = None  # None: absent or denied
    denied: ClientError | None = None  # the refusal, kept for its message and request id

    @property
    def state(self) -> str:
        """present | absent | denied."""
        return "denied" if self.denied is not None else "absent" if self.config is None else "present"


def _params(account: str, bucket: str | None) -> dict[str, str]:
    return {"AccountId": account} if bucket is None else {"Bucket": bucket}


def read_bpa(client: Any, account: str, bucket: str | None) -> BpaRead:
    """Block Public Access of `bucket` (an s3 client) or, bucket None, of the account (s3control).

    Absent and denied are answers; any other error (NoSuchBucket, throttling past the retries) raises.
    """

    try:
        response = client.get_public_access_block(**_params(account, bucket))
    except ClientError as exc:
        code = error_code(exc)
        if code == ABSENT_CODE:
            return BpaRead()
        if code in DENIED:
            return BpaRead(denied=exc)
        raise
    got = response.get("PublicAccessBlockConfiguration") or {}
    return BpaRead({flag: bool(got.get(flag, False)) for flag in FLAGS})


class BpaAction:
    """One Block Public Access configuration to read, put and delete (a Custodian-style action)."""

    name: ClassVar[str]
    service: ClassVar[str]
    read_permission: ClassVar[str]
    write_permission: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]

    def __init__(self, client: Any, account: str, bucket: str | None):
        self.client, self.account, self.bucket = client, account, bucket

    def read(self) -> Config | None:
        """The current configuration; None when there is none (every flag off). A refusal raises."""
        got = read_bpa(self.client, self.account, self.bucket)
        if got.denied is not None:
            raise got.denied
        return got.config

    def write(self, config: Config) -> str:
        """Put the configuration; the AWS request id."""

        params = _params(self.account, self.bucket)
        return request_id(self.client.put_public_access_block(**params, PublicAccessBlockConfiguration=config))

    def delete(self) -> str:
        """Delete the configuration (every flag off); the AWS request id."""

        return request_id(self.client.delete_public_access_block(**_params(self.account, self.bucket)))


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


@register("set-account-public-block")
class AccountPublicBlock(BpaAction):
    service = "s3control"
    read_permission = "s3:GetAccountPublicAccessBlock"
    write_permission = "s3:PutAccountPublicAccessBlock"
    permissions = (read_permission, write_permission)


def action_for(bucket: str | None) -> type[BpaAction]:
    return ACTIONS["set-account-public-block" if bucket is None else "set-bucket-public-block"]








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
    code, op = error_code(exc), exc.operation_name
    permission = cls.read_permission if op.startswith("Get") else cls.write_permission
    if code in DENIED and op == "AssumeRole":
        message = (
            f"AccessDenied: the bot may not assume the remediation role in account {account} (sts:AssumeRole)"
        )
    elif code in DENIED:
        message = f"AccessDenied: the remediation role needs {permission} on {resource}"
    elif code == "NoSuchBucket":
        message = f"NoSuchBucket: bucket {bucket} no longer exists in account {account}; nothing to fix."
    elif code in _THROTTLED:
        message = f"{code}: AWS throttled {op} on {resource} and retries ran out; try again in a minute."
    else:
        message = f"{code}: {op} on {resource} failed: {exc.response.get('Error', {}).get('Message', '')}"
    return code, message.rstrip(": "), request_id(exc)

