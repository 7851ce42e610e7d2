"""The demo's chapter on the allow tag's two sides: a tagged bucket's change is one quiet line, and
removing the tag while the bucket is still public turns that line back into a card."""

from __future__ import annotations

import copy
import json
from typing import Any

from demo.slack_view import wait_reply
from demo.world import CHANNEL, Demo

BUCKET = "press-kit"
TAG = {"Key": "bucketwatch:public", "Value": "allowed"}


def tell_tag_removal(demo: Demo) -> None:
    story, slack = demo.story, demo.slack
    story.title(f"{BUCKET} is tagged bucketwatch:public=allowed by its owner: its public policy is one quiet line")
    demo.s3.create_bucket(Bucket=BUCKET)
    demo.s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [TAG]})  # tagged long ago, outside this window
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                      "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}
    demo.s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    demo._serve(_write(demo, "PutBucketPolicy", {"policy": "", "bucketPolicy": policy}, "dana", 1), 0.5)
    demo.poll()
    line = next(m for m in slack.top_level(CHANNEL) if BUCKET in m.text)
    demo.show("#security-alerts · bucketwatch", line.text, line.blocks)

    story.title(f"mallory removes the tag while {BUCKET} is still public: the line becomes a card, and the"
                " channel hears why")
    demo.s3.delete_bucket_tagging(Bucket=BUCKET)
    demo._serve(_write(demo, "DeleteBucketTagging", {"tagging": ""}, "mallory", 2), 0.2)
    demo.poll()
    card = slack.message(line.ts)
    if card is not None:
        demo.show("#security-alerts · bucketwatch (the same message, updated)", card.text, card.blocks[:2])
    reply = wait_reply(demo, line.ts, 0, "Reopened")
    demo.show("thread reply, also sent to the channel", reply.text, reply.blocks)


def _write(demo: Demo, name: str, params: dict[str, Any], user: str, n: int) -> dict[str, Any]:
    """A sample record re-made as `user`'s `name` on the bucket."""
    record = copy.deepcopy(demo.records["brett-bpa-0000-4000-8000-000000000002"])
    identity = record["userIdentity"]
    record.update(eventID=f"presskit-0000-4000-8000-00000000000{n}", eventName=name,
                  userIdentity={**identity, "userName": user, "arn": identity["arn"].rsplit("/", 1)[0] + f"/{user}"},
                  requestParameters={"bucketName": BUCKET, "Host": f"{BUCKET}.s3.us-east-1.amazonaws.com", **params})
    return dict(record)
