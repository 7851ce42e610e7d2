"""Two chapters of the story: EventBridge brings a change in seconds, and an access point's fix stays
on the access point."""

from __future__ import annotations

import json
import time

from bot.core.bpa import FLAGS
from bot.sources.listener import QueueListener
from demo.render import render_blocks
from demo.slack_view import verdict_and_who, wait_reply
from demo.world import ACCOUNT, ALICE, Demo
from standins.cloudtrail import public_bpa_off
from standins.eventbridge import api_call_event

_POINT = "dashboards-ap"


def tell_access_point(demo: Demo) -> None:
    """dana gives an access point a policy with a public statement beside her team's own grant."""
    team = {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/analytics"},
            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/{_POINT}/object/*"}
    everyone = {**team, "Sid": "Everyone", "Principal": "*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [team, everyone]})
    off = dict.fromkeys(FLAGS, False)
    demo.s3control.create_access_point(AccountId=ACCOUNT, Name=_POINT, Bucket="analytics-exports",
                                       PublicAccessBlockConfiguration=off)  # its own guard off, on purpose
    demo.s3control.put_access_point_policy(AccountId=ACCOUNT, Name=_POINT, Policy=policy)
    record = json.loads(json.dumps(demo.records["5ample00-0000-4000-8000-000000000003"]))
    record.update(eventID="appol000-0000-4000-8000-000000000012", eventName="PutAccessPointPolicy")
    record["requestParameters"] = {"name": _POINT, "accountId": ACCOUNT, "policy": policy,
                                   "Host": f"{ACCOUNT}.s3-control.us-east-1.amazonaws.com"}
    demo._serve(record, 0.3)
    demo.poll()
    card = next(c for c in demo.slack.top_level(demo.settings.alert_channel) if _POINT in c.text)
    alert_id = next(a.id for a in demo.services.alerts.open_alerts() if a.access_point == _POINT)
    demo.show("#security-alerts · bucketwatch", card.text, verdict_and_who(card.blocks))
    account_bpa = demo.s3control.get_public_access_block(AccountId=ACCOUNT)["PublicAccessBlockConfiguration"]
    count = len(demo.slack.replies(card.ts))
    demo.press("fix", str(alert_id), ALICE, card.ts)
    fixed = wait_reply(demo, card.ts, count, "Undo")
    demo.show("thread reply", fixed.text, fixed.blocks)
    left = json.loads(demo.s3control.get_access_point_policy(AccountId=ACCOUNT, Name=_POINT)["Policy"])
    story = demo.story
    story.say(f"  {_POINT} policy now: {[s['Sid'] for s in left['Statement']]} (the team's grant stays)")
    after = demo.s3control.get_public_access_block(AccountId=ACCOUNT)["PublicAccessBlockConfiguration"]
    story.say(f"  account-wide Block Public Access unchanged: {'yes' if after == account_bpa else 'NO'}")


def tell_eventbridge(demo: Demo) -> None:
    """EVENT_QUEUE_URLS: the API call itself, seconds after it, through the running bot's queue listener."""
    demo.story.title("EventBridge forwards the API call itself (EVENT_QUEUE_URLS): a card in seconds, not minutes")
    demo.s3.create_bucket(Bucket="ml-training-data")
    demo.s3.put_public_access_block(Bucket="ml-training-data", PublicAccessBlockConfiguration={
        f: False for f in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")})
    poller = demo.services.poller
    [queue] = [q for q in poller.queues if q.url == demo.event_queue_url]
    listener = QueueListener(poller, queue, wait_seconds=2)  # `run` starts one per queue, waiting 20 s
    listener.start()
    record = public_bpa_off(bucket="ml-training-data", user="dana")
    posted = len(demo.slack.accepted("chat.postMessage"))
    sent = time.monotonic()
    demo.sqs.send_message(QueueUrl=demo.event_queue_url, MessageBody=json.dumps(api_call_event(record)))
    card = demo.wait("chat.postMessage", posted + 1)[-1]
    listener.stop(timeout=5)
    demo.story.say(f"  on the queue → card in the channel: {card.at - sent:.1f} s (LookupEvents: 5–15 minutes)")
    demo.story.say("   • " + " ".join(render_blocks([], fallback=card.params.get("text", ""), width=10_000)))
    demo._serve(record, 0)  # minutes later LookupEvents serves the same event: its id is known, no second card
    demo.poll()
    cards = [c for c in demo.slack.top_level(demo.settings.alert_channel) if "ml-training-data" in c.text]
    demo.story.say(f"  LookupEvents served the same event later: {len(cards)} card for ml-training-data")
