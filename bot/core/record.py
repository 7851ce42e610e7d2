"""A normalised, read-only view of one CloudTrail record, whatever shape it arrived in.

Real records differ by era and exporter (see shared/corpus/README.md): list- or string-valued
request parameters, `host` or `Host`, `requestParameters: null`, missing `eventTime`, Panther-style
timestamps, EventBridge envelopes. Every field read here goes through `deep_get`/`first`, so a
hostile or truncated record yields empty values, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar, cast

import orjson

S3_SOURCE = "s3.amazonaws.com"
T = TypeVar("T")
_UNSET = object()


def deep_get(obj: Any, *keys: str | int, default: Any = None) -> Any:
    """Walk nested dicts/lists by key or index; any miss or wrong type gives `default`."""
    for key in keys:
        if isinstance(key, int):
            if isinstance(obj, list) and -len(obj) <= key < len(obj):
                obj = obj[key]
            else:
                return default
        elif isinstance(obj, dict) and key in obj:
            obj = obj[key]
        else:
            return default
    return default if obj is None else obj


def first(value: Any) -> Any:
    """Old S3 records wrap scalars in one-element lists (`"x-amz-acl": ["private"]`): unwrap."""
    while isinstance(value, list):
        if not value:
            return None
        value = value[0]
    return value


def text(value: Any) -> str:
    """A scalar (possibly list-wrapped) as a stripped string; anything else as ''."""
    value = first(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def get_ci(mapping: Any, name: str) -> Any:
    """Case-insensitive key lookup (`host` / `Host`, `x-amz-acl` / `X-Amz-Acl`)."""
    if not isinstance(mapping, dict):
        return None
    if name in mapping:
        return mapping[name]
    low = name.lower()
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == low:
            return value
    return None


_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")


def parse_time(value: Any) -> datetime | None:
    """CloudTrail's ISO `…Z`, Panther's `YYYY-MM-DD hh:mm:ss[.fff]`, offsets; None if unreadable."""
    raw = text(value)
    if not raw:
        return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# Ordered: the first pattern that matches names the tool. Terraform and CloudFormation go first because
# their user agents also carry "aws-sdk-go" / "Boto3" fragments.
_AGENT_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Terraform", re.compile(r"terraform|APN/1\.0 HashiCorp", re.I)),
    ("CloudFormation", re.compile(r"cloudformation", re.I)),
    ("Console", re.compile(r"^(signin|console|s3console|AWS Console|\[?S3Console)|console\.amazonaws\.com", re.I)),
    ("CLI", re.compile(r"aws-cli/|aws-powershell|AWSPowerShell", re.I)),
    ("AWS service", re.compile(r"^[a-z0-9-]+\.amazonaws\.com$", re.I)),
    ("SDK", re.compile(r"aws-sdk|boto3|botocore|Boto/|aws-internal|AWS-SDK", re.I)),
)


def classify_agent(user_agent: str) -> str:
    """Console, CLI, SDK, Terraform, CloudFormation, AWS service, or Other."""
    for kind, pattern in _AGENT_KINDS:
        if pattern.search(user_agent):
            return kind
    return "Other" if user_agent else "Unknown"


@dataclass(frozen=True)
class Actor:
    """Who made the call. `person` is the human-meaningful name (session name, SSO user, user)."""

    kind: str  # IAMUser, AssumedRole, Root, AWSService, FederatedUser, SSO, Unknown
    arn: str
    person: str
    role: str = ""  # the role behind an assumed-role session
    issuer: str = ""  # the session issuer ARN
    mfa: bool | None = None
    account: str = ""

    @property
    def display(self) -> str:
        """One short line: `alice (via role AdminRole)`, `root`, `cloudtrail.amazonaws.com`."""
        if self.kind in ("AssumedRole", "SSO") and self.role:
            return f"{self.person or '?'} (via role {self.role})"
        return self.person or self.arn or self.kind


def parse_actor(identity: Any) -> Actor:
    """Read `userIdentity` into an Actor, tolerating every identity type and missing fields."""
    kind = text(deep_get(identity, "type")) or "Unknown"
    arn = text(deep_get(identity, "arn"))
    account = text(deep_get(identity, "accountId"))
    mfa_raw = text(deep_get(identity, "sessionContext", "attributes", "mfaAuthenticated")).lower()
    mfa = True if mfa_raw == "true" else False if mfa_raw == "false" else None
    issuer_arn = text(deep_get(identity, "sessionContext", "sessionIssuer", "arn"))
    issuer_name = text(deep_get(identity, "sessionContext", "sessionIssuer", "userName"))
    if kind == "AssumedRole":
        # arn:aws:sts::123:assumed-role/RoleName/session-name
        resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
        parts = resource.split("/")
        role = issuer_name or (parts[1] if len(parts) > 1 else "")
        session = parts[2] if len(parts) > 2 else text(deep_get(identity, "principalId")).partition(":")[2]
        if role.startswith("AWSReservedSSO_"):
            # IAM Identity Center: the session name is the person's SSO user name.
            return Actor("SSO", arn, session, role, issuer_arn, mfa, account)
        return Actor("AssumedRole", arn, session, role, issuer_arn, mfa, account)
    if kind == "Root":
        return Actor("Root", arn, "root", mfa=mfa, account=account)
    if kind == "AWSService":
        return Actor("AWSService", arn, text(deep_get(identity, "invokedBy")) or "AWS service", account=account)
    if kind == "IdentityCenterUser":
        return Actor("SSO", arn, text(deep_get(identity, "onBehalfOf", "userId")) or arn, mfa=mfa, account=account)
    if kind == "FederatedUser":
        person = arn.rsplit("/", 1)[-1] if "/" in arn else text(deep_get(identity, "principalId"))
        return Actor("FederatedUser", arn, person, issuer_name, issuer_arn, mfa, account)
    name = text(deep_get(identity, "userName")) or (arn.rsplit("/", 1)[-1] if "/" in arn else "")
    return Actor(kind, arn, name, mfa=mfa, account=account)


# `<account>.s3-control.…` and access-point hosts look like virtual-hosted buckets but name none.
_BUCKET_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.\-_]{1,254})\.s3[.\-](?!control\.|accesspoint\.|object-lambda\.)", re.I
)
_CONTROL_HOST = re.compile(r"^(?P<account>\d{12})\.s3-control", re.I)


class Record:
    """Read-only view of one CloudTrail record; every property is safe on any input."""

    __slots__ = ("__dict__", "raw")

    def __init__(self, raw: Any):
        self.raw: dict[str, Any] = raw if isinstance(raw, dict) else {}

    def get(self, *keys: str | int, default: Any = None) -> Any:
        return deep_get(self.raw, *keys, default=default)

    def memo(self, key: str, compute: Callable[[Record], T]) -> T:
        """A value derived from this record, computed once: the findings, for one, are asked for by the
        poller, the who-changed index and the alert engine, and travel with the record between them."""
        found = self.__dict__.get(key, _UNSET)
        if found is _UNSET:
            found = self.__dict__[key] = compute(self)
        return cast("T", found)

    @cached_property
    def event_id(self) -> str:
        return text(self.raw.get("eventID"))

    @cached_property
    def event_name(self) -> str:
        return text(self.raw.get("eventName"))

    @cached_property
    def event_source(self) -> str:
        return text(self.raw.get("eventSource"))

    @property
    def is_s3(self) -> bool:
        return self.event_source == S3_SOURCE

    @cached_property
    def event_time(self) -> datetime | None:
        # Logstash exports drop eventTime and keep @timestamp.
        return parse_time(self.raw.get("eventTime")) or parse_time(self.raw.get("@timestamp"))

    @cached_property
    def error_code(self) -> str:
        return text(self.raw.get("errorCode"))

    @property
    def succeeded(self) -> bool:
        """A record with an errorCode changed nothing."""
        return not self.error_code

    @cached_property
    def read_only(self) -> bool:
        value = self.raw.get("readOnly")
        if isinstance(value, bool):
            return value
        return self.event_name.startswith(("Get", "List", "Head", "Describe"))

    @cached_property
    def params(self) -> dict[str, Any]:
        value = self.raw.get("requestParameters")
        return value if isinstance(value, dict) else {}

    def param(self, name: str) -> Any:
        """A request parameter by case-insensitive name, unwrapped from old-era lists."""
        return first(get_ci(self.params, name))

    @cached_property
    def host(self) -> str:
        return text(get_ci(self.params, "host")) or text(deep_get(self.raw, "tlsDetails", "clientProvidedHostHeader"))

    @cached_property
    def account(self) -> str:
        return (
            text(self.raw.get("recipientAccountId"))
            or text(self.param("accountId"))
            or text(deep_get(self.raw, "userIdentity", "accountId"))
        )

    @cached_property
    def region(self) -> str:
        return text(self.raw.get("awsRegion"))

    @cached_property
    def bucket(self) -> str | None:
        """The bucket the call was about; None for account-level calls."""
        if self.event_name.endswith("AccountPublicAccessBlock"):
            return None
        name = text(self.param("bucketName"))
        if name:
            return name
        match = _BUCKET_HOST.match(self.host)
        if match:
            return match.group("bucket")
        resources = self.raw.get("resources")
        for resource in resources if isinstance(resources, list) else ():
            arn = text(deep_get(resource, "ARN")) or text(deep_get(resource, "arn"))
            if arn.startswith("arn:aws:s3:::"):
                return arn[len("arn:aws:s3:::") :].split("/", 1)[0] or None
        return None

    @cached_property
    def object_key(self) -> str:
        return text(self.param("key"))

    @cached_property
    def actor(self) -> Actor:
        return parse_actor(self.raw.get("userIdentity"))

    @cached_property
    def source_ip(self) -> str:
        return text(self.raw.get("sourceIPAddress"))

    @cached_property
    def user_agent(self) -> str:
        return text(self.raw.get("userAgent"))

    @cached_property
    def agent_kind(self) -> str:
        return classify_agent(self.user_agent)

    @property
    def resource_label(self) -> str:
        return self.bucket or f"account {self.account or '?'}"


def empty_envelope(document: Any) -> bool:
    """A document that holds no records by its own account (`{"Records": []}`, `{"Events": []}`, `[]`):
    nothing to read, and nothing malformed either (CloudTrail delivers such files)."""
    if isinstance(document, list):
        return not document
    return isinstance(document, dict) and any(document.get(key) == [] for key in ("Records", "Events"))


def unwrap(document: Any) -> list[Any]:
    """The CloudTrail records inside a parsed JSON document, whatever the envelope.

    Log file `{"Records": [...]}`, EventBridge `{"detail-type": ..., "detail": {...}}`,
    `aws cloudtrail lookup-events` output (`{"Events": [{"CloudTrailEvent": "<JSON text>"}, ...]}`),
    a bare record, or a list of any of those. Anything else yields no records (the caller counts it);
    a lookup-events entry whose CloudTrailEvent is not a JSON object comes back as None (counted too).
    """
    if isinstance(document, list):
        out: list[Any] = []
        for item in document:
            out.extend(unwrap(item))
        return out
    if not isinstance(document, dict):
        return []
    if isinstance(document.get("Records"), list):
        return list(document["Records"])
    if "detail" in document and isinstance(document.get("detail"), dict) and "detail-type" in document:
        return [document["detail"]]
    if "eventName" in document or "eventSource" in document:
        return [document]
    if isinstance(document.get("Events"), list):
        return [_lookup_event(event) for event in document["Events"]]
    return []


def _lookup_event(event: Any) -> Any:
    """The record inside one `lookup-events` entry: CloudTrailEvent is JSON text (or, re-serialised, an object)."""
    inner = event.get("CloudTrailEvent") if isinstance(event, dict) else None
    if isinstance(inner, str | bytes):
        try:
            inner = orjson.loads(inner)
        except orjson.JSONDecodeError:
            return None
    return inner if isinstance(inner, dict) else None
