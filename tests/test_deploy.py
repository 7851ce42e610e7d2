"""The EventBridge templates stay in step with the code: every event a detection or the auto-resolve rule
reads is forwarded, both rules match alike, and the queue gives the bot room before SQS gives up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.sources.listener import LISTEN_VISIBILITY_SECONDS
from bot.sources.sqs import MAX_RECEIVES
from detections import WATCHED_EVENT_NAMES
from detections.restores import RESTORE_EVENTS

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub) read as plain values."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node)
                                 if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node))


def template(name: str) -> dict[str, Any]:
    return dict(yaml.load((DEPLOY / name).read_text(), Loader=_CfnLoader))


def _names_match(patterns: list[Any], name: str) -> bool:
    return any(p == name or (isinstance(p, dict) and name.startswith(p.get("prefix", "\0"))) for p in patterns)


def _params_match(wanted: dict[str, Any], params: dict[str, str]) -> bool:
    """EventBridge's matching of requestParameters: a listed value, or `{exists: true}`."""
    for key, allowed in wanted.items():
        if allowed == [{"exists": True}]:
            if key not in params:
                return False
        elif params.get(key) not in allowed:
            return False
    return True


def forwards(pattern: dict[str, Any], name: str, params: dict[str, str] | None = None) -> bool:
    """Whether an EventBridge pattern of our templates' form lets an S3 API call through."""
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    detail = pattern["detail"]
    assert detail["eventSource"] == ["s3.amazonaws.com"]
    return any(
        _names_match(branch["eventName"], name) and _params_match(branch.get("requestParameters", {}), params or {})
        for branch in detail["$or"]
    )


@pytest.fixture(scope="module")
def rules() -> dict[str, dict[str, Any]]:
    central = template("eventbridge-central.cfn.yaml")["Resources"]
    member = template("eventbridge-member.cfn.yaml")["Resources"]
    return {"central": central["ForwardToQueue"]["Properties"], "member": member["ForwardS3ApiCalls"]["Properties"]}


def test_both_rules_forward_every_event_the_bot_reads(rules: dict[str, dict[str, Any]]) -> None:
    assert rules["central"]["EventPattern"] == rules["member"]["EventPattern"]
    pattern = rules["member"]["EventPattern"]
    uploads = {"PutObject", "CopyObject", "CreateMultipartUpload"}  # only with an ACL: data events are many
    for name in sorted((WATCHED_EVENT_NAMES | RESTORE_EVENTS) - uploads):
        assert forwards(pattern, name), name
    for name in sorted(uploads):
        assert forwards(pattern, name, {"x-amz-acl": "public-read"}), name
        assert forwards(pattern, name, {"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'})
        assert not forwards(pattern, name) and not forwards(pattern, name, {"x-amz-acl": "private"}), name
    for noise in ("GetBucketAcl", "ListBuckets", "PutObject", "GetObject", "HeadBucket"):
        assert not forwards(pattern, noise), noise


def test_the_queue_outlasts_the_bots_work_and_lets_the_bot_set_aside_first() -> None:
    resources = template("eventbridge-central.cfn.yaml")["Resources"]
    queue = resources["Queue"]["Properties"]
    assert queue["VisibilityTimeout"] > LISTEN_VISIBILITY_SECONDS
    assert queue["ReceiveMessageWaitTimeSeconds"] == 20
    assert queue["RedrivePolicy"]["maxReceiveCount"] > MAX_RECEIVES
    statements = resources["EventBridgeMaySendToQueue"]["Properties"]["PolicyDocument"]["Statement"]
    allow = next(s for s in statements if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws:SourceArn" in allow["Condition"]["ArnEquals"]
