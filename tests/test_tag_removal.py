"""Taking the allow tag away ends what it accepted, as an expiring exception does.

Before: the bucket's tag stayed cached for five minutes after it was removed (a change in that time was
still a quiet line), and what the tag had accepted stayed closed while the bucket was still public.
Against the app as `run` wires it (moto, the Slack stand-in).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.sources.lookup import LOOKUP_EVENT_NAMES
from detections.allow_tag_added import TAG_WRITES
from tests.slack_requests import BotApp, bot_app
from tests.slack_standin import slack_standin
from tests.test_allow_tag import TAG, XMLNS, actions, write

FIXTURES = (bot_app, slack_standin)
OFF = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
OTHER_TAGS = {"tagging": "", "Tagging": {"xmlns": XMLNS, "TagSet": {"Tag": [{"Key": "team", "Value": "web"}]}}}
TAG_PARAMS = {"tagging": "", "Tagging": {"xmlns": XMLNS, "TagSet": {"Tag": [
    {"Key": "bucketwatch:public", "Value": "allowed"}]}}}
REMOVALS = [("DeleteBucketTagging", {"tagging": ""}), ("PutBucketTagging", OTHER_TAGS)]


def policy(bucket: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                   "Resource": f"arn:aws:s3:::{bucket}/*"}]}


def public_policy(bucket: str) -> str:
    return json.dumps(policy(bucket))


def accepted_by_tag(bot: BotApp, bucket: str) -> Any:
    """A tagged bucket made public: the change is accepted by its tag and posted as a quiet line."""
    bot.bucket(bucket, off=OFF)
    bot.s3.put_bucket_tagging(Bucket=bucket, Tagging=TAG)
    bot.s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    made_public = write(bucket, "PutBucketPolicy", {"bucketPolicy": policy(bucket)}, minutes_ago=5)
    [change] = bot.services.alerts.process([made_public])
    assert change.kind == "suppressed"
    bot.services.outbox.flush()
    alert = bot.services.alerts.get(change.alert_id)
    assert alert.status == "accepted" and alert.ts
    return alert


@pytest.mark.parametrize(("name", "params"), REMOVALS, ids=["deleted", "replaced"])
def test_removing_the_tag_of_a_public_bucket_reopens_what_it_accepted_as_a_card(
    bot_app: BotApp, name: str, params: dict[str, Any]
) -> None:
    alert = accepted_by_tag(bot_app, "was-allowed")
    bot_app.s3.delete_bucket_tagging(Bucket="was-allowed")
    removal = write("was-allowed", name, params, minutes_ago=1, user="trent")
    [change] = bot_app.services.alerts.process([removal])
    assert (change.alert_id, change.kind, change.status) == (alert.id, "reopened", "open")
    bot_app.services.outbox.flush()

    [card] = bot_app.standin.top_level()  # the quiet line, now the open card (updated in place)
    assert card.ts == alert.ts and card.blocks[0]["type"] == "header"
    assert actions(card.blocks) == ["ack", "fix", "who_changed", "allow"]
    [reply] = [c.params for c in bot_app.standin.accepted("chat.postMessage") if "Reopened" in str(c.params["text"])]
    assert reply["thread_ts"] == alert.ts
    assert reply["reply_broadcast"] in (True, "true", "1"), "a message far up the channel changing is easy to miss"
    assert ("Reopened: the bucket tag bucketwatch:public=allowed that accepted it was removed by trent;"
            " the bucket is still public") in reply["text"]
    # The same removal seen again (another path): nothing more.
    assert bot_app.services.alerts.process([removal]) == []
    bot_app.services.outbox.flush()
    assert sum("Reopened" in str(r.text) for r in bot_app.standin.replies(alert.ts)) == 1


def test_removing_the_tag_of_a_bucket_no_longer_public_reopens_nothing_and_the_next_change_is_a_card(
    bot_app: BotApp,
) -> None:
    alert = accepted_by_tag(bot_app, "closed-since")
    bot_app.s3.delete_bucket_policy(Bucket="closed-since")
    bot_app.s3.delete_bucket_tagging(Bucket="closed-since")
    alerts = bot_app.services.alerts
    assert alerts.process([write("closed-since", "DeleteBucketTagging", {"tagging": ""}, minutes_ago=3)]) == []
    assert alerts.get(alert.id).status == "accepted"
    # Within the tag's five cached minutes the bucket is made public again: judged without the tag, a card.
    bot_app.s3.put_bucket_policy(Bucket="closed-since", Policy=public_policy("closed-since"))
    [change] = alerts.process([write("closed-since", "PutBucketPolicy", {"bucketPolicy": policy("closed-since")},
                                         minutes_ago=1)])
    assert change.kind == "opened" and change.alert_id != alert.id
    bot_app.services.outbox.flush()
    card = bot_app.standin.message(alerts.get(change.alert_id).ts)
    assert card is not None and card.blocks[0]["type"] == "header"


def test_a_tag_write_that_keeps_the_allow_tag_reopens_nothing(bot_app: BotApp) -> None:
    alert = accepted_by_tag(bot_app, "still-allowed")
    kept = {"tagging": "", "Tagging": {"xmlns": XMLNS, "TagSet": {"Tag": [
        {"Key": "team", "Value": "web"}, {"Key": "bucketwatch:public", "Value": "allowed"}]}}}
    changes = bot_app.services.alerts.process([write("still-allowed", "PutBucketTagging", kept, minutes_ago=1)])
    # The tag write is a finding of its own (the tag cannot hide it), on a new alert; the old one stays closed.
    assert [(c.kind, c.detection) for c in changes] == [("opened", "allow_tag_added")]
    assert changes[0].alert_id != alert.id
    assert bot_app.services.alerts.get(alert.id).status == "accepted"


def test_a_card_accepted_by_an_exception_shows_open_again_when_it_reopens(bot_app: BotApp) -> None:
    """Before, a re-opened alert whose card had been posted got a thread line, and the card still said
    "accepted" (with no buttons) while the alert was open."""
    alert = bot_app.open_alert("seasonal-site")
    assert "Exception #1" in bot_app.answer("allow seasonal-site 1d summer campaign")["text"]
    bot_app.services.outbox.flush()
    assert "fix" not in actions(bot_app.standin.message(alert.ts).blocks)  # accepted: nothing to fix
    bot_app.services.alerts.reopen(alert.id, "exception #1 expired; the bucket is still public")
    bot_app.services.outbox.flush()
    card = bot_app.standin.message(alert.ts)
    assert card is not None and "ack" in actions(card.blocks) and "fix" in actions(card.blocks)
    assert bot_app.services.alerts.get(alert.id).status == "open"


def test_the_lookup_poller_asks_for_tag_writes_by_name() -> None:
    """In a read-heavy window LookupEvents is asked by event name: a removal must be among the names."""
    assert TAG_WRITES <= set(LOOKUP_EVENT_NAMES)


# ---- the card about the tag itself ---------------------------------------------------------------------


def test_turning_block_public_access_on_does_not_close_the_tags_card(bot_app: BotApp) -> None:
    """Before, an all-on PutBucketPublicAccessBlock "resolved" the card about the tag while the tag stayed on
    the bucket: the next weakening and public policy were then quiet lines, and no card was open."""
    bucket = "tag-then-lock"
    bot_app.bucket(bucket, off=())
    bot_app.s3.put_bucket_tagging(Bucket=bucket, Tagging=TAG)
    alerts = bot_app.services.alerts
    [tagged] = alerts.process([write(bucket, "PutBucketTagging", TAG_PARAMS, minutes_ago=4)])
    all_on = {"PublicAccessBlockConfiguration": {**dict.fromkeys(OFF, True), "xmlns": XMLNS}}
    assert alerts.process([write(bucket, "PutBucketPublicAccessBlock", all_on, minutes_ago=3)]) == []
    assert alerts.get(tagged.alert_id).status == "open"
    bot_app.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(OFF, False))
    bot_app.s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))
    all_off = {"PublicAccessBlockConfiguration": {**dict.fromkeys(OFF, False), "xmlns": XMLNS}}
    later = alerts.process([write(bucket, "PutBucketPublicAccessBlock", all_off, minutes_ago=2),
                            write(bucket, "PutBucketPolicy", {"bucketPolicy": policy(bucket)}, minutes_ago=1)])
    assert {c.alert_id for c in later} == {tagged.alert_id}  # they join the open card, not quiet lines
    assert "suppressed" not in [c.kind for c in later]
    assert alerts.get(tagged.alert_id).severity == "critical"


def test_removing_the_tag_closes_the_card_about_writing_it(bot_app: BotApp) -> None:
    bucket = "tag-undone"
    bot_app.bucket(bucket, off=())
    alerts = bot_app.services.alerts
    [tagged] = alerts.process([write(bucket, "PutBucketTagging", TAG_PARAMS, minutes_ago=2)])
    [removed] = alerts.process([write(bucket, "DeleteBucketTagging", {"tagging": ""}, minutes_ago=1, user="trent")])
    assert (removed.alert_id, removed.kind) == (tagged.alert_id, "resolved")
    closed = alerts.get(tagged.alert_id)
    assert closed.status == "resolved" and closed.close_reason.startswith("Allow tag removed by trent")
