"""The allow list: matching, expiry, revocation, the one-time expiry reminder, the allow tag, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bot.alerts.exceptions import ExceptionList, ExceptionListError
from bot.aws.tags import tag_allows
from bot.core.durations import DurationError, format_duration, parse_duration
from bot.store.database import Store

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
OTHER = "210987654321"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def allow(store: Store, clock: Clock) -> ExceptionList:
    return ExceptionList(store, clock=clock)


def test_an_exception_matches_its_bucket_until_it_expires(allow: ExceptionList, clock: Clock) -> None:
    row = allow.add("public-site", "static website", "U0ALICE", START + timedelta(days=30), account=ACCOUNT)
    assert row.reason == "static website" and row.owner == "U0ALICE" and row.created_at == START

    assert allow.active_for("public-site", ACCOUNT) == row
    assert allow.active_for("public-site", OTHER) is None  # scoped to its account
    assert allow.active_for("other-bucket", ACCOUNT) is None
    assert allow.active_for(None, ACCOUNT) is None  # a bucket exception is not an account exception

    clock.now = START + timedelta(days=30)
    assert allow.active_for("public-site", ACCOUNT) is None
    assert allow.list_active() == []


def test_an_exception_without_account_matches_every_account(allow: ExceptionList) -> None:
    row = allow.add("shared-dataset", "open data", "U0ALICE", START + timedelta(days=7))
    assert allow.active_for("shared-dataset", ACCOUNT) == row
    assert allow.active_for("shared-dataset", OTHER) == row


def test_account_level_exception_matches_only_account_alerts(allow: ExceptionList) -> None:
    row = allow.add(None, "sandbox account", "U0ALICE", START + timedelta(days=7), account=ACCOUNT)
    assert allow.active_for(None, ACCOUNT) == row
    assert allow.active_for(None, OTHER) is None
    assert allow.active_for("any-bucket", ACCOUNT) is None


def test_revoked_exceptions_stop_matching_and_revoking_twice_keeps_the_first(
    allow: ExceptionList, clock: Clock
) -> None:
    row = allow.add("public-site", "static website", "U0ALICE", START + timedelta(days=30))
    clock.now = START + timedelta(hours=1)
    revoked = allow.revoke(row.id, "U0BOB")
    assert revoked.revoked_at == START + timedelta(hours=1)
    assert allow.active_for("public-site", ACCOUNT) is None
    clock.now = START + timedelta(hours=2)
    assert allow.revoke(row.id, "U0CAROL").revoked_at == START + timedelta(hours=1)
    with pytest.raises(ExceptionListError):
        allow.revoke(999, "U0BOB")


def test_listing_and_expiring_soon(allow: ExceptionList) -> None:
    late = allow.add("bucket-late", "r", "U0ALICE", START + timedelta(days=20))
    soon = allow.add("bucket-soon", "r", "U0ALICE", START + timedelta(days=3))
    assert allow.list_active() == [soon, late]
    assert allow.expiring(timedelta(days=7)) == [soon]
    assert allow.expiring(timedelta(days=30)) == [soon, late]


def test_expiry_reminder_is_due_once(allow: ExceptionList, clock: Clock) -> None:
    row = allow.add("public-site", "static website", "U0ALICE", START + timedelta(days=1))
    revoked = allow.add("revoked-site", "r", "U0ALICE", START + timedelta(days=1))
    allow.revoke(revoked.id, "U0BOB")
    assert allow.due_for_expiry_notice() == []

    clock.now = START + timedelta(days=1, minutes=1)
    assert allow.due_for_expiry_notice() == [row]  # the revoked one needs no reminder
    assert allow.mark_notified(row.id) is True
    assert allow.mark_notified(row.id) is False  # a second worker does not remind again
    assert allow.due_for_expiry_notice() == []
    allow.release_notice(row.id)  # its post failed: the next run sends it
    assert allow.due_for_expiry_notice() == [row]


@pytest.mark.parametrize(
    ("bucket", "reason", "expires", "account"),
    [
        (None, "no target", START + timedelta(days=1), None),
        ("b", "  ", START + timedelta(days=1), None),
        ("b", "past", START - timedelta(seconds=1), None),
        ("b", "naive", datetime(2030, 1, 1), None),
    ],
)
def test_add_refuses_what_it_cannot_use(
    allow: ExceptionList, bucket: str | None, reason: str, expires: datetime, account: str | None
) -> None:
    with pytest.raises(ExceptionListError):
        allow.add(bucket, reason, "U0ALICE", expires, account=account)
    assert allow.list_active() == []


def test_bucket_tag_allows_public_on_purpose(allow: ExceptionList) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for name in ("tagged-site", "untagged-site", "other-tag-site"):
            s3.create_bucket(Bucket=name)
        s3.put_bucket_tagging(
            Bucket="tagged-site", Tagging={"TagSet": [{"Key": "bucketwatch:public", "Value": "Allowed"}]}
        )
        s3.put_bucket_tagging(
            Bucket="other-tag-site", Tagging={"TagSet": [{"Key": "bucketwatch:public", "Value": "no"}]}
        )
        assert tag_allows(s3, "tagged-site") is True
        assert tag_allows(s3, "untagged-site") is False  # NoSuchTagSet
        assert tag_allows(s3, "other-tag-site") is False
        assert tag_allows(s3, "missing-bucket") is False

        def deny(**_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetBucketTagging")

        s3.meta.events.register("before-call.s3.GetBucketTagging", deny)
        reported: list[str] = []
        assert tag_allows(s3, "tagged-site", on_error=reported.append) is False
        assert reported == [
            "AccessDenied: the read-only role needs s3:GetBucketTagging on arn:aws:s3:::tagged-site"
        ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1d 12h", timedelta(days=1, hours=12)),
        (" 2 Weeks ", timedelta(weeks=2)),
        ("45 minutes", timedelta(minutes=45)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d30", "30x", "0d", "3 fortnights", "30d!", "99999w", "-3d"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=30), "30 days"),
        (timedelta(hours=1, minutes=30), "1 hour 30 minutes"),
        (timedelta(days=2, hours=3, minutes=4), "2 days 3 hours"),
        (timedelta(seconds=20), "less than a minute"),
        (timedelta(minutes=1), "1 minute"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
