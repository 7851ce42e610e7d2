"""A fake CloudTrail LookupEvents endpoint (and just enough STS) on 127.0.0.1, for tests and bench.

moto has no LookupEvents, so this speaks CloudTrail's JSON 1.1 protocol itself
(`X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`): recorded
events filtered by StartTime/EndTime and one lookup attribute, newest first, real NextToken
pagination (MaxResults ≤ 50), optional latency, injected ThrottlingException and per-account
AccessDenied, and a timestamped request log.

Which account a request is for: the region comes from the SigV4 credential scope and the account
from the access key id. The fake also answers STS AssumeRole (point `AWS_ENDPOINT_URL_STS` at it):
the keys it hands out name the role's account, so `id:role-arn` accounts work end to end; any other
key id belongs to `default_account`.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

LOOKUP_TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_FAKE_KEY = re.compile(r"^ASIAFAKE(\d{12})")


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake saw it."""

    at: float  # FakeCloudTrail.clock() on arrival
    account: str
    region: str
    attribute: tuple[str, str] | None
    status: int
    error: str = ""
    event_ids: tuple[str, ...] = ()
    access_key: str = ""


@dataclass
class _Stored:
    event_time: float
    entry: dict[str, Any]


@dataclass
class FakeCloudTrail:
    """State behind the server: events per (account, region), faults to inject, the request log."""

    default_account: str = "111122223333"
    # What arrival (`LoggedRequest.at`) and `first_served` times are read from; a test that paces the
    # poller on a virtual clock passes the same clock here.
    clock: Callable[[], float] = time.monotonic
    latency: tuple[float, float] = (0.0, 0.0)
    enforce_rate: float | None = None  # throttle (like AWS) above this many requests/s per account-region
    events: dict[tuple[str, str], list[_Stored]] = field(default_factory=lambda: defaultdict(list))
    deny_accounts: set[str] = field(default_factory=set)
    log: list[LoggedRequest] = field(default_factory=list)
    first_served: dict[str, float] = field(default_factory=dict)  # event id → clock() time first answered
    assumed_roles: list[tuple[str, str, str]] = field(default_factory=list)  # (role ARN, external id, session)
    _throttle: dict[str | None, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: dict[str, Any], *, account: str | None = None, region: str | None = None) -> dict[str, Any]:
        """Store one CloudTrail record (a dict) as LookupEvents would serve it; returns the record."""
        account = account or str(record.get("recipientAccountId") or self.default_account)
        region = region or str(record.get("awsRegion") or "us-east-1")
        when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        identity = record.get("userIdentity") or {}
        entry = {
            "EventId": record["eventID"],
            "EventName": record["eventName"],
            "ReadOnly": "true" if record.get("readOnly") else "false",
            "AccessKeyId": identity.get("accessKeyId", ""),
            "EventTime": when,
            "EventSource": record["eventSource"],
            "Username": identity.get("userName") or str(identity.get("arn", "")).rsplit("/", 1)[-1],
            "Resources": _resources(record),
            "CloudTrailEvent": json.dumps(record),
        }
        with self._lock:
            self.events[(account, region)].append(_Stored(when, entry))
        return record

    def throttle_next(self, count: int, *, account: str | None = None) -> None:
        """The next `count` LookupEvents requests (for `account`, or any) get ThrottlingException."""
        with self._lock:
            self._throttle[account] = self._throttle.get(account, 0) + count

    def requests(self, account: str | None = None, region: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [
                r
                for r in self.log
                if (account is None or r.account == account) and (region is None or r.region == region)
            ]

    def max_rate(self, window: float = 1.0) -> int:
        """Most requests any account-region received within any `window` seconds (half-open)."""
        by_target: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in self.requests():
            by_target[(r.account, r.region)].append(r.at)
        worst = 0
        for times in by_target.values():
            times.sort()
            j = 0
            for i, start in enumerate(times):
                while j < len(times) and times[j] < start + window:
                    j += 1
                worst = max(worst, j - i)
        return worst

    # ---- request handling -------------------------------------------------------------------

    def _take_throttle(self, account: str) -> bool:
        with self._lock:
            for key in (account, None):
                if self._throttle.get(key, 0) > 0:
                    self._throttle[key] -= 1
                    return True
        return False

    def _over_rate(self, account: str, region: str, now: float) -> bool:
        if self.enforce_rate is None:
            return False
        recent = [r for r in self.requests(account, region) if r.status == 200 and r.at > now - 1.0]
        return len(recent) >= self.enforce_rate

    def lookup(
        self, body: dict[str, Any], account: str, region: str, key: str, arrived: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        now = self.clock() if arrived is None else arrived
        attrs = body.get("LookupAttributes") or []
        attribute = (attrs[0]["AttributeKey"], attrs[0]["AttributeValue"]) if attrs else None

        def done(status: int, payload: dict[str, Any], ids: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
            error = str(payload.get("__type", "")) if status != 200 else ""
            served = self.clock()
            with self._lock:
                self.log.append(LoggedRequest(now, account, region, attribute, status, error, ids, key))
                for event_id in ids:
                    self.first_served.setdefault(event_id, served)
            return status, payload

        if account in self.deny_accounts:
            return done(400, {"__type": "AccessDeniedException", "message": f"User is not authorized in {account}"})
        if self._take_throttle(account) or self._over_rate(account, region, now):
            return done(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
        if len(attrs) > 1:
            return done(400, {"__type": "InvalidLookupAttributesException", "message": "one attribute only"})
        limit = int(body.get("MaxResults") or 50)
        if not 1 <= limit <= 50:
            return done(400, {"__type": "InvalidMaxResultsException", "message": "MaxResults 1..50"})
        start = float(body.get("StartTime") or 0)
        end = float(body.get("EndTime") or time.time())
        query = json.dumps([start, end, attribute, limit])
        offset = 0
        if body.get("NextToken"):
            try:
                token_query, offset = json.loads(base64.b64decode(body["NextToken"]))
            except (ValueError, TypeError):
                token_query = None
            if token_query != query:
                return done(400, {"__type": "InvalidNextTokenException", "message": "token does not match"})
        with self._lock:
            stored = list(self.events.get((account, region), []))
        matches = [s for s in stored if start <= s.event_time <= end and _matches(s.entry, attribute)]
        matches.sort(key=lambda s: s.event_time, reverse=True)  # LookupEvents: newest first
        page = matches[offset : offset + limit]
        out: dict[str, Any] = {"Events": [s.entry for s in page]}
        if offset + limit < len(matches):
            out["NextToken"] = base64.b64encode(json.dumps([query, offset + limit]).encode()).decode()
        return done(200, out, tuple(s.entry["EventId"] for s in page))

    def assume_role(self, form: dict[str, list[str]]) -> tuple[int, str]:
        role_arn = form.get("RoleArn", [""])[0]
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else self.default_account
        session = form.get("RoleSessionName", ["s"])[0]
        with self._lock:
            self.assumed_roles.append((role_arn, form.get("ExternalId", [""])[0], session))
        key = f"ASIAFAKE{account}{uuid.uuid4().hex[:4].upper()}"
        expires = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
            f"<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>fake</SecretAccessKey>"
            f"<SessionToken>fake-token</SessionToken><Expiration>{expires}</Expiration></Credentials>"
            f"<AssumedRoleUser><Arn>arn:aws:sts::{account}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{session}</Arn>"
            "<AssumedRoleId>AROAFAKE:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></AssumeRoleResponse>"
        )
        return 200, xml


def _resources(record: dict[str, Any]) -> list[dict[str, str]]:
    """What LookupEvents lists under Resources for an S3 call: the bucket, by name."""
    params = record.get("requestParameters")
    bucket = params.get("bucketName") if isinstance(params, dict) else None
    return [{"ResourceType": "AWS::S3::Bucket", "ResourceName": str(bucket)}] if bucket else []


def _matches(entry: dict[str, Any], attribute: tuple[str, str] | None) -> bool:
    if attribute is None:
        return True
    key, value = attribute
    if key in ("ResourceName", "ResourceType"):
        return any(resource.get(key) == value for resource in entry.get("Resources") or ())
    field_name = {"EventId": "EventId", "EventName": "EventName", "ReadOnly": "ReadOnly", "Username": "Username",
                  "EventSource": "EventSource", "AccessKeyId": "AccessKeyId"}.get(key)
    if field_name is None:
        return False
    return str(entry.get(field_name, "")) == value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    fake: FakeCloudTrail

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        arrived = self.fake.clock()  # rates are counted on arrival, as AWS counts them
        low, high = self.fake.latency
        if high > 0:
            time.sleep(random.uniform(low, high))  # then the service "works" before answering
        match = _CREDENTIAL.search(self.headers.get("Authorization", ""))
        key, region = (match.group(1), match.group(2)) if match else ("", "us-east-1")
        fake_key = _FAKE_KEY.match(key)
        account = fake_key.group(1) if fake_key else self.fake.default_account
        target = self.headers.get("X-Amz-Target", "")
        if target == LOOKUP_TARGET:
            status, payload = self.fake.lookup(json.loads(raw or b"{}"), account, region, key, arrived)
            self._send(status, json.dumps(payload).encode(), "application/x-amz-json-1.1")
            return
        form = parse_qs(raw.decode())
        if form.get("Action") == ["AssumeRole"]:
            status, xml = self.fake.assume_role(form)
            self._send(status, xml.encode(), "text/xml")
            return
        self._send(400, json.dumps({"__type": "UnknownOperationException"}).encode(), "application/x-amz-json-1.1")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # silence per-request lines
        return


class FakeCloudTrailServer:
    """`with FakeCloudTrailServer() as server:` → server.url, server.fake; stops on exit."""

    def __init__(self, fake: FakeCloudTrail | None = None):
        self.fake = fake or FakeCloudTrail()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 256
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeCloudTrailServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def s3_record(
    event_name: str,
    *,
    bucket: str = "demo-bucket",
    account: str = "111122223333",
    region: str = "us-east-1",
    when: datetime | None = None,
    params: dict[str, Any] | None = None,
    user: str = "brett",
    read_only: bool | None = None,
) -> dict[str, Any]:
    """A CloudTrail S3 management record in today's shape (our own fixture, not corpus data)."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    request = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com"}
    request.update(params or {})
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": f"arn:aws:iam::{account}:user/{user}",
            "accountId": account,
            "accessKeyId": "AKIAEXAMPLE",
            "userName": user,
        },
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "[aws-cli/2.15.0 Python/3.11]",
        "requestParameters": request,
        "responseElements": None,
        "eventID": str(uuid.uuid4()),
        "readOnly": event_name.startswith(("Get", "List", "Head")) if read_only is None else read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def public_bpa_off(**kwargs: Any) -> dict[str, Any]:
    """Brett turning off all four Block Public Access flags on a bucket (with the `xmlns` real records carry)."""
    record = bpa_weakened(off=_FLAGS, **kwargs)
    record["requestParameters"]["PublicAccessBlockConfiguration"]["xmlns"] = "http://s3.amazonaws.com/doc/2006-03-01/"
    return record


def bpa_weakened(
    *,
    off: tuple[str, ...] = ("BlockPublicAcls", "BlockPublicPolicy"),
    event_id: str | None = None,
    agent: str | None = None,
    source_ip: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """A PutBucketPublicAccessBlock turning the `off` flags off (a bucket_bpa_weakened finding)."""
    params = {"PublicAccessBlockConfiguration": {f: f not in off for f in _FLAGS}}
    record = s3_record("PutBucketPublicAccessBlock", params=params, **kwargs)
    for key, value in (("eventID", event_id), ("userAgent", agent), ("sourceIPAddress", source_ip)):
        if value is not None:
            record[key] = value
    return record
