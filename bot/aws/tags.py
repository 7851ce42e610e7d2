"""The bucket tag `bucketwatch:public=allowed`: a bucket's owner says "public on purpose" where it is defined."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.clients import DENIED, error_code
from detections.allow_tag_added import TAG_KEY, TAG_VALUE

log = logging.getLogger(__name__)


# A bucket carrying this tag is public on purpose (static website, public dataset). Spelled once, by the
# detection that reports every write of it (detections sit below bot.aws).
ALLOW_TAG_KEY = TAG_KEY
ALLOW_TAG_VALUE = TAG_VALUE


def tag_allows(s3_client: Any, bucket: str, *, on_error: Callable[[str], None] | None = None) -> bool:
    """Read the bucket's tags; a missing tag set, bucket or permission means "not allowed"."""
    try:
        response = s3_client.get_bucket_tagging(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("NoSuchTagSet", "NoSuchBucket"):
            return False
        if code in DENIED:
            # Not fatal (the alert still goes out), but the operator must learn the role lacks a read.
            message = f"AccessDenied: the read-only role needs s3:GetBucketTagging on arn:aws:s3:::{bucket}"
            log.warning(message)
            if on_error is not None:
                on_error(message)
            return False
        raise
    for tag in response.get("TagSet") or ():
        if tag.get("Key") == ALLOW_TAG_KEY and str(tag.get("Value", "")).strip().lower() == ALLOW_TAG_VALUE:
            return True
    return False
