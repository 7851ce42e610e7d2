"""The chapters of `python -m bot demo`, in the order a newcomer should see them."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bot.cli.scan import format_finding
from bot.core.record import Record
from bot.sources.worker import Worker
from bot.sources.worker import run as run_worker
from demo.ask_story import tell_ask
from demo.handoff import tell_routing
from demo.reach import tell_access_point, tell_eventbridge
from demo.render import render_blocks
from demo.slack_view import button_value, status_line, verdict_and_who, wait_reply
from demo.tag_story import tell_tag_removal
from demo.world import ACCOUNT, ALICE, MALLORY, NAMES, ORG_TRAIL_BUCKET, Demo, Story, _isolate_environment
from detections import evaluate
from standins.cloudtrail import FakeCloudTrailServer
from standins.slack import SlackStandin

BRETT_BUCKET = "brett-public-test-bucket"


def tell(demo: Demo) -> int:

    story = demo.story
    print("bucketwatch demo: every AWS and Slack call below crosses a real HTTP connection on this machine,")
    print("to moto (S3, S3 Control, STS), a CloudTrail LookupEvents stand-in and a Slack Web API stand-in.")

    story.title("Scan the bundled sample trail (python -m bot scan bot/samples/trail)")
    _scan(demo)

    story.title("The world: four buckets in account 111122223333, as the trail left them")
    demo.build_world()
    story.say(f"  {BRETT_BUCKET}: {demo.flags(BRETT_BUCKET)}")
    story.say("  analytics-exports: bucket policy grants Principal * s3:GetObject")
    story.say("  release-artifacts: ACL public-read-write, but account-level IgnorePublicAcls is on")
    story.say("  partner-drop: policy grants account 444455556666")

    story.title("The poller reads CloudTrail and the bot posts one card per exposed bucket")
    demo.start_bot()
    for event_id, minutes in _FIRST_WAVE:
        demo._serve(demo.records[event_id], minutes)
    report = demo.poll()
    story.say(f"  poll: {_report_line(report)}")
    cards = demo.slack.top_level(demo.settings.alert_channel)
    story.say(f"  {len(cards)} cards in the channel:")
    for card in cards:
        story.say("   • " + " ".join(render_blocks([], fallback=card.text, width=10_000)))
    brett = next(c for c in cards if BRETT_BUCKET in c.text)
    demo.show("#security-alerts · bucketwatch", brett.text, brett.blocks)
    releases = next((c for c in cards if "release-artifacts" in c.text), None)
    if releases is not None:
        story.say("  The ACL card names the layer that still holds, and the hostile user agent stays plain text:")
        demo.show("#security-alerts · bucketwatch", releases.text, verdict_and_who(releases.blocks))

    tell_ask(demo, brett, lambda bucket: _alert_id(demo, bucket))

    story.title("A second change on the same bucket goes to the card's thread, not a new card")
    second = _brett_public_policy(demo)
    demo._serve(second, 1)
    demo.poll()
    replies = demo.slack.replies(brett.ts)
    story.say(f"  still {len(demo.slack.top_level(demo.settings.alert_channel))} cards; thread replies: {len(replies)}")
    if replies:
        demo.show("thread reply", replies[-1].text, replies[-1].blocks)

    story.title("Data events come from the trail bucket: an object made public (TRAIL_BUCKETS)")
    key = demo.deliver_log_file([_object_made_public(demo)])
    demo.s3.put_object_acl(Bucket="hr-reports", Key="2026/salaries.xlsx", ACL="public-read")
    story.say(f"  CloudTrail delivered s3://org-cloudtrail/{key}")
    demo.poll()
    hr = next((c for c in demo.slack.top_level(demo.settings.alert_channel) if "hr-reports" in c.text), None)
    if hr is None:
        raise RuntimeError("the trail bucket's data event did not become a card")
    demo.show("#security-alerts · bucketwatch", hr.text, verdict_and_who(hr.blocks))

    story.title("An organisation trail announces its files on SQS (TRAIL_QUEUE_URLS): no listing at scale")

    second_object = _object_made_public(demo, "2026/bonuses.xlsx", "data0000-0000-4000-8000-000000000011")
    key = demo.deliver_log_file([second_object], bucket=ORG_TRAIL_BUCKET, tag="org00001")
    demo.notify(ORG_TRAIL_BUCKET, key)
    story.say(f"  s3://{ORG_TRAIL_BUCKET}/{key} announced on queue org-trail-files")
    quiet = {**json.loads(json.dumps(second_object)), "eventID": "data0000-0000-4000-8000-000000000013",
             "eventName": "GetObject", "readOnly": True}
    by_topic = demo.deliver_log_file([quiet], bucket=ORG_TRAIL_BUCKET, tag="org00003")
    demo.announce_by_trail_topic(ORG_TRAIL_BUCKET, by_topic)
    story.say(f"  s3://{ORG_TRAIL_BUCKET}/{by_topic} announced by the trail's own SNS topic (s3Bucket, s3ObjectKey)")
    report = demo.poll()
    read = sum(s.seen for s in report.sources if s.source == "sqs:org-trail-files")
    story.say(f"  both files read from the queue: {read} records, one of them a change")
    left = demo.sqs.get_queue_attributes(QueueUrl=demo.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    story.say(f"  messages left on the queue after the poll: {left['Attributes']['ApproximateNumberOfMessages']}")
    replies = demo.slack.replies(hr.ts)
    story.say(f"  same bucket, so it went to the hr-reports card's thread ({len(replies)} reply):")
    if replies:
        demo.show("thread reply", replies[-1].text, replies[-1].blocks)

    story.title("Beyond one machine: stateless scan workers read the files, the bot reads their findings")
    third = _object_made_public(demo, "2026/payroll.csv", "data0000-0000-4000-8000-000000000012")
    key = demo.deliver_log_file([third], bucket=ORG_TRAIL_BUCKET, tag="org00002")
    demo.notify(ORG_TRAIL_BUCKET, key, demo.worker_queue_url)
    worker = Worker(lambda _region: demo.s3, demo.sqs, demo.findings_url)  # what `bucketwatch worker` runs
    done = run_worker(worker, demo.worker_queue_url, once=True, wait_seconds=0)
    story.say(f"  bucketwatch worker: {done.files} file, {done.records} record: {done.forwarded} S3 write and"
              f" {done.findings} finding sent to the findings queue")
    demo.poll()
    story.say(f"  the bot read FINDINGS_QUEUE_URL: the hr-reports thread has {len(demo.slack.replies(hr.ts))} replies")

    tell_eventbridge(demo)

    alert_id = _alert_id(demo, BRETT_BUCKET)
    story.title("alice presses Acknowledge: the card's status line changes in place")
    updates = len(demo.slack.accepted("chat.update"))
    demo.press("ack", str(alert_id), ALICE, brett.ts)
    demo.wait("chat.update", updates + 1)
    story.say("  " + status_line(demo.slack.message(brett.ts)))

    story.title("mallory (not a responder) presses Re-enable Block Public Access: refused and audited")
    ephemerals = len(demo.slack.calls_to("chat.postEphemeral"))
    demo.press("fix", str(alert_id), MALLORY, brett.ts)
    refusal = demo.wait("chat.postEphemeral", ephemerals + 1)[-1]
    demo.show("only visible to mallory", refusal.params.get("text", ""), refusal.params.get("blocks"))
    story.say(f"  {BRETT_BUCKET} is untouched: {demo.flags(BRETT_BUCKET)}")

    story.title("mallory forges the press without Slack's signature: 401 before anything reads the body")
    calls = len(demo.slack.calls)
    status = demo.forged_press("fix", str(alert_id), MALLORY, brett.ts)
    story.say(f"  HTTP {status}; Slack calls it caused (ephemeral, DM, response_url): {len(demo.slack.calls) - calls}")

    story.title("alice presses Re-enable Block Public Access: snapshot, fix, read back, verdict")
    before_replies = len(demo.slack.replies(brett.ts))
    demo.press("fix", str(alert_id), ALICE, brett.ts)
    fixed = wait_reply(demo, brett.ts, before_replies, "Undo")
    demo.show("thread reply", fixed.text, fixed.blocks)
    story.say(f"  in AWS now: {demo.flags(BRETT_BUCKET)}")
    story.say("  " + status_line(demo.slack.message(brett.ts)))
    for call in demo.assumed:  # the account's own CloudTrail shows this session and its SourceIdentity
        session = call.get("Arn") or call["RoleArn"]
        story.say(f"  AWS session of the fix: {session}, SourceIdentity={call['SourceIdentity']}")

    story.title("alice presses Undo: the exact snapshot is restored, then she fixes it again")
    undo_value = button_value(fixed.blocks, "undo")
    count = len(demo.slack.replies(brett.ts))
    demo.press("undo", undo_value, ALICE, fixed.ts)
    undone = wait_reply(demo, brett.ts, count)
    demo.show("thread reply", undone.text, undone.blocks)
    story.say(f"  in AWS now: {demo.flags(BRETT_BUCKET)}")
    count = len(demo.slack.replies(brett.ts))
    demo.press("fix", str(alert_id), ALICE, brett.ts)
    wait_reply(demo, brett.ts, count, "Undo")
    story.say(f"  fixed again: {demo.flags(BRETT_BUCKET)}")

    story.title("Who changed this bucket? (button) — the timeline, newest first, from the local index")
    ephemerals = len(demo.slack.calls_to("chat.postEphemeral"))
    demo.press("who_changed", str(alert_id), ALICE, brett.ts)
    timeline = demo.wait("chat.postEphemeral", ephemerals + 1)[-1]
    demo.show("only visible to alice", timeline.params.get("text", ""), timeline.params.get("blocks"))

    story.title("sam re-enables Block Public Access on analytics-exports in the console: the alert resolves itself")
    demo.s3.put_public_access_block(
        Bucket="analytics-exports",
        PublicAccessBlockConfiguration={flag: True for flag in ("BlockPublicAcls", "IgnorePublicAcls",
                                                                 "BlockPublicPolicy", "RestrictPublicBuckets")},
    )
    demo._serve(demo.records[_SAM_EVENT], 0.5)
    demo.poll()
    analytics = next(c for c in cards if "analytics-exports" in c.text)
    story.say("  " + status_line(demo.slack.message(analytics.ts)))

    story.title("partner-drop is shared on purpose: alice allows it for 30 days (the alert closes as accepted)")
    answer = demo.slash("allow partner-drop 30d Partner upload box, reviewed in SEC-123")
    demo.show("/bucketwatch allow partner-drop 30d …", answer.get("text", ""), answer.get("blocks"))
    partner = next(c for c in cards if "partner-drop" in c.text)
    story.say("  " + status_line(demo.slack.message(partner.ts)))

    story.title("An access point is given a public policy: its fix takes out only that statement, not account BPA")
    tell_access_point(demo)

    story.title("mallory tags cdn-assets bucketwatch:public=allowed, then opens it: the tag cannot hide it")
    for record, ago in _tag_then_open(demo):
        demo._serve(record, ago)
    demo.poll()
    cdn = next(c for c in demo.slack.top_level(demo.settings.alert_channel) if "cdn-assets" in c.text)
    changed = [b for b in cdn.blocks if "What changed" in json.dumps(b)]
    demo.show("#security-alerts · bucketwatch", cdn.text, changed)
    story.say(f"  the tag write opened the card; the deletion raised it ({len(demo.slack.replies(cdn.ts))} reply)")

    tell_tag_removal(demo)

    story.title("/bucketwatch status, alerts and allowlist")
    for text in ("status", "alerts", "allowlist"):
        answer = demo.slash(text)
        demo.show(f"/bucketwatch {text}", answer.get("text", ""), answer.get("blocks"))

    tell_routing(demo)

    story.title("The daily digest (posted at DIGEST_TIME in DIGEST_TZ; also `python -m bot digest`)")
    digest = demo.services.digest.build()
    story.message("#security-alerts · bucketwatch", digest.plain.splitlines())

    story.title("The audit trail: every press, allowed or refused")
    for row in demo.services.audit.recent(20)[::-1]:
        # A press on no alert (allow typed as a command) names what it acted on instead.
        target = f"alert #{row.alert_id}" if row.alert_id is not None else (row.detail or "no alert")
        story.say(f"  {row.at:%H:%M:%S} {row.user:<10} {row.action:<12} {target:<32} {row.outcome}")

    story.title("What a platform and Prometheus see on $PORT: /healthz, /readyz, /metrics")
    demo.health.slack_auth.check()
    for path in ("/healthz", "/readyz"):
        status, body = demo.get(path)
        story.say(f"  GET {path} → {status} {' / '.join(body.split(chr(10))).strip(' /')}")
    wanted = ("bucketwatch_polls_total", "bucketwatch_open_alerts", "bucketwatch_remediation_outcomes_total",
              "bucketwatch_outbox_depth")
    for line in demo.get("/metrics")[1].splitlines():
        if line.startswith(wanted):
            story.say(f"  {line}")

    print("\nDemo complete: cards posted, a fix applied, verified, undone and re-applied, one alert resolved by"
          " itself.")
    return 0


# The sample trail's event ids (bot/samples/trail), served in the first poll with their age in minutes.
_FIRST_WAVE = (
    ("5ample00-0000-4000-8000-000000000001", 30),  # GetBucketAcl: a read, never an alert
    ("brett-bpa-0000-4000-8000-000000000002", 28),  # brett turns off all four flags
    ("5ample00-0000-4000-8000-000000000003", 27),  # dana: public bucket policy
    ("5ample00-0000-4000-8000-000000000004", 22),  # dana: cross-account policy (lower severity)
    ("5ample00-0000-4000-8000-000000000005", 12),  # ci-deployer: public-read-write ACL, hostile agent
    ("5ample00-0000-4000-8000-000000000006", 10),  # dana: private ACL (not public)
    ("5ample00-0000-4000-8000-000000000007", 9),  # EC2 noise
)
_SAM_EVENT = "5ample00-0000-4000-8000-000000000008"


def _scan(demo: Demo) -> None:

    records = list(demo.records.values())
    findings = [f for r in records for f in evaluate(Record(r))]
    demo.story.say(f"  {len(records)} records, {len(findings)} findings:")
    for finding in findings:
        demo.story.say("  " + format_finding(finding).replace("\n", "\n  ").splitlines()[0])
    brett = next(f for f in findings if f.bucket == BRETT_BUCKET)
    demo.story.say("\n  " + format_finding(brett).replace("\n", "\n  "))


def _report_line(report: Any) -> str:
    sources = getattr(report, "sources", None) or []
    parts = []
    for source in sources:
        parts.append(f"{getattr(source, 'source', '?')}: {getattr(source, 'seen', '?')} seen,"
                     f" {getattr(source, 'new', '?')} new")
    return "; ".join(parts) or str(report)


def _alert_id(demo: Demo, bucket: str) -> int:
    for alert in demo.services.alerts.open_alerts():
        if alert.bucket == bucket:
            return int(alert.id)
    raise RuntimeError(f"no open alert for {bucket}")


def _object_made_public(demo: Demo, key: str = "2026/salaries.xlsx",
                        event_id: str = "data0000-0000-4000-8000-000000000010") -> dict[str, Any]:
    """A data event: someone makes one object public-read with an ACL (only trails with data events see it)."""
    record = json.loads(json.dumps(demo.records["5ample00-0000-4000-8000-000000000006"]))
    record.update(eventID=event_id, eventName="PutObjectAcl", eventCategory="Data", managementEvent=False)
    # dana's CLI names the command it ran: this time `aws s3api put-object-acl`, not her earlier put-bucket-policy.
    record["userAgent"] = record["userAgent"].replace("s3api.put-bucket-policy", "s3api.put-object-acl")
    record["requestParameters"] = {"bucketName": "hr-reports", "Host": "hr-reports.s3.us-east-1.amazonaws.com",
                                   "key": key, "acl": "", "x-amz-acl": "public-read"}
    return dict(record)


def _brett_public_policy(demo: Demo) -> dict[str, Any]:
    """brett also attaches a public-read policy to his bucket (and it really lands in S3)."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "AllowAll", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{BRETT_BUCKET}/*"}],
    }
    demo.s3.put_bucket_policy(Bucket=BRETT_BUCKET, Policy=json.dumps(policy))
    record = json.loads(json.dumps(demo.records["brett-bpa-0000-4000-8000-000000000002"]))
    record["eventID"] = "brett-pol-0000-4000-8000-000000000009"
    record["eventName"] = "PutBucketPolicy"
    record["requestParameters"] = {"bucketName": BRETT_BUCKET, "Host": f"{BRETT_BUCKET}.s3.us-east-1.amazonaws.com",
                                   "policy": "", "bucketPolicy": policy}
    return dict(record)


def _tag_then_open(demo: Demo) -> list[tuple[dict[str, Any], float]]:
    """mallory writes the allow tag on cdn-assets, then deletes its Block Public Access (both land in S3)."""
    demo.s3.create_bucket(Bucket="cdn-assets")
    tag = {"Key": "bucketwatch:public", "Value": "allowed"}
    demo.s3.put_bucket_tagging(Bucket="cdn-assets", Tagging={"TagSet": [tag]})
    writes: list[tuple[str, dict[str, Any]]] = [
        ("PutBucketTagging", {"tagging": "", "Tagging": {"TagSet": {"Tag": tag}}}),
        ("DeleteBucketPublicAccessBlock", {"publicAccessBlock": ""}),
    ]
    out = []
    for n, (name, params) in enumerate(writes):
        record = json.loads(json.dumps(demo.records["brett-bpa-0000-4000-8000-000000000002"]))
        record.update(eventID=f"mallory-tag-0000-4000-8000-00000000001{n}", eventName=name,
                      userIdentity={**record["userIdentity"], "userName": "mallory",
                                    "arn": record["userIdentity"]["arn"].rsplit("/", 1)[0] + "/mallory"},
                      requestParameters={"bucketName": "cdn-assets", "Host": "cdn-assets.s3.us-east-1.amazonaws.com",
                                         **params})
        out.append((record, 0.4 - n * 0.2))
    return out


def main(*, quiet: bool = False) -> int:
    """The whole story, against moto, the CloudTrail stand-in and the Slack stand-in on 127.0.0.1."""
    os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT  # read by moto at import: buckets live in the sample's account
    from moto.server import ThreadedMotoServer


    story = Story(quiet)
    with tempfile.TemporaryDirectory(prefix="bucketwatch-demo-") as tmp, ExitStack() as stack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        cloudtrail = FakeCloudTrailServer()
        stack.enter_context(cloudtrail)
        slack = stack.enter_context(SlackStandin())
        slack.users.update({uid: {"id": uid, "name": name, "real_name": name} for uid, name in NAMES.items()})
        _isolate_environment(f"http://{host}:{port}", cloudtrail.url, Path(tmp))
        return tell(Demo(story, Path(tmp), cloudtrail, slack, stack))
