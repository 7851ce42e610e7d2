"""What a fix acts on: one configuration the remediator reads, changes, snapshots and restores.

One action per kind of target, registered in ACTIONS with the IAM permissions it needs, as Cloud
Custodian registers its actions: Block Public Access of a bucket or an account (bot.aws.bpa), and an
access point's policy (bot.aws.access_point_policy). bot.aws.remediation drives them through this one
interface, so a fix, its snapshot, its undo and its crash recovery are the same code for every target;
each action only says how to read and write its configuration and how to put its changes in words.

A configuration ("state") is JSON: it is stored as the fix's snapshot and intent (remediations table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from bot.aws.clients import DENIED, AwsError, error_code, request_id

State = dict[str, Any] | None
THROTTLED = ("Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded", "TooManyRequests")


class FixAction:
    """One configuration to read, change and restore. The client is made on first use, inside the caller's
    error handling (assuming the remediation role can fail like any other AWS call)."""

    name: ClassVar[str]
    service: ClassVar[str]
    read_permission: ClassVar[str]
    write_permission: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]
    verb: ClassVar[str]  # what a fix does, for thread lines: "re-enabled Block Public Access"

    def __init__(self, client_for: Callable[[], Any], account: str, bucket: str | None = None,
                 access_point: str | None = None):
        self._client_for, self.account, self.bucket, self.access_point = client_for, account, bucket, access_point
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_for()  # made on first use, once
        return self._client

    # -- what each action says -----------------------------------------------------------------
    @property
    def label(self) -> str:
        raise NotImplementedError

    @property
    def resource(self) -> str:
        """The resource an IAM message names."""
        raise NotImplementedError

    def read(self) -> State:
        """The configuration now. A refusal raises."""
        raise NotImplementedError

    def put(self, state: State) -> str:
        """Make the configuration exactly `state` (a put, or a delete); the AWS request id."""
        raise NotImplementedError

    def needed(self, state: State) -> tuple[str, ...]:
        """The changes a fix makes to `state`, in words (empty: nothing to fix)."""
        raise NotImplementedError

    def desired(self, state: State) -> State:
        """`state` with the fix applied."""
        raise NotImplementedError

    def describe(self, state: State) -> str:
        raise NotImplementedError

    def same(self, a: State, b: State) -> bool:
        return a == b

    def nothing_to_do(self) -> str:
        raise NotImplementedError

    def done(self, changes: tuple[str, ...]) -> str:
        """The message of an applied fix whose read-back agrees."""
        raise NotImplementedError

    def would(self, changes: tuple[str, ...]) -> str:
        """A dry run's message."""
        raise NotImplementedError

    def note(self, changes: tuple[str, ...]) -> str:
        """The short note on the alert's history: "turned on A, B"."""
        raise NotImplementedError

    def plan_summary(self, current: State, changes: tuple[str, ...]) -> str:
        """The confirm prompt's one line."""
        raise NotImplementedError


ACTIONS: dict[str, type[FixAction]] = {}


def register(name: str) -> Callable[[type[FixAction]], type[FixAction]]:
    """Add an action to ACTIONS under `name`; deploy/ IAM policies list their permissions."""

    def add(cls: type[FixAction]) -> type[FixAction]:
        cls.name = name
        ACTIONS[name] = cls
        return cls

    return add


@dataclass(frozen=True)
class FixPlan:
    """What a fix would change, for the confirm prompt and dry runs."""

    alert_id: int
    action: str
    account: str
    region: str
    bucket: str | None
    current: State
    changes: tuple[str, ...]
    error: str = ""  # set when the configuration could not be read
    after: State = None
    text: str = ""

    def summary(self) -> str:
        return self.error or self.text


def explain(exc: Exception, target: FixAction) -> tuple[str, str, str]:
    """(error code, plain-text message naming what is missing, AWS request id) for an AWS error."""
    resource = target.resource
    if isinstance(exc, AwsError):
        return type(exc).__name__, f"Cannot fix {resource}: {exc}", ""
    if not isinstance(exc, ClientError):
        return type(exc).__name__, f"Could not reach AWS for {resource}: {exc}", ""
    code, op = error_code(exc), exc.operation_name
    permission = target.read_permission if op.startswith("Get") else target.write_permission
    if code in DENIED and op == "AssumeRole":
        message = (
            f"AccessDenied: the bot may not assume the remediation role in account {target.account} (sts:AssumeRole)"
        )
    elif code in DENIED:
        message = f"AccessDenied: the remediation role needs {permission} on {resource}"
    elif code == "NoSuchBucket":
        message = f"NoSuchBucket: bucket {target.bucket} no longer exists in account {target.account}; nothing to fix."
    elif code == "NoSuchAccessPoint":
        message = (f"NoSuchAccessPoint: access point {target.access_point} no longer exists in account"
                   f" {target.account}; nothing to fix.")
    elif code in THROTTLED:
        message = f"{code}: AWS throttled {op} on {resource} and retries ran out; try again in a minute."
    else:
        message = f"{code}: {op} on {resource} failed: {exc.response.get('Error', {}).get('Message', '')}"
    return code, message.rstrip(": "), request_id(exc)
