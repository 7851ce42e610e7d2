"""What the alert engine adds around detections: bucket tags, aliases, before values, auto-resolve, who may be fixed."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bot.core.record import Record
from bot.sources.lookup import LOOKUP_EVENT_NAMES
from bot.store import index
from detections.restores import RESTORE_EVENTS
from tests.slack_requests import ACCOUNT, BYSTANDER, RESPONDER, BotApp, bot_app, bpa_record, eventually
from tests.slack_standin import SlackStandin, slack_standin
from tests.test_alerts import ACCOUNT as WIRED_ACCOUNT
from tests.test_alerts import ALL_OFF, ALL_ON, BUCKET, CHANNEL, PUBLIC_POLICY, bpa, make_record, wired

# pytest fixtures used by parameter name in this module
FIXTURES = (bot_app, slack_standin, wired)
OTHER_ACCOUNT = "444455556666"


def _sent(standin: SlackStandin) -> str:
    return json.dumps([c.params for c in standin.calls], ensure_ascii=False)


def _actions(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _card(bot: BotApp, ts: str | None) -> list[dict[str, Any]]:
    message = bot.standin.message(str(ts))
    assert message is not None, "the card should have been posted"
    return list(message.blocks)


def _record(bucket: str | None, name: str, params: dict[str, Any], *, event_id: str,
            user: str = "mallory", account: str = ACCOUNT) -> Record:
    """A bucket (or account-level) write by IAM user `user`, in the shape bpa_record uses."""
    raw = bpa_record(bucket or "unused", event_id=event_id)
    raw["eventName"] = name
    raw["recipientAccountId"] = account
    raw["userIdentity"] = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": account,
                           "arn": f"arn:aws:iam::{account}:user/{user}", "userName": user}
    host = f"{bucket}.s3.amazonaws.com" if bucket else f"{account}.s3-control.us-east-1.amazonaws.com"
    raw["requestParameters"] = {"Host": host, **({"bucketName": bucket} if bucket else {}), **params}
    return Record(raw)


# ---- 3: bucket tag bucketwatch:public=allowed --------------------------------------------------


# Never silent: a quiet line in the channel, a digest section, and writing the tag is a finding of its
# own — tests/test_allow_tag.py.


# ---- 4: account alias on the card --------------------------------------------------------------


def test_the_card_shows_the_account_alias_from_iam(bot_app: BotApp) -> None:
    boto3.client("iam", region_name="us-east-1").create_account_alias(AccountAlias="acme-prod")
    alert = bot_app.open_alert("aliased")
    card = json.dumps(_card(bot_app, alert.ts))
    assert f"`{ACCOUNT}` (acme-prod)" in card


def test_without_iam_list_account_aliases_the_card_still_goes_out(bot_app: BotApp) -> None:
    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListAccountAliases")

    iam = bot_app.services.aws.client("iam", ACCOUNT, "us-east-1")
    iam.meta.events.register("before-call.iam.ListAccountAliases", deny)
    alert = bot_app.open_alert("no-alias")
    card = json.dumps(_card(bot_app, alert.ts))
    assert f"`{ACCOUNT}`" in card and f"`{ACCOUNT}` (" not in card


# ---- 5: before values from the who-changed index -----------------------------------------------


def _card_text(w: SimpleNamespace) -> str:
    w.outbox.flush()
    return json.dumps([m.blocks for m in w.slack.top_level(CHANNEL)], ensure_ascii=False)


def test_what_changed_reads_the_before_value_from_the_index(wired: SimpleNamespace) -> None:
    index.ingest(wired.store, [bpa(ALL_ON, minutes=-30)])
    wired.service.process([bpa(dict(ALL_OFF, IgnorePublicAcls=True))])
    card = _card_text(wired)
    assert "`BlockPublicAcls`: on → off" in card and "`RestrictPublicBuckets`: on → off" in card
    assert "IgnorePublicAcls`:" not in card.split("Block Public Access now")[0]


def test_before_is_unknown_only_when_the_index_has_nothing(wired: SimpleNamespace) -> None:
    # A later write (after the finding) is not "before"; another bucket's write is not this bucket's.
    index.ingest(wired.store, [bpa(ALL_ON, minutes=30), bpa(ALL_ON, minutes=-30, bucket="another-bucket")])
    wired.service.process([bpa(ALL_OFF)])
    assert "`BlockPublicAcls`: unknown → off" in _card_text(wired)


def test_a_policy_made_public_says_what_it_was_before(wired: SimpleNamespace) -> None:
    private = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
               "Principal": {"AWS": f"arn:aws:iam::{WIRED_ACCOUNT}:root"}, "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}
    index.ingest(wired.store, [make_record("PutBucketPolicy", {"bucketPolicy": private}, minutes=-5)])
    wired.service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY})])
    assert "`bucket policy`: not public → " in _card_text(wired)


# ---- 9: auto-resolve on deletes ------------------------------------------------------------------


def test_deleting_the_bucket_resolves_its_alert(wired: SimpleNamespace) -> None:
    opened = wired.service.process([
        make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}),
        make_record("PutBucketAcl", {"x-amz-acl": "public-read"}, minutes=1),
    ])
    done = wired.service.process([make_record("DeleteBucket", minutes=5)])
    assert [(c.kind, c.alert_id) for c in done] == [("resolved", opened[0].alert_id)]
    assert wired.service.get(opened[0].alert_id).status == "resolved"
    wired.outbox.flush()
    replies = wired.slack.replies(wired.slack.top_level(CHANNEL)[0].ts)
    assert "Resolved: Bucket deleted by sam@example.com" in replies[-1].text
    # The poller asks LookupEvents for every event that can resolve an alert, even in a read-heavy window.
    assert RESTORE_EVENTS <= set(LOOKUP_EVENT_NAMES) and "DeleteBucket" in LOOKUP_EVENT_NAMES


def _access_point(name: str, minutes: float) -> Record:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
              "Resource": f"arn:aws:s3:us-east-1:{WIRED_ACCOUNT}:accesspoint/{name}/object/*"}]}
    return make_record("PutAccessPointPolicy", {"name": name, "PutAccessPointPolicyRequest": {
        "Policy": json.dumps(policy)}}, bucket=None, minutes=minutes)


def test_each_access_point_has_its_own_alert_and_deleting_one_resolves_only_its_own(wired: SimpleNamespace) -> None:
    """Issue 8 defect 3: an access point's alert is about that access point, not the account."""
    opened = wired.service.process([_access_point("ap-one", 0), _access_point("ap-two", 1)])
    assert [c.kind for c in opened] == ["opened", "opened"]
    one, two = (wired.service.get(c.alert_id) for c in opened)
    assert (one.access_point, two.access_point) == ("ap-one", "ap-two") and one.label == "access point ap-one"
    gone = wired.service.process([make_record("DeleteAccessPoint", {"name": "ap-one"}, bucket=None, minutes=3)])
    assert [(c.kind, c.alert_id) for c in gone] == [("resolved", one.id)]
    assert wired.service.get(two.id).status == "open"
    done = wired.service.process([make_record("DeleteAccessPointPolicy", {"name": "ap-two"}, bucket=None, minutes=4)])
    assert [(c.kind, c.alert_id) for c in done] == [("resolved", two.id)]
    wired.outbox.flush()
    cards = wired.slack.top_level(CHANNEL)
    assert len(cards) == 2
    assert "Access point ap-one deleted" in wired.slack.replies(cards[0].ts)[-1].text
    assert "Access point ap-two policy deleted" in wired.slack.replies(cards[1].ts)[-1].text


def test_an_account_alert_is_not_merged_into_an_access_points(wired: SimpleNamespace) -> None:
    off = {"PublicAccessBlockConfiguration": {f: False for f in ALL_OFF}}
    point = wired.service.process([_access_point("ap-one", 0)])[0]
    account = wired.service.process([make_record("DeleteAccountPublicAccessBlock", {"accountId": WIRED_ACCOUNT},
                                                 bucket=None, minutes=1)])
    account += wired.service.process([make_record("PutAccountPublicAccessBlock", off, bucket=None, minutes=2)])
    assert account[0].kind == "opened" and account[0].alert_id != point.alert_id
    assert wired.service.get(account[0].alert_id).access_point is None


# ---- 12: no fix for what Block Public Access does not close -------------------------------------


def test_a_cross_account_alert_offers_no_fix_and_a_fix_is_refused(bot_app: BotApp) -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
              "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, "Resource": "arn:aws:s3:::shared/*"}]}
    bot_app.s3.create_bucket(Bucket="shared")
    record = _record("shared", "PutBucketPolicy", {"bucketPolicy": policy}, event_id="xacct-1")
    changes = bot_app.services.alerts.process([record])
    bot_app.services.outbox.flush()
    alert = bot_app.services.alerts.get(changes[0].alert_id)
    assert alert.detection == "bucket_policy_cross_account" and alert.ts
    assert _actions(_card(bot_app, alert.ts)) == ["ack", "who_changed", "allow"]

    said = bot_app.answer("fix shared")
    assert "not public access" in said["text"] and "nothing was changed" in said["text"]
    assert "blocks" not in said or "fix" not in _actions(said["blocks"])
    bot_app.press("fix", str(alert.id))  # a typed id or an old button
    told = eventually(lambda: [c for c in bot_app.standin.accepted("chat.postEphemeral")
                               if "not public access" in str(c.params.get("text"))])
    assert told
    assert bot_app.services.alerts.get(alert.id).status == "open"
    assert [r.outcome for r in bot_app.services.audit.for_alert(alert.id)] == ["not_fixable", "not_fixable"]
    try:
        bot_app.s3.get_public_access_block(Bucket="shared")
        raise AssertionError("Block Public Access was written")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"


# ---- 22: an AWS name that looks like a Slack id --------------------------------------------------


def test_an_iam_user_named_like_a_slack_id_is_never_a_mention(bot_app: BotApp) -> None:
    lookalike = "U12345678"
    bot_app.bucket("lookalike")
    off = {f: False for f in ALL_OFF}
    opened = bot_app.services.alerts.process([_record(
        "lookalike", "PutBucketPublicAccessBlock", {"PublicAccessBlockConfiguration": off},
        event_id="look-1", user=lookalike)])
    bot_app.services.outbox.flush()
    alert_id = opened[0].alert_id
    fixed = bot_app.services.alerts.process([_record(
        "lookalike", "PutBucketPublicAccessBlock", {"PublicAccessBlockConfiguration": ALL_ON},
        event_id="look-2", user=lookalike)])
    assert [c.kind for c in fixed] == ["resolved"]
    assert bot_app.services.alerts.get(alert_id).closed_by == lookalike
    bot_app.press("ack", str(alert_id), user=BYSTANDER)
    bot_app.press("fix", str(alert_id), user=RESPONDER)
    assert eventually(lambda: f"already resolved by {lookalike}" in _sent(bot_app.standin))
    bot_app.services.outbox.flush()
    assert lookalike in _sent(bot_app.standin)
    assert f"<@{lookalike}>" not in _sent(bot_app.standin)


# ---- 24: who changed an account ------------------------------------------------------------------


def test_who_changed_on_an_account_alert_lists_only_that_account(bot_app: BotApp) -> None:
    off = {"PublicAccessBlockConfiguration": {f: False for f in ALL_OFF}}
    own = _record(None, "PutAccountPublicAccessBlock", off, event_id="acct-own", user="mallory")
    other = _record(None, "PutAccountPublicAccessBlock", off, event_id="acct-other", user="eve-elsewhere",
                    account=OTHER_ACCOUNT)
    index.ingest(bot_app.services.store, [own, other])
    alert_id = bot_app.services.alerts.process([own])[0].alert_id
    bot_app.services.outbox.flush()
    bot_app.press("who_changed", str(alert_id), user=BYSTANDER)
    timeline = eventually(lambda: [c for c in bot_app.standin.accepted("chat.postEphemeral")
                                   if "Who changed" in json.dumps(c.params)])
    assert timeline
    shown = json.dumps([c.params for c in timeline])
    assert "mallory" in shown and "eve-elsewhere" not in shown


# ---- 27: the reply cap says so -------------------------------------------------------------------


def test_the_reply_cap_note_appears_once(wired: SimpleNamespace) -> None:
    def public_object(i: int) -> Record:
        return make_record("PutObjectAcl", {"key": f"img/{i}.png", "x-amz-acl": "public-read"}, minutes=i)

    wired.service.process([public_object(i) for i in range(9)])
    wired.outbox.flush()
    wired.service.process([public_object(i) for i in range(9, 12)])
    wired.outbox.flush()
    replies = [r.text for r in wired.slack.replies(wired.slack.top_level(CHANNEL)[0].ts)]
    notes = [r for r in replies if "and more changes of this kind" in r]
    assert len(notes) == 1 and "Who changed this?" in notes[0]
    assert len(replies) == 5  # four findings after the one that opened the card, then the note


# ---- review 2, item 7: restores that used to leave alerts open -----------------------------------


def _private_access_point(name: str, minutes: float) -> Record:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
              "Principal": {"AWS": f"arn:aws:iam::{WIRED_ACCOUNT}:root"},
              "Resource": f"arn:aws:s3:us-east-1:{WIRED_ACCOUNT}:accesspoint/{name}/object/*"}]}
    return make_record("PutAccessPointPolicy", {"name": name, "PutAccessPointPolicyRequest": {
        "Policy": json.dumps(policy)}}, bucket=None, minutes=minutes)


def test_a_non_public_access_point_policy_clears_only_that_access_point(wired: SimpleNamespace) -> None:
    opened = wired.service.process([_access_point("ap-one", 0), _access_point("ap-two", 1)])
    fixed = wired.service.process([_private_access_point("ap-one", 3)])
    assert [(c.kind, c.alert_id) for c in fixed] == [("resolved", opened[0].alert_id)]
    assert wired.service.get(opened[1].alert_id).status == "open"
    wired.outbox.flush()
    replies = wired.slack.replies(wired.slack.top_level(CHANNEL)[0].ts)
    assert "Access point ap-one policy replaced with a non-public one" in replies[-1].text


def _object(name: str, key: str, minutes: float, params: dict[str, Any] | None = None,
            response: dict[str, Any] | None = None) -> Record:
    record = make_record(name, {"key": key, **(params or {})}, minutes=minutes)
    record.raw.update(managementEvent=False, eventCategory="Data", responseElements=response)
    return record


def test_an_object_acl_made_private_or_the_object_deleted_clears_that_key(wired: SimpleNamespace) -> None:
    public = {"x-amz-acl": "public-read"}
    opened = wired.service.process([_object("PutObjectAcl", "a.txt", 0, public),
                                    _object("PutObjectAcl", "b.txt", 1, public)])
    assert [c.kind for c in opened] == ["opened", "added"]
    alert_id = opened[0].alert_id
    # Another key, a versioned delete (a marker: the public version stays readable), a still-public ACL.
    kept = wired.service.process([_object("PutObjectAcl", "c.txt", 2, {"x-amz-acl": "private"}),
                                  _object("DeleteObject", "b.txt", 3, response={"x-amz-delete-marker": "true"}),
                                  _object("PutObjectAcl", "a.txt", 4, {"x-amz-acl": "public-read-write"})])
    assert [c.kind for c in kept] == ["added"] and wired.service.get(alert_id).status == "open"
    assert [c.kind for c in wired.service.process([_object("PutObjectAcl", "a.txt", 5,
                                                           {"x-amz-acl": "private"})])] == ["partial"]
    done = wired.service.process([_object("DeleteObject", "b.txt", 6)])
    assert [c.kind for c in done] == ["resolved"] and wired.service.get(alert_id).status == "resolved"


def test_bucket_owner_enforced_clears_bucket_and_object_acls(wired: SimpleNamespace) -> None:
    opened = wired.service.process([make_record("PutBucketAcl", {"x-amz-acl": "public-read"}),
                                    _object("PutObjectAcl", "a.txt", 1, {"x-amz-acl": "public-read"})])
    assert [c.kind for c in opened] == ["opened", "added"]
    controls = {"OwnershipControls": {"Rule": {"ObjectOwnership": "BucketOwnerEnforced"}}}
    done = wired.service.process([make_record("PutBucketOwnershipControls", controls, minutes=2)])
    assert [c.kind for c in done] == ["resolved"]
    assert "ACLs disabled (BucketOwnerEnforced)" in wired.service.get(opened[0].alert_id).close_reason


def test_bpa_flags_back_on_clear_the_findings_that_turned_them_off(wired: SimpleNamespace) -> None:
    opened = wired.service.process([bpa(dict(ALL_ON, RestrictPublicBuckets=False))])
    alert_id = opened[0].alert_id
    # RestrictPublicBuckets stays off: the first finding is not undone (a new one is added).
    still = wired.service.process([bpa(dict(ALL_ON, RestrictPublicBuckets=False, BlockPublicAcls=False), minutes=1)])
    assert [c.kind for c in still] == ["added"]
    # RestrictPublicBuckets and BlockPublicAcls back on, BlockPublicPolicy now off: the old findings are
    # cleared, the incident stays open (one card) with the new one.
    turned = wired.service.process([bpa(dict(ALL_ON, BlockPublicPolicy=False), minutes=2)])
    assert [(c.kind, c.alert_id) for c in turned] == [("partial", alert_id), ("added", alert_id)]
    cleared = [f["cleared_by"] is not None for f in wired.service.findings(alert_id)]
    assert cleared == [True, True, False]
    done = wired.service.process([bpa(ALL_ON, minutes=3)])
    assert [c.kind for c in done] == ["resolved"]
    wired.outbox.flush()
    assert len(wired.slack.top_level(CHANNEL)) == 1


def test_account_bpa_flag_back_on_clears_a_one_flag_weakening(wired: SimpleNamespace) -> None:
    def account_put(flags: dict[str, bool], minutes: float) -> Record:
        return make_record("PutAccountPublicAccessBlock", {"PublicAccessBlockConfiguration": flags},
                           bucket=None, minutes=minutes)

    opened = wired.service.process([account_put(dict(ALL_ON, BlockPublicPolicy=False), 0)])
    other_flag = wired.service.process([account_put(dict(ALL_ON, IgnorePublicAcls=False), 1)])
    assert [(c.kind, c.alert_id) for c in other_flag] == [("partial", opened[0].alert_id),
                                                          ("added", opened[0].alert_id)]
    assert [f["cleared_by"] is not None for f in wired.service.findings(opened[0].alert_id)] == [True, False]
