"""Fix and undo against moto's S3 and S3 Control: only weakened flags, exact undo, once under races."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from bot.aws.clients import NoWriteAccess
from bot.aws.fix_action import ACTIONS
from bot.aws.remediation import Remediator
from bot.core.bpa import FLAGS
from bot.core.clock import iso
from bot.store.database import Store

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


@pytest.fixture
def aws() -> Iterator[MotoAws]:
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield MotoAws()


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def s3control() -> Any:
    return boto3.client("s3control", region_name=REGION)


def set_bpa(bucket: str | None, config: dict[str, bool]) -> None:
    if bucket is None:
        s3control().put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=config)
    else:
        s3().put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)


def get_bpa(bucket: str | None) -> dict[str, bool] | None:
    try:
        if bucket is None:
            got = s3control().get_public_access_block(AccountId=ACCOUNT)
        else:
            got = s3().get_public_access_block(Bucket=bucket)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
        return None
    return got["PublicAccessBlockConfiguration"]


def bucket_alert(**kw: Any) -> Alert:
    return replace(Alert(7, ACCOUNT, REGION, BUCKET), **kw)


def test_every_action_declares_the_permissions_it_uses() -> None:
    assert set(ACTIONS) == {"set-bucket-public-block", "set-account-public-block", "remove-access-point-public-policy"}
    for name, action in ACTIONS.items():
        assert action.name == name
        assert action.permissions, name
        assert {action.read_permission, action.write_permission} <= set(action.permissions)
        kind = "AccessPointPolicy" if "access-point" in name else "PublicAccessBlock"
        assert all(p.startswith("s3:") and kind in p for p in action.permissions)


def test_fix_turns_on_only_the_weakened_flags_and_verifies(store: Store, aws: MotoAws) -> None:
    set_bpa(BUCKET, WEAK)
    remediator = Remediator(store, aws, dry_run=False)

    plan = remediator.plan(bucket_alert())
    assert plan.changes == ("BlockPublicPolicy", "RestrictPublicBuckets")
    assert "BlockPublicPolicy, RestrictPublicBuckets" in plan.summary()

    out = remediator.fix(bucket_alert(), "U0ALICE")
    assert out.status == "applied", out.message
    assert out.changed_aws
    assert out.before == WEAK and out.after == ALL_ON
    assert out.changes == ("BlockPublicPolicy", "RestrictPublicBuckets")
    assert out.request_id and out.remediation_id and out.by == "U0ALICE"
    assert "turned on BlockPublicPolicy, RestrictPublicBuckets" in out.message
    assert get_bpa(BUCKET) == ALL_ON
    # Read back after the write: Get, Put, Get.
    assert aws.calls["GetPublicAccessBlock"] == 3 and aws.calls["PutPublicAccessBlock"] == 1
    # Every client the remediator asked for was the remediation (write) role's.
    assert aws.roles and all(write for _, _, write in aws.roles)
    row = remediator.get(out.remediation_id)
    assert row is not None and row.status == "applied" and row.snapshot == WEAK and row.applied == ALL_ON
    assert row.by == "U0ALICE" and row.request_id == out.request_id


@pytest.mark.parametrize("bucket", [BUCKET, None], ids=["bucket", "account"])
def test_undo_restores_the_exact_snapshot(store: Store, aws: MotoAws, bucket: str | None) -> None:
    before = {
        "BlockPublicAcls": False,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True,
    }
    set_bpa(bucket, before)
    remediator = Remediator(store, aws, dry_run=False)
    alert = bucket_alert(bucket=bucket)

    fixed = remediator.fix(alert, "U0ALICE")
    assert fixed.status == "applied", fixed.message
    assert get_bpa(bucket) == ALL_ON
    assert {service for service, _, _ in aws.roles} == {"s3" if bucket else "s3control"}
    # The fix's AWS session names who pressed it; the undo's, who pressed Undo.
    assert set(aws.actors) == {"U0ALICE"}
    aws.actors.clear()

    undone = remediator.undo(fixed.remediation_id or 0, "U0BOB")
    assert undone.status == "undone", undone.message
    assert set(aws.actors) == {"U0BOB"}
    assert get_bpa(bucket) == before
    assert undone.before == ALL_ON and undone.after == before and undone.by == "U0BOB"
    row = remediator.get(fixed.remediation_id or 0)
    assert row is not None and row.status == "undone" and row.undone_by == "U0BOB" and row.undone_at


def test_deleted_configuration_gets_all_four_and_undo_deletes_it_once(store: Store, aws: MotoAws) -> None:
    remediator = Remediator(store, aws, dry_run=False)
    assert remediator.plan(bucket_alert()).changes == FLAGS

    fixed = remediator.fix(bucket_alert(), "U0ALICE")
    assert fixed.status == "applied" and fixed.before is None and fixed.changes == FLAGS
    assert get_bpa(BUCKET) == ALL_ON

    first = remediator.undo_alert(7, "U0BOB")
    assert first.status == "undone" and first.after is None
    assert get_bpa(BUCKET) is None
    assert aws.calls["DeletePublicAccessBlock"] == 1

    second = remediator.undo(fixed.remediation_id or 0, "U0CAROL")
    assert second.status == "already_undone" and second.by == "U0BOB"
    assert remediator.undo_alert(7, "U0CAROL").status == "already_undone"
    assert aws.calls["DeletePublicAccessBlock"] == 1 and aws.calls["PutPublicAccessBlock"] == 1


def test_second_press_changes_aws_once_and_says_who_fixed_it(store: Store, aws: MotoAws) -> None:
    set_bpa(BUCKET, WEAK)
    remediator = Remediator(store, aws, dry_run=False)
    first = remediator.fix(bucket_alert(), "U0ALICE")
    second = remediator.fix(bucket_alert(), "U0BOB")
    assert first.status == "applied"
    assert second.status == "already_fixed" and not second.changed_aws
    assert second.by == "U0ALICE" and second.remediation_id == first.remediation_id
    assert second.after == ALL_ON and "Already fixed" in second.message
    assert aws.calls["PutPublicAccessBlock"] == 1


def _press_together(presses: list[tuple[Remediator, str]]) -> list[Any]:
    barrier = threading.Barrier(len(presses))
    results: list[Any] = [None] * len(presses)

    def press(i: int, remediator: Remediator, user: str) -> None:
        barrier.wait()
        results[i] = remediator.fix(bucket_alert(), user)

    threads = [threading.Thread(target=press, args=(i, r, u)) for i, (r, u) in enumerate(presses)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_responders_at_once_change_aws_once_and_both_hear(store: Store, aws: MotoAws) -> None:
    set_bpa(BUCKET, WEAK)
    aws.delay["PutPublicAccessBlock"] = 0.3  # widen the window in which the second press arrives
    remediator = Remediator(store, aws, dry_run=False)
    results = _press_together([(remediator, "U0ALICE"), (remediator, "U0BOB")])
    assert sorted(r.status for r in results) == ["already_fixed", "applied"]
    applied = next(r for r in results if r.status == "applied")
    told = next(r for r in results if r.status == "already_fixed")
    assert told.by == applied.by and told.remediation_id == applied.remediation_id
    assert aws.calls["PutPublicAccessBlock"] == 1


def test_two_processes_at_once_change_aws_once(tmp_path: Any, aws: MotoAws) -> None:
    """Separate Store and Remediator objects (no shared lock): only the database guard is left."""
    set_bpa(BUCKET, WEAK)
    # The press that claimed the fix holds its AWS call until the other press has found the claim
    # and is waiting on it: the two presses surely overlap, and nobody waits longer than that.
    waiting = threading.Event()
    aws.hold["PutPublicAccessBlock"] = waiting

    def sleep(seconds: float) -> None:
        waiting.set()
        time.sleep(0.01)

    path = tmp_path / "shared.db"
    one = Remediator(Store(path), aws, dry_run=False, sleep=sleep)
    two = Remediator(Store(path), aws, dry_run=False, sleep=sleep)
    results = _press_together([(one, "U0ALICE"), (two, "U0BOB")])
    assert waiting.is_set()
    assert sorted(r.status for r in results) == ["already_fixed", "applied"]
    assert aws.calls["PutPublicAccessBlock"] == 1
    assert get_bpa(BUCKET) == ALL_ON


def test_a_claim_left_by_a_dead_process_does_not_block_forever(store: Store, aws: MotoAws) -> None:
    set_bpa(BUCKET, WEAK)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    store.db.table("remediations").insert(
        {
            "alert_id": 7,
            "account": ACCOUNT,
            "bucket": BUCKET,
            "status": "applying",
            "by": "U0GONE",
            "at": iso(long_ago),
        }
    )
    out = Remediator(store, aws, dry_run=False, claim_wait_seconds=2).fix(bucket_alert(), "U0ALICE")
    assert out.status == "applied", out.message
    assert get_bpa(BUCKET) == ALL_ON


def test_dry_run_shows_the_change_and_changes_nothing(store: Store, aws: MotoAws) -> None:
    set_bpa(BUCKET, WEAK)
    remediator = Remediator(store, aws, dry_run=True)
    out = remediator.fix(bucket_alert(), "U0ALICE")
    assert out.status == "dry_run" and not out.changed_aws
    assert "would turn on BlockPublicPolicy, RestrictPublicBuckets" in out.message
    assert out.before == WEAK and out.after == ALL_ON
    assert get_bpa(BUCKET) == WEAK
    assert aws.calls["PutPublicAccessBlock"] == 0
    assert remediator.get(out.remediation_id or 0).status == "dry_run"  # type: ignore[union-attr]
    # A dry-run row is not a fix: there is nothing to undo, and a real fix later still works.
    assert remediator.undo(out.remediation_id or 0, "U0ALICE").status == "nothing_to_undo"
    assert Remediator(store, aws, dry_run=False).fix(bucket_alert(), "U0ALICE").status == "applied"


def test_dry_run_undo_changes_nothing(store: Store, aws: MotoAws) -> None:
    set_bpa(BUCKET, WEAK)
    fixed = Remediator(store, aws, dry_run=False).fix(bucket_alert(), "U0ALICE")
    out = Remediator(store, aws, dry_run=True).undo(fixed.remediation_id or 0, "U0BOB")
    assert out.status == "dry_run" and "would restore" in out.message
    assert get_bpa(BUCKET) == ALL_ON


@pytest.mark.parametrize(
    ("bucket", "operation", "expected"),
    [
        (BUCKET, "PutPublicAccessBlock", f"s3:PutBucketPublicAccessBlock on arn:aws:s3:::{BUCKET}"),
        (BUCKET, "GetPublicAccessBlock", f"s3:GetBucketPublicAccessBlock on arn:aws:s3:::{BUCKET}"),
        (None, "PutPublicAccessBlock", f"s3:PutAccountPublicAccessBlock on account {ACCOUNT}"),
    ],
)
def test_access_denied_names_the_missing_permission(
    store: Store, aws: MotoAws, bucket: str | None, operation: str, expected: str
) -> None:
    set_bpa(bucket, WEAK)
    aws.fail[operation] = "AccessDenied"
    remediator = Remediator(store, aws, dry_run=False)
    out = remediator.fix(bucket_alert(bucket=bucket), "U0ALICE")
    assert out.status == "failed" and out.error_code == "AccessDenied"
    assert out.message == f"AccessDenied: the remediation role needs {expected}"
    assert out.request_id == "REQ-DENIED"
    assert get_bpa(bucket) == WEAK
    # A failed attempt does not block the next one once the role is fixed.
    del aws.fail[operation]
    assert remediator.fix(bucket_alert(bucket=bucket), "U0ALICE").status == "applied"


def test_missing_bucket_and_throttling_become_messages(store: Store, aws: MotoAws) -> None:
    remediator = Remediator(store, aws, dry_run=False)
    gone = remediator.fix(bucket_alert(id=8, bucket="no-such-bucket-here"), "U0ALICE")
    assert gone.status == "failed" and gone.message.startswith("NoSuchBucket: bucket no-such-bucket-here")
    assert "no-such-bucket-here" in remediator.plan(bucket_alert(bucket="no-such-bucket-here")).summary()

    aws.fail["PutPublicAccessBlock"] = "SlowDown"
    slow = remediator.fix(bucket_alert(), "U0ALICE")
    assert slow.status == "failed" and "throttled PutPublicAccessBlock" in slow.message
    assert "try again" in slow.message


def test_undo_denied_keeps_the_fix_undoable(store: Store, aws: MotoAws) -> None:
    set_bpa(BUCKET, WEAK)
    remediator = Remediator(store, aws, dry_run=False)
    fixed = remediator.fix(bucket_alert(), "U0ALICE")
    aws.fail["PutPublicAccessBlock"] = "AccessDenied"
    denied = remediator.undo(fixed.remediation_id or 0, "U0BOB")
    assert denied.status == "failed" and "s3:PutBucketPublicAccessBlock" in denied.message
    assert get_bpa(BUCKET) == ALL_ON
    del aws.fail["PutPublicAccessBlock"]
    assert remediator.undo(fixed.remediation_id or 0, "U0BOB").status == "undone"
    assert get_bpa(BUCKET) == WEAK


@pytest.mark.parametrize("status", ["fixed", "resolved", "accepted"])
def test_fix_on_a_closed_alert_says_so_without_touching_aws(store: Store, aws: MotoAws, status: str) -> None:
    out = Remediator(store, aws, dry_run=False).fix(bucket_alert(status=status), "U0ALICE")
    assert out.status == "already_closed" and status in out.message
    assert sum(aws.calls.values()) == 0


def test_nothing_to_change_when_already_fully_blocked(store: Store, aws: MotoAws) -> None:
    set_bpa(BUCKET, ALL_ON)
    remediator = Remediator(store, aws, dry_run=False)
    out = remediator.fix(bucket_alert(), "U0ALICE")
    assert out.status == "no_change" and "already fully on" in out.message
    assert aws.calls["PutPublicAccessBlock"] == 0
    assert remediator.undo_alert(7, "U0ALICE").status == "nothing_to_undo"
    assert remediator.undo(4242, "U0ALICE").status == "not_found"


def test_an_account_without_write_access_is_a_message(store: Store, aws: MotoAws) -> None:
    aws.refuse = NoWriteAccess(f"account {ACCOUNT} is read through a role and no REMEDIATION_ROLE is set")
    remediator = Remediator(store, aws, dry_run=False)
    out = remediator.fix(bucket_alert(), "U0ALICE")
    assert out.status == "failed" and out.error_code == "NoWriteAccess"
    assert "no REMEDIATION_ROLE is set" in out.message and BUCKET in out.message
    assert "REMEDIATION_ROLE" in remediator.plan(bucket_alert()).summary()


def test_a_role_that_cannot_be_assumed_is_named(store: Store, aws: MotoAws) -> None:
    aws.refuse = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: sts:AssumeRole"}},
        "AssumeRole",
    )
    out = Remediator(store, aws, dry_run=False).fix(bucket_alert(), "U0ALICE")
    assert out.status == "failed"
    assert (
        out.message
        == f"AccessDenied: the bot may not assume the remediation role in account {ACCOUNT} (sts:AssumeRole)"
    )


def test_a_write_whose_answer_is_lost_is_settled_from_aws_not_marked_failed(store: Store, aws: MotoAws) -> None:
    """The write reached AWS, the answer did not (a read timeout): the press is told the bot checks, and
    the reconciler records the fix as applied with its snapshot, so Undo restores the original."""
    set_bpa(BUCKET, WEAK)
    remediator = Remediator(store, aws, dry_run=False)

    def lost(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://s3.amazonaws.com")

    client = aws.client("s3", ACCOUNT, REGION, write=True)
    client.meta.events.register("after-call.s3.PutPublicAccessBlock", lost, unique_id="lost")
    out = remediator.fix(bucket_alert(), "U0ALICE")
    client.meta.events.unregister("after-call.s3.PutPublicAccessBlock", unique_id="lost")
    assert out.status == "in_progress" and "checks" in out.message
    assert get_bpa(BUCKET) == ALL_ON
    assert remediator.reconcile() == []  # not yet stale: a live press may still be at it
    remediator.clock = lambda: datetime.now(UTC) + timedelta(minutes=1)
    [settled] = remediator.reconcile()
    assert settled.status == "applied" and settled.before == WEAK
    undone = remediator.undo(settled.remediation_id or 0, "U0ALICE")
    assert undone.status == "undone" and get_bpa(BUCKET) == WEAK
