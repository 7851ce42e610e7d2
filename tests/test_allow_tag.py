"""The bucket tag bucketwatch:public=allowed never silences on its own (issue 8, defect 4).

Writing the tag is a low-severity finding the tag cannot hide; a change the tag accepts is one quiet
line in the channel (later ones reply under it) and a section of the digest; a responder's exception
in the allow list still silences. Against the app as `run` wires it (moto, the Slack stand-in).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from slack_sdk import WebClient

from bot.alerts.allow_tag import TagAllowance
from bot.core.record import Record
from bot.services.digest import DigestService
from bot.slack.notifier import REPLY_CAP, SlackNotifier
from bot.slack.outbox import METADATA_TYPE, Outbox
from bot.store import index
from bot.store.database import Store
from standins.cloudtrail import s3_record
from tests.slack_requests import ACCOUNT, BotApp, bot_app, bpa_record
from tests.slack_standin import SlackStandin, slack_standin
from tests.test_alerts import ALL_OFF, CHANNEL, PUBLIC_POLICY, bpa, make_record, wired
from tests.wiring import alert_service

# pytest fixtures used by parameter name in this module
FIXTURES = (bot_app, slack_standin, wired)
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
TAG = {"TagSet": [{"Key": "bucketwatch:public", "Value": "allowed"}]}


def tagging(value: str = "allowed", *, others: tuple[tuple[str, str], ...] = (("team", "web"),)) -> dict[str, Any]:
    """PutBucketTagging's request parameters as CloudTrail logs them (TagSet.Tag holding a list)."""
    tags = [{"Key": k, "Value": v} for k, v in others] + [{"Key": "bucketwatch:public", "Value": value}]
    return {"tagging": "", "Tagging": {"xmlns": XMLNS, "TagSet": {"Tag": tags}}}


def write(bucket: str, name: str, params: dict[str, Any], *, minutes_ago: float, user: str = "mallory") -> Record:
    """A write by IAM user `user` in moto's account, `minutes_ago` minutes ago."""
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return Record(s3_record(name, bucket=bucket, account=ACCOUNT, when=when, params=params, user=user))


def posted(bot: BotApp) -> str:
    """Everything the bot sent to Slack, as Slack received it."""
    return json.dumps([c.params for c in bot.standin.calls], ensure_ascii=False)


def actions(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


# ---- writing the tag is itself a finding, which the tag cannot hide ------------------------------


def test_an_attacker_tags_a_bucket_then_deletes_its_block_and_the_channel_shows_both(bot_app: BotApp) -> None:
    bot_app.bucket("h1-assets", off=())
    bot_app.s3.put_bucket_tagging(Bucket="h1-assets", Tagging=TAG)  # the live read now finds the tag
    bot_app.s3.delete_public_access_block(Bucket="h1-assets")
    alerts = bot_app.services.alerts
    tagged = alerts.process([write("h1-assets", "PutBucketTagging", tagging(), minutes_ago=3)])
    opened = alerts.process([write("h1-assets", "DeleteBucketPublicAccessBlock", {"publicAccessBlock": ""},
                                   minutes_ago=1)])
    assert [(c.kind, c.detection) for c in tagged + opened] == [
        ("opened", "allow_tag_added"), ("added", "bucket_bpa_deleted")]
    bot_app.services.outbox.flush()

    cards = bot_app.standin.top_level()
    assert len(cards) == 1, "one card for the bucket, opened by the tag write"
    card = cards[0]
    blocks = json.dumps(card.blocks, ensure_ascii=False)
    # The deletion made it worse: the header says so, and the card asks a responder to act.
    assert card.blocks[0]["text"]["text"].endswith("HIGH: Block Public Access removed from bucket h1-assets")
    assert "Bucket h1-assets tagged bucketwatch:public=allowed" in blocks
    assert "`tag bucketwatch:public`: unknown → allowed" in blocks
    assert actions(card.blocks) == ["ack", "fix", "who_changed", "allow"]
    # …and the worse news is broadcast from its thread to the channel.
    [reply] = bot_app.standin.replies(card.ts)
    assert "Block Public Access removed from bucket h1-assets" in json.dumps(reply.blocks)
    broadcast = [c for c in bot_app.standin.accepted("chat.postMessage") if c.params.get("thread_ts")]
    assert broadcast[0].params.get("reply_broadcast") in (True, "true", "1")


def test_a_responders_exception_still_silences_the_tag_write(bot_app: BotApp) -> None:
    bot_app.bucket("docs-site")
    answer = bot_app.answer("allow docs-site 30d Public docs site, SEC-9")
    assert "docs-site" in json.dumps(answer)
    bot_app.s3.put_bucket_tagging(Bucket="docs-site", Tagging=TAG)
    shown = len(bot_app.standin.top_level())
    alerts = bot_app.services.alerts
    changes = alerts.process([write("docs-site", "PutBucketTagging", tagging(), minutes_ago=1)])
    assert [c.kind for c in changes] == ["suppressed"]
    alert = alerts.get(changes[0].alert_id)
    assert alert.status == "accepted" and (alert.closed_by or "").startswith("exception #")
    bot_app.services.outbox.flush()
    assert len(bot_app.standin.top_level()) == shown, "a responder's exception is audited; it posts nothing"


def test_the_tag_set_to_something_else_is_not_a_finding(bot_app: BotApp) -> None:
    changes = bot_app.services.alerts.process([write("plain", "PutBucketTagging", tagging("no"), minutes_ago=1)])
    assert changes == []


# ---- a change the tag accepts: one quiet line, later ones under it -------------------------------


def test_a_change_the_tag_accepts_is_one_quiet_line_in_the_channel(bot_app: BotApp) -> None:
    bot_app.bucket("public-site")
    bot_app.s3.put_bucket_tagging(Bucket="public-site", Tagging=TAG)
    alerts = bot_app.services.alerts
    hostile = "<!channel>-ops"  # an attacker-chosen name in the record must stay text
    first = alerts.process([write("public-site", "PutBucketPublicAccessBlock",
                                  {"PublicAccessBlockConfiguration": {**ALL_OFF, "xmlns": XMLNS}},
                                  minutes_ago=2, user=hostile)])
    again = alerts.process([Record(bpa_record("public-site", event_id="tag-2", off=("RestrictPublicBuckets",)))])
    assert [c.kind for c in first + again] == ["suppressed", "suppressed"]
    assert first[0].alert_id == again[0].alert_id
    alert = alerts.get(first[0].alert_id)
    assert alert.status == "accepted" and "bucket tag bucketwatch:public=allowed" in (alert.close_reason or "")
    bot_app.services.outbox.flush()

    [line] = bot_app.standin.top_level()
    assert [b["type"] for b in line.blocks] == ["context"], "quiet: no header, no buttons"
    text = line.blocks[0]["elements"][0]["text"]
    assert text.startswith(":label: bucket `public-site` · account `123456789012` · Block Public Access weakened on"
                           " bucket public-site: all four Block Public Access flags turned off: `BlockPublicAcls`"
                           " unknown → off, `IgnorePublicAcls` unknown → off,")
    assert "`RestrictPublicBuckets` unknown → off, by *&lt;!channel&gt;-ops* <!date^" in text
    assert ("Not alerted: the bucket's own tag `bucketwatch:public=allowed` says it is public on purpose."
            " Remove the tag to be alerted.") in text
    assert f"alert #{alert.id}" in text
    assert "<!channel>" not in posted(bot_app) and "<@" not in posted(bot_app)
    assert line.text.startswith("Not alerted (bucket tag bucketwatch:public=allowed): Block Public Access")
    # The quiet line is the alert's one message: a crash while posting it adopts it, never posts it twice.
    assert line.metadata and line.metadata["event_type"] == METADATA_TYPE
    assert alerts.get(alert.id).ts == line.ts

    [reply] = bot_app.standin.replies(line.ts)
    assert [b["type"] for b in reply.blocks] == ["context"]
    assert reply.blocks[0]["elements"][0]["text"].startswith(
        ":label: Also accepted by the tag: Block Public Access weakened on bucket public-site:"
        " RestrictPublicBuckets turned off: `RestrictPublicBuckets` unknown → off, by *mallory* <!date^")
    # The same change on an untagged bucket is a card.
    assert bot_app.open_alert("private-data").ts
    status = json.dumps(bot_app.answer("status"), ensure_ascii=False)
    assert "Buckets whose own tag `bucketwatch:public=allowed` accepted changes (posted as quiet lines" in status
    assert "not alerts): 1" in status


def _tag_accepting(store: Store, standin: SlackStandin) -> SimpleNamespace:
    """The engine and the outbox with every bucket's tag saying "public on purpose"."""
    outbox = Outbox(store, WebClient(token="xoxb-test", base_url=standin.url), CHANNEL)
    def tag_says_allowed(bucket: str | None, account: str | None, access_point: str | None = None) -> TagAllowance:
        return TagAllowance(bucket or "", account or "")

    service = alert_service(store, outbox=outbox, exceptions_fn=tag_says_allowed)
    return SimpleNamespace(service=service, outbox=outbox)


def test_replies_under_the_quiet_line_are_capped(store: Store, slack_standin: SlackStandin) -> None:
    w = _tag_accepting(store, slack_standin)
    w.service.process([bpa(ALL_OFF, minutes=m) for m in range(10)])
    w.outbox.flush()
    [line] = slack_standin.top_level(CHANNEL)
    replies = slack_standin.replies(line.ts)
    # The first change is the line itself; the next REPLY_CAP - 1 reply; then one note says the rest are not.
    assert len(replies) == REPLY_CAP
    assert all("Also accepted by the tag" in json.dumps(r.blocks) for r in replies[:-1])
    assert "no longer posted one by one" in replies[-1].text


def test_with_min_severity_a_public_policy_after_a_muted_precursor_still_gets_its_quiet_line(
        store: Store, slack_standin: SlackStandin) -> None:
    """Before, the tag-accepted alert kept its first finding's severity: a low website change (muted by
    MIN_SEVERITY=medium) then a public policy on the same bucket posted nothing at all."""
    w = _tag_accepting(store, slack_standin)
    ranks = ("critical", "high", "medium", "low")
    w.service.notify = SlackNotifier(w.service, w.outbox, muted=lambda s: ranks.index(s) > ranks.index("medium"))
    w.service.process([make_record("PutBucketWebsite", {"WebsiteConfiguration": {}})])
    w.outbox.flush()
    assert slack_standin.top_level(CHANNEL) == []  # low: muted
    [change] = w.service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=5)])
    w.outbox.flush()
    assert w.service.get(change.alert_id).severity == "critical"
    [line] = slack_standin.top_level(CHANNEL)
    assert "policy made public" in line.text and "Not alerted (bucket tag" in line.text


def test_an_alert_accepted_by_the_tag_before_this_existed_gets_its_line_at_the_next_change(
        store: Store, slack_standin: SlackStandin) -> None:
    w = _tag_accepting(store, slack_standin)
    first = w.service.process([bpa(ALL_OFF)])[0].alert_id
    store.db.execute("DELETE FROM outbox")  # as an older bot left it: accepted, never shown
    w.service.process([bpa(ALL_OFF, minutes=1)])
    w.outbox.flush()
    [line] = slack_standin.top_level(CHANNEL)
    assert w.service.get(first).ts == line.ts and len(slack_standin.replies(line.ts)) == 1


# ---- before values and the digest --------------------------------------------------------------


def test_the_tag_finding_says_what_the_tag_was_before(wired: SimpleNamespace) -> None:
    index.ingest(wired.store, [make_record("PutBucketTagging", tagging("no"), minutes=-30)])
    wired.service.process([make_record("PutBucketTagging", tagging())])
    wired.outbox.flush()
    [card] = wired.slack.top_level(CHANNEL)
    assert "`tag bucketwatch:public`: no → allowed" in json.dumps(card.blocks, ensure_ascii=False)
    index.ingest(wired.store, [make_record("PutBucketTagging", {"tagging": "", "Tagging": {"TagSet": {}}},
                                           bucket="other", minutes=-30)])
    found = wired.service.process([make_record("PutBucketTagging", tagging(), bucket="other")])
    [finding] = wired.service.finding_objects(found[0].alert_id)
    assert [str(c) for c in finding.changes] == ["tag bucketwatch:public: not set → allowed"]


def test_the_digest_lists_what_the_tag_accepted_in_the_last_day(store: Store, slack_standin: SlackStandin) -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    clock = SimpleNamespace(now=now - timedelta(hours=30))
    w = _tag_accepting(store, slack_standin)
    w.service.clock = lambda: clock.now
    w.service.process([bpa(ALL_OFF, bucket="old-site", minutes=-2000)])  # accepted 30 h ago: not news
    clock.now = now - timedelta(hours=2)
    w.service.process([bpa(ALL_OFF, bucket="shop-assets")])
    clock.now = now - timedelta(hours=1)
    w.service.process([make_record("DeleteBucketPublicAccessBlock", bucket="shop-assets", minutes=5)])
    digest = DigestService(store, tz="UTC").build(now)
    assert [t.bucket for t in digest.figures.by_tag] == ["shop-assets"] and not digest.figures.quiet
    assert "Accepted by tag (24 h): 1" in digest.plain and "accepted by tag 1" in digest.text
    section = digest.plain.split("Not alerted: accepted by the bucket's own tag (1)\n", 1)[1]
    assert section.startswith(
        "  • shop-assets (111122223333 us-east-1) · 2 change(s), latest Thu 26 Nov 11:00 UTC"
        " · BlockPublicAcls: unknown → deleted (off), IgnorePublicAcls: unknown → deleted (off),"
        " BlockPublicPolicy: unknown → deleted (off), RestrictPublicBuckets: unknown → deleted (off) · by")
    assert "by sam@example.com (via role AWSReservedSSO_Admin_0123456789abcdef) · alert #2" in section
    assert "Remove it to be alerted" in section
    slack = json.dumps([b.to_dict() for b in digest.blocks], ensure_ascii=False)
    assert "`shop-assets`" in slack and "`bucketwatch:public=allowed`" in slack
