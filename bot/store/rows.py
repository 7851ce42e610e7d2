"""Who-changed index rows, built where records are read (a scan worker): no database here, so the
scanner's worker processes do not load SQLite's helpers."""

from __future__ import annotations

import re
import zlib
from typing import Any

import orjson
from isal import isal_zlib

from bot.core.clock import iso
from bot.core.record import Record, text
from detections import WATCHED_EVENT_NAMES, Finding, evaluate
from detections.base import acl_verdict, bpa_config, bpa_flags

_CONFIG_WRITE = re.compile(r"^(Put|Delete|Create|Restore)(Bucket|Account|AccessPoint|MultiRegionAccessPoint)")
# Object-level writes are data, not configuration, unless they set an ACL (detections decide those).
_OBJECT_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})


def is_index_name(name: str) -> bool:
    """An S3 event name the index may keep (whether the record is kept depends on more: see below)."""
    return name == "PutObjectAcl" or name in WATCHED_EVENT_NAMES or bool(_CONFIG_WRITE.match(name))


def is_config_write(record: Record) -> bool:
    """S3 configuration writes that succeeded (reads and plain object uploads are not kept)."""
    if not record.is_s3 or not record.succeeded or record.read_only:
        return False
    name = record.event_name
    if name in _OBJECT_WRITES:
        return bool(evaluate(record))
    return name == "PutObjectAcl" or name in WATCHED_EVENT_NAMES or bool(_CONFIG_WRITE.match(name))


def summarise(record: Record, findings: list[Finding] | None = None) -> str:
    """A short, plain description of what the write did, for the timeline (`findings`: already known)."""
    name = record.event_name
    findings = evaluate(record) if findings is None else findings
    if findings:
        return "; ".join(f.title for f in findings)
    if name.endswith("PublicAccessBlock") and name.startswith("Put"):
        config = bpa_config(record)
        if config is None:
            return "Block Public Access set (configuration not in the record)"
        flags = bpa_flags(config)
        if all(flags.values()):
            return "Block Public Access: all four flags on"
        return "Block Public Access: " + ", ".join(f"{k}={'on' if v else 'off'}" for k, v in flags.items())
    if name in ("PutBucketAcl", "PutObjectAcl"):
        canned = text(record.param("x-amz-acl"))
        if canned:
            return f"ACL set to {canned}"
        return "ACL set, no public grant" if not acl_verdict(record).public else "ACL set"
    if name == "DeleteBucketPolicy":
        return "Bucket policy deleted"
    if name == "PutBucketPolicy":
        return "Bucket policy set (not public)"
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return words[0].upper() + words[1:] if words else "?"


COLUMNS = (
    "event_id", "event_time", "account", "region", "bucket", "event_name", "actor", "actor_arn", "actor_type",
    "source_ip", "user_agent", "agent_kind", "summary", "source", "raw",
)  # fmt: skip

def index_row(record: Record, source: str, findings: list[Finding] | None = None) -> dict[str, Any]:
    """One index row; built where the record was read (a scan worker), from the findings already made."""
    return {
        "event_id": record.event_id,
        "event_time": iso(record.event_time),
        "account": record.account,
        "region": record.region,
        "bucket": record.bucket or "",
        "event_name": record.event_name,
        "actor": record.actor.display,
        "actor_arn": record.actor.arn,
        "actor_type": record.actor.kind,
        "source_ip": record.source_ip,
        "user_agent": record.user_agent,
        "agent_kind": record.agent_kind,
        "summary": summarise(record, findings),
        "source": source,
        # Raw records are kept for forensics, deflated against a dictionary of what such records share.
        "raw": pack_raw(record.raw),
    }


# The raw record is deflated with a preset dictionary: the keys, and the values that repeat, of S3
# configuration writes (written for this purpose, in our own fixtures' shapes). A record of about
# 1.5 KB of JSON takes about 360 bytes instead of 860 with plain deflate. Rows written before it
# hold plain zlib streams (first byte 0x78) and still read.
RAW_V1 = b"\x01"
RAW_DICT_V1 = (
    b'{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROA","arn":"arn:aws:sts::'
    b':assumed-role/","accountId":"","accessKeyId":"ASIA","sessionContext":{"sessionIssuer":{"type":"Role",'
    b'"principalId":"AROA","arn":"arn:aws:iam::","accountId":"","userName":""},"attributes":{"creationDate":"'
    b'","mfaAuthenticated":"true"}}},"eventTime":"2025-","eventSource":"s3.amazonaws.com","eventName":"PutBucket'
    b'","awsRegion":"us-east-1","sourceIPAddress":"","userAgent":"[aws-cli/2. md/awscrt# ua/2.0 os/linux#'
    b' md/arch#x86_64 lang/python# cfg/retry-mode#standard Boto3/ md/Botocore# [S3Console/0.4, aws-internal/3 a'
    b'ws-sdk-java/ Linux/'
    b' APN/1.0 HashiCorp/1.0 Terraform/ (+https://www.terraform.io) terraform-provider-aws/ aws-sdk-go-v2/",'
    b'"requestParameters":{"bucketName":"","Host":".s3.us-east-1.amazonaws.com","publicAccessBlock":"","PublicA'
    b'ccessBlockConfiguration":{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","BlockPublicAcls":true,"Ignor'
    b'ePublicAcls":true,"BlockPublicPolicy":true,"RestrictPublicBuckets":false}},'
    b'"bucketPolicy":{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Principal":"*","Action":"'
    b's3:GetObject","Resource":"arn:aws:s3:::/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]},"polic'
    b'y":"","acl":"","x-amz-acl":"public-read",'
    b'"responseElements":null,"additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_'
    b'SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"","bytesTransferredOut":'
    b'0},"requestID":"","eventID":"","readOnly":false,'
    b'"resources":[{"accountId":"","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::"}],"eventType":"AwsApiCall","m'
    b'anagementEvent":true,"recipientAccountId":"","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLS'
    b'v1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":""}}'
)


def pack_raw(raw: Any) -> bytes:
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, RAW_DICT_V1)
    return RAW_V1 + deflate.compress(orjson.dumps(raw)) + deflate.flush()


def unpack_raw(blob: bytes) -> Any:
    """The record stored by `pack_raw` (or, in older rows, by plain zlib)."""
    if blob[:1] == RAW_V1:
        inflate = zlib.decompressobj(-15, RAW_DICT_V1)
        return orjson.loads(inflate.decompress(blob[1:]) + inflate.flush())
    return orjson.loads(isal_zlib.decompress(blob))
