"""Issue 8, defect 3: an access point's alert, exception and fix are scoped to that access point.

"Mark as expected" on a public access point used to cover the whole account (a later
DeleteAccountPublicAccessBlock produced no card) and its Fix turned on Block Public Access for the
whole account. Now the exception names the access point, and the fix takes the public statements out
of that access point's policy (moto's S3 Control), with the policy kept so Undo restores it exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.alerts.exception_requests import ExceptionRequests
from bot.alerts.exceptions import ExceptionList
from bot.aws.exposure import access_point_verdict
from bot.aws.remediation import Remediator
from bot.core.bpa import FLAGS
from bot.core.clock import utcnow
from bot.core.exposure import ExposureVerdict
from bot.services.allow import accept
from bot.slack.ask import dm as ask_dm
from bot.store.database import Store
from tests.remediation_world import ACCOUNT, BUCKET, REGION, Alert, MotoAws
from tests.slack_requests import RESPONDER, BotApp, bot_app, eventually  # noqa: F401
from tests.slack_standin import slack_standin  # noqa: F401
from tests.test_alerts import ACCOUNT as RECORDS_ACCOUNT
from tests.test_alerts import make_record
from tests.wiring import alert_service, render_card

POINT = "reports-ap"
PUBLIC = {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
          "Resource": f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{POINT}/object/*"}
TEAM = {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/team"},
        "Action": "s3:PutObject", "Resource": f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{POINT}/object/*"}


# An access point's own Block Public Access is all on unless it is created otherwise (AWS's default).
OPEN_POINT = dict.fromkeys(FLAGS, False)


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _public_point_record(name: str, minutes: float) -> Any:
    resource = f"arn:aws:s3:{REGION}:{RECORDS_ACCOUNT}:accesspoint/{name}/object/*"
    return make_record("PutAccessPointPolicy", {"name": name, "PutAccessPointPolicyRequest": {
        "Policy": _policy({**PUBLIC, "Resource": resource})}}, bucket=None, minutes=minutes)


# ---- the exception ---------------------------------------------------------------------------------


def test_an_access_points_exception_covers_that_access_point_and_nothing_else(store: Store) -> None:
    exceptions = ExceptionList(store)
    row = exceptions.add(None, "public dataset", "U0RESP", utcnow() + timedelta(days=7), account=ACCOUNT,
                         access_point=POINT)
    assert row.label == f"access point {POINT} (account {ACCOUNT})"
    assert exceptions.active_for(None, ACCOUNT, POINT) == row
    assert exceptions.active_for(None, ACCOUNT) is None  # not the account
    assert exceptions.active_for(None, ACCOUNT, "other-ap") is None  # not another access point
    assert exceptions.active_for(None, "210987654321", POINT) is None  # not the same name elsewhere
    assert exceptions.active_for(BUCKET, ACCOUNT) is None


def test_after_an_access_point_is_accepted_the_account_and_other_access_points_still_alert(store: Store) -> None:
    exceptions = ExceptionList(store)
    service = alert_service(store, exceptions_fn=exceptions.active_for)
    first = service.process([_public_point_record(POINT, 0)])[0]
    exceptions.add(None, "public dataset", "U0RESP", utcnow() + timedelta(days=7), account=RECORDS_ACCOUNT,
                   access_point=POINT)
    service.transition(first.alert_id, "accepted", "U0RESP", "exception")
    again = service.process([_public_point_record(POINT, 1)])
    assert [c.kind for c in again] == ["suppressed"]
    account = service.process([make_record("DeleteAccountPublicAccessBlock", {"accountId": RECORDS_ACCOUNT},
                                           bucket=None, minutes=2)])
    other = service.process([_public_point_record("other-ap", 3)])
    assert [c.kind for c in account] == ["opened"] and [c.kind for c in other] == ["opened"]


def test_an_approved_yes_intended_on_an_access_point_covers_that_access_point_only(store: Store) -> None:
    """Before, the actor's request approved by a responder made an exception with neither bucket nor access
    point: it covered the account, and a later DeleteAccountPublicAccessBlock was accepted with no card."""
    exceptions = ExceptionList(store)
    service = alert_service(store, exceptions_fn=exceptions.active_for)
    alert = service.get(service.process([_public_point_record(POINT, 0)])[0].alert_id)
    requests = ExceptionRequests(store, exceptions)
    request = requests.request(alert.id, alert.account, alert.bucket, "public site", timedelta(days=30), "U0ACTOR")
    row = requests.approve(request.id, "U0RESP")
    assert row is not None and row.label == f"access point {POINT} (account {RECORDS_ACCOUNT})"
    service.transition(alert.id, "accepted", "U0RESP", "approved", slack_user=True)
    account = service.process([make_record("DeleteAccountPublicAccessBlock", {"accountId": RECORDS_ACCOUNT},
                                           bucket=None, minutes=2)])
    assert [c.kind for c in account] == ["opened"]
    assert [c.kind for c in service.process([_public_point_record(POINT, 3)])] == ["suppressed"]


# ---- the fix and its undo, against moto's S3 Control --------------------------------------------


@pytest.fixture
def aws() -> Iterator[MotoAws]:
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        boto3.client("s3control", region_name=REGION).create_access_point(
            AccountId=ACCOUNT, Name=POINT, Bucket=BUCKET, PublicAccessBlockConfiguration=OPEN_POINT)
        yield MotoAws()


def _control() -> Any:
    return boto3.client("s3control", region_name=REGION)


def _set_policy(text: str) -> None:
    _control().put_access_point_policy(AccountId=ACCOUNT, Name=POINT, Policy=text)


def _live_policy() -> str | None:
    try:
        return str(_control().get_access_point_policy(AccountId=ACCOUNT, Name=POINT)["Policy"])
    except _control().exceptions.ClientError:
        return None


def _account_bpa_absent() -> bool:
    try:
        _control().get_public_access_block(AccountId=ACCOUNT)
    except _control().exceptions.ClientError as exc:
        return exc.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
    return False


def point_alert() -> Alert:
    return replace(Alert(11, ACCOUNT, REGION, None), detection="access_point_policy_public", access_point=POINT)


def test_the_fix_removes_only_the_public_statement_and_undo_restores_the_policy_exactly(
        store: Store, aws: MotoAws) -> None:
    original = _policy(PUBLIC, TEAM)
    _set_policy(original)
    remediator = Remediator(store, aws, dry_run=False)
    plan = remediator.plan(point_alert(), "U0RESP")
    assert "Account-wide Block Public Access is not changed" in plan.summary()
    outcome = remediator.fix(point_alert(), "U0RESP")
    assert outcome.status == "applied", outcome.message
    assert "Removed the public statements" in outcome.message and "not touched" in outcome.message
    assert json.loads(_live_policy() or "{}")["Statement"] == [TEAM]  # the team's grant stays
    assert _account_bpa_absent()  # account-wide Block Public Access was never written
    assert aws.calls["PutPublicAccessBlock"] == 0 and aws.actors[-1] == "U0RESP"
    undone = remediator.undo_alert(11, "U0RESP")
    assert undone.status == "undone", undone.message
    assert json.loads(_live_policy() or "{}") == json.loads(original)


def test_a_policy_that_is_only_public_is_deleted_and_undo_puts_it_back(store: Store, aws: MotoAws) -> None:
    original = _policy(PUBLIC)
    _set_policy(original)
    remediator = Remediator(store, aws, dry_run=False)
    assert remediator.fix(point_alert(), "U0RESP").status == "applied"
    assert _live_policy() is None and aws.calls["DeleteAccessPointPolicy"] == 1
    assert remediator.undo_alert(11, "U0RESP").status == "undone"
    assert json.loads(_live_policy() or "{}") == json.loads(original)


def test_a_policy_already_private_changes_nothing(store: Store, aws: MotoAws) -> None:
    _set_policy(_policy(TEAM))
    outcome = Remediator(store, aws, dry_run=False).fix(point_alert(), "U0RESP")
    assert outcome.status == "no_change" and "not public" in outcome.message
    assert aws.calls["PutAccessPointPolicy"] == 0 and aws.calls["DeleteAccessPointPolicy"] == 0


def test_a_fix_interrupted_after_recording_its_intent_is_finished_by_the_reconciler(store: Store, aws: MotoAws) -> None:
    original = _policy(PUBLIC, TEAM)
    _set_policy(original)
    now = [utcnow()]
    remediator = Remediator(store, aws, dry_run=False, clock=lambda: now[0])
    alert = point_alert()
    rid = remediator.rows.insert(alert, "U0RESP", "applying", now[0])
    target = remediator._target(alert, "U0RESP")
    before = target.read()
    remediator.rows.update(rid, "applying", snapshot=before, intended=target.desired(before))  # then SIGKILL
    now[0] += timedelta(minutes=2)
    (outcome,) = remediator.reconcile()
    assert outcome.status == "applied" and "removed 1 public statement" in outcome.message
    assert json.loads(_live_policy() or "{}")["Statement"] == [TEAM]
    assert remediator.undo_alert(11, "U0RESP").status == "undone"
    assert json.loads(_live_policy() or "{}") == json.loads(original)


def test_a_refusal_names_the_access_point_permission(store: Store, aws: MotoAws) -> None:
    _set_policy(_policy(PUBLIC))
    aws.fail["GetAccessPointPolicy"] = "AccessDenied"
    outcome = Remediator(store, aws, dry_run=False).fix(point_alert(), "U0RESP")
    assert outcome.status == "failed"
    assert "s3:GetAccessPointPolicy" in outcome.message and POINT in outcome.message


def test_the_card_names_the_access_point_and_its_fix_button_says_what_it_does(store: Store) -> None:
    service = alert_service(store)
    alert_id = service.process([_public_point_record(POINT, 0)])[0].alert_id
    _, blocks = render_card(service, alert_id)
    shown = json.dumps([b.to_dict() if hasattr(b, "to_dict") else b for b in blocks])
    assert "*Access point*" in shown and f"`{POINT}`" in shown and "_whole account_" not in shown
    assert "Remove public access-point policy" in shown and "Re-enable Block Public Access" not in shown
    assert "Account-wide Block Public Access is not changed" in shown  # the confirm dialog
    assert f"/s3/ap/{RECORDS_ACCOUNT}/{POINT}" in shown


# ---- from Slack: a signed Fix press, and "Mark as expected" -----------------------------------------


def _point_alert_in(bot: BotApp, name: str) -> Any:
    """A public access point in moto (account 123456789012), its record processed, its card posted."""
    bot.s3.create_bucket(Bucket=f"{name}-bucket")
    control = boto3.client("s3control", region_name=REGION)
    control.create_access_point(AccountId=ACCOUNT, Name=name, Bucket=f"{name}-bucket")
    control.put_access_point_policy(AccountId=ACCOUNT, Name=name, Policy=_policy(PUBLIC, TEAM))
    record = make_record("PutAccessPointPolicy", {"name": name, "PutAccessPointPolicyRequest": {
        "Policy": _policy(PUBLIC)}}, bucket=None, event_id=f"ap-{name}")
    record.raw["recipientAccountId"] = ACCOUNT
    record.raw["userIdentity"]["accountId"] = ACCOUNT
    (change,) = bot.services.alerts.process([record])
    bot.services.outbox.flush()
    return bot.services.alerts.get(change.alert_id)


def test_a_signed_fix_press_on_an_access_point_alert_changes_only_its_policy(bot_app: BotApp) -> None:  # noqa: F811
    alert = _point_alert_in(bot_app, POINT)
    assert alert.access_point == POINT and alert.account == ACCOUNT
    assert bot_app.press("fix", str(alert.id)).status == 200
    assert eventually(lambda: bot_app.services.alerts.get(alert.id).status == "fixed")
    assert json.loads(_live_policy() or "{}")["Statement"] == [TEAM]
    assert _account_bpa_absent()
    assert eventually(lambda: "removed the access point's public policy statements"
                      in " ".join(m.text for m in bot_app.standin.replies(alert.ts)))
    assert [(r.action, r.outcome) for r in bot_app.services.audit.for_alert(alert.id)] == [("fix", "applied")]


def test_mark_as_expected_on_an_access_point_scopes_the_exception_to_it(bot_app: BotApp) -> None:  # noqa: F811
    alert = _point_alert_in(bot_app, POINT)
    accept(bot_app.services, alert.id, RESPONDER, "public dataset", "7d")
    (row,) = bot_app.services.exceptions.list_active()
    assert (row.access_point, row.account, row.bucket) == (POINT, ACCOUNT, None)
    assert bot_app.services.alerts.get(alert.id).status == "accepted"
    account_record = make_record("DeleteAccountPublicAccessBlock", {"accountId": ACCOUNT}, bucket=None,
                                 event_id="acct-after")
    account_record.raw["recipientAccountId"] = ACCOUNT
    assert [c.kind for c in bot_app.services.alerts.process([account_record])] == ["opened"]


# ---- the live verdict of an access point's card ------------------------------------------------------


def _point_verdict() -> Any:
    return access_point_verdict(boto3.client("s3", region_name=REGION), _control(), ACCOUNT, POINT)


def test_the_card_judges_the_access_point_not_the_account(aws: MotoAws) -> None:
    _set_policy(_policy(PUBLIC, TEAM))
    public = _point_verdict()
    assert public.public_now is True and f"access point {POINT}'s policy is public" in public.line
    _control().put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True})
    held = _point_verdict()
    assert held.public_now is False and "RestrictPublicBuckets is on at the account" in held.line
    _control().delete_public_access_block(AccountId=ACCOUNT)
    _set_policy(_policy(TEAM))
    assert _point_verdict().public_now is False
    _control().delete_access_point(AccountId=ACCOUNT, Name=POINT)
    assert "no longer exists" in _point_verdict().line
    _control().create_access_point(AccountId=ACCOUNT, Name=POINT, Bucket=BUCKET)  # AWS's default: its guard on
    _set_policy(_policy(PUBLIC))
    guarded = _point_verdict()
    assert guarded.public_now is False and "RestrictPublicBuckets is on at the access point" in guarded.line


def test_the_engine_takes_the_access_points_verdict_for_its_alert(store: Store) -> None:
    asked: list[tuple[str, ...]] = []

    def bucket_or_account(account: str, bucket: str | None, region: str, keys: tuple[str, ...]) -> Any:
        raise AssertionError("an access point's alert must not take the account's verdict")

    def point(account: str, region: str, name: str) -> Any:
        asked.append((account, region, name))
        return ExposureVerdict(True, f"Public now: access point {name}'s policy is public")

    service = alert_service(store, verdict_fn=bucket_or_account, access_point_verdict_fn=point)
    alert_id = service.process([_public_point_record(POINT, 0)])[0].alert_id
    assert asked == [(RECORDS_ACCOUNT, REGION, POINT)]
    assert service.get(alert_id).exposure.line.startswith("Public now: access point")
    assert service.recheck(alert_id) is not None and len(asked) == 2
    unwired = alert_service(store, verdict_fn=bucket_or_account)
    other = unwired.process([_public_point_record("other-ap", 1)])[0].alert_id
    assert unwired.get(other).exposure is None  # not checked, rather than the account's verdict


def test_the_actors_dm_names_the_access_point(store: Store) -> None:
    service = alert_service(store)
    alert = service.get(service.process([_public_point_record(POINT, 0)])[0].alert_id)
    text, blocks = ask_dm(alert, service.finding_objects(alert.id)[0], None, "C0ALERTS")
    shown = text + json.dumps([b.to_dict() for b in blocks])
    assert f"access point {POINT}" in text and f"access point `{POINT}`" in shown and "Did you change" in text
