"""What the remediation tests share: moto's account, a bucket, a fake alert and an AWS stand-in that
records every request (and can refuse, delay or hold one)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bot.core.bpa import FLAGS

ACCOUNT = "123456789012"  # moto's default account: S3 Control checks AccountId against the caller
REGION = "us-east-1"
BUCKET = "team-reports"
ALL_ON = dict.fromkeys(FLAGS, True)
WEAK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}


@dataclass(frozen=True)
class Alert:
    id: int
    account: str
    region: str
    bucket: str | None
    detection: str = "bucket_bpa_weakened"
    status: str = "open"
    access_point: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("open", "acknowledged")


class MotoAws:
    """Stands in for bot.aws.AwsClients: moto-backed clients, every request and its role recorded."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self.roles: list[tuple[str, str, bool]] = []
        self.actors: list[str] = []  # who each client was asked for (the SourceIdentity AwsClients sets)
        self.calls: Counter[str] = Counter()
        self.writes: list[dict[str, Any]] = []
        self.fail: dict[str, str] = {}  # operation -> error code to raise
        self.delay: dict[str, float] = {}
        self.hold: dict[str, threading.Event] = {}  # operation -> released when the test sets it
        self.refuse: Exception | None = None  # what client() raises, as bot.aws.AwsClients may
        self._lock = threading.Lock()

    def client(self, service: str, account_id: str, region: str, *, write: bool = False, actor: str = "") -> Any:
        self.roles.append((service, account_id, write))
        self.actors.append(actor)
        if self.refuse is not None:
            raise self.refuse
        with self._lock:
            if service not in self._clients:
                client = boto3.client(service, region_name=region)
                client.meta.events.register("before-call.*.*", self._before_call)
                self._clients[service] = client
            return self._clients[service]

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
            if model.name == "PutPublicAccessBlock":
                self.writes.append(params["body"] if isinstance(params.get("body"), dict) else {})
        time.sleep(self.delay.get(model.name, 0))
        hold = self.hold.get(model.name)
        if hold is not None:
            assert hold.wait(10), f"{model.name} held for 10 s"
        code = self.fail.get(model.name)
        if code:
            error = {
                "Error": {"Code": code, "Message": code},
                "ResponseMetadata": {"RequestId": "REQ-DENIED"},
            }
            raise ClientError(error, model.name)  # type: ignore[arg-type]
