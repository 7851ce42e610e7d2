"""Event names that can close what detections report: the auto-resolve rule (bot.alerts.restore) reads
each of them, and the LookupEvents poller asks for each by name."""

from __future__ import annotations

# Management events: the LookupEvents poller asks for each by name, so only names it can return belong here.
RESTORE_EVENTS = frozenset({"PutBucketPublicAccessBlock", "PutAccountPublicAccessBlock", "PutBucketAcl",
                            "DeleteBucketPolicy", "PutBucketPolicy", "PutBucketOwnershipControls",
                            "DeleteBucketWebsite", "DeleteBucket", "DeleteAccessPoint", "DeleteAccessPointPolicy",
                            "PutAccessPointPolicy", "PutBucketTagging", "DeleteBucketTagging"})


# S3 data events (trail bucket only; LookupEvents never returns them) that undo a public object ACL.
DATA_RESTORE_EVENTS = frozenset({"PutObjectAcl", "DeleteObject"})


ALL_RESTORE_EVENTS = RESTORE_EVENTS | DATA_RESTORE_EVENTS
