"""Messages as EventBridge puts them on an SQS queue (tests, benchmarks and the demo only).

Shapes from the EventBridge user guide ("Events delivered via AWS CloudTrail") and the S3 user guide
("EventBridge event message structure"); our own fixtures, not corpus data.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def api_call_event(record: dict[str, Any]) -> dict[str, Any]:
    """The "AWS API Call via CloudTrail" event a rule on s3.amazonaws.com forwards: the record is `detail`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": record.get("recipientAccountId", "111122223333"),
        "time": record.get("eventTime", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        "region": record.get("awsRegion", "us-east-1"),
        "resources": [],
        "detail": record,
    }


def object_event(
    bucket: str, key: str, *, region: str = "us-east-1", detail_type: str = "Object Created",
    account: str = "111122223333",
) -> dict[str, Any]:
    """S3's own EventBridge event for an object (EventBridge notifications turned on for the bucket)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1234, "etag": "b1946ac92492d2347c6235b4d2611184",
                       "sequencer": "617f08299329d189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "cloudtrail.amazonaws.com",
            "reason": "PutObject",
        },
    }
