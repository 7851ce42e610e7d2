"""S3 Block Public Access: the one read of it, and the fix actions that put and delete it.

One action per kind of target (bucket, account), registered in bot.aws.fix_action.ACTIONS with the IAM
permissions it needs, as Cloud Custodian registers `set-public-block`. bot.aws.remediation drives them;
bot.aws.exposure and doctor read through `read_bpa` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.clients import DENIED, error_code, request_id
from bot.aws.fix_action import FixAction, State, register
from bot.core.bpa import FLAGS, Config, changes_needed, describe_config, target_label

ABSENT_CODE = "NoSuchPublicAccessBlockConfiguration"


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


class BpaAction(FixAction):
    """Block Public Access of a bucket or an account: a fix turns on the flags that are off."""

    verb = "re-enabled Block Public Access"

    @property
    def label(self) -> str:
        return target_label(self.account, self.bucket)

    @property
    def resource(self) -> str:
        return f"arn:aws:s3:::{self.bucket}" if self.bucket else f"account {self.account}"

    def read(self) -> Config | None:
        """The current configuration; None when there is none (every flag off). A refusal raises."""
        got = read_bpa(self.client, self.account, self.bucket)
        if got.denied is not None:
            raise got.denied
        return got.config

    def put(self, state: State) -> str:
        """Put the configuration, or delete it (every flag off) for None; the AWS request id."""
        params = _params(self.account, self.bucket)
        if state is None:
            return request_id(self.client.delete_public_access_block(**params))
        config = {flag: bool(state.get(flag)) for flag in FLAGS}
        return request_id(self.client.put_public_access_block(**params, PublicAccessBlockConfiguration=config))

    def needed(self, state: State) -> tuple[str, ...]:
        return changes_needed(state)

    def desired(self, state: State) -> State:
        if state is None:
            return {f: True for f in FLAGS}
        return {**state, **dict.fromkeys(changes_needed(state), True)}

    def describe(self, state: State) -> str:
        return describe_config(state)

    def nothing_to_do(self) -> str:
        return f"Block Public Access is already fully on for {self.label}; nothing to change."

    def done(self, changes: tuple[str, ...]) -> str:
        turned_on = ", ".join(changes)
        return f"Re-enabled Block Public Access for {self.label}: turned on {turned_on}. Read back: all four on."

    def would(self, changes: tuple[str, ...]) -> str:
        if not changes:
            return f"Dry run: Block Public Access is already fully on for {self.label}; nothing would change."
        return f"Dry run: would turn on {', '.join(changes)} for {self.label}. Nothing was changed."

    def note(self, changes: tuple[str, ...]) -> str:
        return "turned on " + ", ".join(changes) if changes else "Block Public Access re-enabled"

    def plan_summary(self, current: State, changes: tuple[str, ...]) -> str:
        if not changes:
            return self.nothing_to_do()
        absent = " (it has no configuration now)" if current is None else ""
        return f"Turn on {', '.join(changes)} for {self.label}{absent}."


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
    """The Block Public Access action of a bucket, or of the account for None."""
    return BucketPublicBlock if bucket is not None else AccountPublicBlock
