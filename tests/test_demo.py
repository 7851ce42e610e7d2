"""`python -m bot demo` tells the whole story offline: it is the newcomer's first contact, so it is tested."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_offline_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_"))}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # The seed case: brett turned off all four flags on his bucket, and the card says so.
    assert "brett-public-test-bucket" in out and "all four Block Public Access flags turned off" in out
    # brett's thread: his "not me" (asked by DM) and the second change.
    assert "4 cards in the channel" in out and "thread replies: 2" in out
    assert "@brett says *not me*" in out and "approved by @alice" in out
    # A data event read from the trail bucket, and the verdict reads that object's ACL.
    unwrapped = re.sub(r"\n\s*│ ", " ", out)  # the terminal rendering wraps long card lines
    assert "ACL of object 2026/salaries.xlsx grants AllUsers READ" in unwrapped
    # A file announced on SQS is read and its message deleted.
    assert "messages left on the queue after the poll: 0" in out and "2026/bonuses.xlsx" in out
    assert "announced by the trail's own SNS topic" in out and "both files read from the queue: 2 records" in out
    # A stateless scan worker read the next file; the bot read what it sent (FINDINGS_QUEUE_URL).
    assert "bucketwatch worker: 1 file, 1 record: 1 S3 write and 1 finding sent" in out
    assert "the bot read FINDINGS_QUEUE_URL: the hr-reports thread has 2 replies" in out
    # An EventBridge event on EVENT_QUEUE_URLS becomes a card within seconds, once.
    assert "on the queue → card in the channel:" in out and "1 card for ml-training-data" in out
    assert "Acknowledged* by @alice" in out
    assert "Only responders may" in out
    assert "HTTP 401; Slack calls it caused (ephemeral, DM, response_url): 0" in out
    assert "in AWS now: BlockPublicAcls=on, IgnorePublicAcls=on, BlockPublicPolicy=on, RestrictPublicBuckets=on" in out
    assert "in AWS now: BlockPublicAcls=off" in out  # the undo restored the exact snapshot
    # The fix assumed the remediation role through moto's STS as the Slack user who pressed it.
    assert "assumed-role/bucketwatch-remediation/bucketwatch-U0ALICE, SourceIdentity=U0ALICE" in out
    assert "GET /readyz → 200 ready" in out and 'bucketwatch_remediation_outcomes_total{action="fix"' in out
    assert "Resolved* because Block Public Access re-enabled by sam@example.com" in out
    assert "Accepted" in out or "accepted" in out
    assert "Daily digest" in out
    # The allow tag written by mallory is a finding of its own; the deletion after it joins that card.
    assert "• Bucket cdn-assets tagged bucketwatch:public=allowed" in out and "raised it (1 reply)" in out
    # Routing and hand-off: a critical card in #pagers, a muted one counted, PagerDuty trigger then resolve.
    assert "card in #pagers: CRITICAL" in out and "1 muted below MIN_SEVERITY" in out
    assert "PagerDuty ← trigger dedup_key=1 severity=critical" in out and "PagerDuty ← resolve dedup_key=1" in out
    assert "PagerDuty ← acknowledge dedup_key=1 (alice acknowledged the card in Slack)" in out
    # The tag taken away: the quiet line becomes the card, and the channel hears why.
    assert "the bucket tag bucketwatch:public=allowed that accepted it was removed by" in out
    # The release-artifacts live check names the WRITE grant the card's header shows.
    assert "ACL grants AllUsers READ and WRITE, but account-level" in unwrapped
    # dana's user agent names the command she ran for the object ACL, not an earlier policy command.
    assert "s3api.put-object-acl" in out and "s3api.put-bucket-\n" not in out
    # The audit trail names what a press acted on: never "alert None".
    # (exception #1 is dana's, approved by alice when dana said "yes, intended")
    assert "alert None" not in out and "exception #2 for partner-drop" in out
    assert "Demo complete" in out
    assert "Traceback" not in out + result.stderr
