"""The demo's chapter on asking the actor: brett says "not me"; dana says "yes, intended" and alice approves."""

from __future__ import annotations

import json
import time
from typing import Any

from demo.render import render_blocks
from demo.world import ALICE, BRETT, CHANNEL, DANA, NAMES, SECRET, Demo
from standins.requests import block_action, encode_payload, post, view_submission

DANA_BUCKET = "dana-docs-site"


def tell_ask(demo: Demo, brett_card: Any, bucket_of: Any) -> None:
    """`bucket_of(name)`: the open alert id of a bucket (story._alert_id)."""
    story, slack = demo.story, demo.slack
    story.title("The bot asks the person behind each change by DM (ACTOR_EMAIL_DOMAIN=example.com)")
    (dm,) = slack.top_level(f"D{BRETT}")
    demo.show("DM to brett · bucketwatch", dm.text, dm.blocks)
    story.say("  The CI role's card says instead: " + _ask_line(demo, "release-artifacts"))

    story.title("brett presses Not me: severity up one step, responders mentioned, the card says so")
    replies = len(slack.replies(brett_card.ts))
    _press(demo, "ask_not_me", str(bucket_of("brett-public-test-bucket")), BRETT)
    story.say("  card now says: " + _wait_line(demo, "brett-public-test-bucket", "Actor denies"))
    reply = slack.replies(brett_card.ts)[replies:]
    if reply:
        demo.show("thread reply", reply[-1].text, reply[-1].blocks)

    story.title("dana makes her docs bucket public, says Yes, intended, and alice approves with one click")
    demo.s3.create_bucket(Bucket=DANA_BUCKET)
    demo._serve(_dana_policy(demo), 1)
    demo.poll()
    alert_id = bucket_of(DANA_BUCKET)
    _press(demo, "ask_intended", str(alert_id), DANA)
    demo.wait("views.open", 1)
    values = {"reason": {"reason": {"type": "plain_text_input", "value": "Public docs site, reviewed in SEC-77"}},
              "expiry": {"expiry": {"type": "plain_text_input", "value": "90d"}}}
    post(demo.url, encode_payload(view_submission("ask_intended_modal", values, str(alert_id), user=DANA)),
         secret=SECRET)
    card = next(c for c in slack.top_level(CHANNEL) if DANA_BUCKET in c.text)
    approve = _wait_for_button(demo, card.ts, "approve_exception")
    story.say("  card now says: " + _wait_line(demo, DANA_BUCKET, "awaiting"))
    demo.press("approve_exception", approve, ALICE, card.ts)
    story.say("  after alice's click: " + _wait_line(demo, DANA_BUCKET, "approved by"))


def _press(demo: Demo, action_id: str, value: str, user: str) -> None:
    payload = block_action(action_id, value, user=user, channel=f"D{user}", response_url=demo.slack.response_url())
    if post(demo.url, encode_payload(payload), secret=SECRET).status != 200:
        raise RuntimeError("the bot refused a signed press")


def _ask_line(demo: Demo, bucket: str) -> str:
    """The card's status section after its headline: status, then who was asked and what they said."""
    alert = next(a for a in reversed(_alerts(demo)) if a.bucket == bucket)
    message = demo.slack.message(alert.ts)
    section = dict(message.blocks[1]) if message and len(message.blocks) > 1 else {}
    text = "\n".join(section.get("text", {}).get("text", "").splitlines()[1:])
    lines = render_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": text}}], width=10_000, users=NAMES)
    return " / ".join(line.strip() for line in lines if line.strip())


def _wait_line(demo: Demo, bucket: str, wanted: str) -> str:
    """The card's lines once they contain `wanted` (presses are handled after Slack's ack, in bolt's thread)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        demo.services.outbox.flush()
        line = _ask_line(demo, bucket)
        if wanted in line:
            return line
        time.sleep(0.05)
    raise RuntimeError(f"the card of {bucket} never said {wanted!r}")


def _alerts(demo: Demo) -> list[Any]:
    rows = demo.services.store.db.execute("SELECT id FROM alerts ORDER BY id").fetchall()
    return [demo.services.alerts.get(r[0]) for r in rows]


def _wait_for_button(demo: Demo, ts: str, action: str) -> str:
    for _ in range(300):
        for reply in demo.slack.replies(ts):
            for block in reply.blocks or []:
                for element in block.get("elements", []):
                    if isinstance(element, dict) and element.get("action_id") == action:
                        return str(element["value"])
        demo.services.outbox.flush()
        time.sleep(0.05)
    raise RuntimeError(f"no {action} button in the thread")


def _dana_policy(demo: Demo) -> dict[str, Any]:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                      "Resource": f"arn:aws:s3:::{DANA_BUCKET}/*"}]}
    demo.s3.put_bucket_policy(Bucket=DANA_BUCKET, Policy=json.dumps(policy))
    record = json.loads(json.dumps(demo.records["5ample00-0000-4000-8000-000000000003"]))
    record["eventID"] = "dana-pol-0000-4000-8000-000000000012"
    record["requestParameters"] = {"bucketName": DANA_BUCKET, "Host": f"{DANA_BUCKET}.s3.us-east-1.amazonaws.com",
                                   "policy": "", "bucketPolicy": policy}
    return dict(record)
