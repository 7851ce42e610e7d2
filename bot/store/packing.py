"""How a who-changed index row is kept small: event ids, times and the raw record in their stored forms.

The index holds millions of rows, so every byte of a row counts (docs/benchmarks.md, section 11):

- an event id that is a canonical UUID (CloudTrail's) is kept as its 16 bytes; any other as text;
- a time is kept as seconds since the epoch (an integer, or a float when it has a fraction), not as
  27 characters of ISO text in the table and again in an index;
- the raw record is deflated with a preset dictionary: generic text of S3 configuration writes
  (keys in sorted order, as the record is written) followed by the row's own stored values (event
  id, time, bucket, address, account, actor, user agent …), which the record repeats. Unpacking
  therefore needs the row's stored values (`RowText`); rows written before hold the older formats,
  which still read.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from isal import isal_zlib

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

EventKey = str | bytes
When = int | float


def event_key(event_id: str) -> EventKey:
    """The stored form of an event id: 16 bytes for a canonical (lower-case) UUID, else the text."""
    if len(event_id) == 36 and _UUID.fullmatch(event_id):
        return bytes.fromhex(event_id.replace("-", ""))
    return event_id


def event_id_of(key: EventKey) -> str:
    if isinstance(key, bytes):
        h = key.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return key


def when(moment: datetime | None) -> When | None:
    """The stored form of a time: seconds since the epoch; a float only when it has a fraction.

    SQLite compares integers and floats by value, so the two sort and compare together. A float keeps
    microseconds exactly for any date this side of the year 2200 (53 bits).
    """
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    whole = int((moment.replace(microsecond=0) - _EPOCH).total_seconds())
    return whole if not moment.microsecond else whole + moment.microsecond / 1e6


def moment(value: When | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What many rows share (who, with what, the summary), in table `index_facets`, in this order.
FACET = ("account", "region", "event_name", "actor", "actor_arn", "actor_type", "user_agent", "agent_kind",
         "summary", "source")  # fmt: skip

def summary_key(summary: str, bucket: str) -> str:
    """The summary as a facet keeps it: the bucket's name (which finding titles hold) as a mark, so
    rows of many buckets share one facet. Exact both ways: a summary that starts with a mark is escaped."""
    if bucket and bucket in summary and "\0" not in summary:
        return "\0" + summary.replace(bucket, "\0")
    return "\1" + summary if summary[:1] in ("\0", "\1") else summary


def summary_of(key: str, bucket: str) -> str:
    if key[:1] == "\0":
        return key[1:].replace("\0", bucket)
    return key[1:] if key[:1] == "\1" else key


# A row's stored values that its raw record repeats (the preset dictionary's tail): see `row_text`.
RowText = Sequence[str | bytes | int | float | None]

# Version 1 (kept to read older rows): keys in CloudTrail's order, the record as it came.
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

# Version 2: the record written with its keys sorted (any key order a trail holds packs alike) and
# deflated at level 9 against this text plus the row's own values. The text is generic: keys, and
# values that repeat across S3 configuration writes, written from AWS's documented record shapes
# (older list-valued and newer request parameters, ACL grants, the other bucket settings). Never
# edit it: rows depend on it byte for byte (a test pins its hash); a better one is version 3.
RAW_V2 = b"\x02"
RAW_DICT_V2 = (
    b'aws-internal/3 aws-sdk-java/1. Linux/5. OpenJDK_64-Bit_Server_VM/ java/1.8 vendor/Oracle_Corporation '
    b'cfg/retry-mode/standard [S3Console/0.4] Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
    b'(KHTML, like Gecko) Chrome/ Safari/537.36 APN/1.0 HashiCorp/1.0 Terraform/1. (+https://www.terraform.io) '
    b'terraform-provider-aws/5. (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1. '
    b'os/linux lang/go#1. md/GOOS#linux md/GOARCH#amd64 api/s3#1. cloudformation.amazonaws.com '
    b'config.amazonaws.com AWSConfig Boto3/1. md/Botocore#1. ua/2.0 os/linux#5. md/arch#x86_64 lang/python#3. '
    b'md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1. aws-cli/2. md/awscrt#0. md/installer#exe md/prompt#off'
    b' md/command#s3api.put-bucket- cfg/retry-mode#standard'
    b'{"AccessControlPolicy":{"AccessControlList":{"Grant":[{"Grantee":{"DisplayName":"","ID":"","xmlns:xsi":'
    b'"http://www.w3.org/2001/XMLSchema-instance","xsi:type":"CanonicalUser"},"Permission":"FULL_CONTROL"},'
    b'{"Grantee":{"URI":"http://acs.amazonaws.com/groups/global/AllUsers","xmlns:xsi":"http://www.w3.org/2001/'
    b'XMLSchema-instance","xsi:type":"Group"},"Permission":"READ"}]},"Owner":{"ID":""},"xmlns":"http://s3.amazo'
    b'naws.com/doc/2006-03-01/"},"ServerSideEncryptionConfiguration":{"Rule":{"ApplyServerSideEncryptionByDefa'
    b'ult":{"SSEAlgorithm":"AES256"},"BucketKeyEnabled":true},"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"'
    b'},"Tagging":{"TagSet":{"Tag":[{"Key":"","Value":""}]},"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"},'
    b'"VersioningConfiguration":{"Status":"Enabled","xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"},"Owners'
    b'hipControls":{"Rule":{"ObjectOwnership":"BucketOwnerEnforced"},"xmlns":"http://s3.amazonaws.com/doc/2006'
    b'-03-01/"},"WebsiteConfiguration":{"IndexDocument":{"Suffix":"index.html"},"xmlns":"http://s3.amazonaws.'
    b'com/doc/2006-03-01/"},"encryption":[""],"ownershipControls":[""],"tagging":[""],"versioning":[""],"websit'
    b'e":[""],"acl":[""],"policy":[""],"publicAccessBlock":[""],"x-amz-acl":["private"]}'
    b'{"bucketPolicy":{"Statement":[{"Action":"s3:GetObject","Condition":{"Bool":{"aws:SecureTransport":"false"'
    b'}},"Effect":"Deny","Principal":"*","Resource":["arn:aws:s3:::","arn:aws:s3:::/*"],"Sid":""},{"Action":["s3'
    b':GetObject","s3:ListBucket"],"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::root"},"Resource":"arn:a'
    b'ws:s3:::/*","Sid":""}],"Version":"2012-10-17"},"x-amz-acl":"public-read"'
    b'{"additionalEventData":{"AuthenticationMethod":"AuthHeader","CipherSuite":"TLS_AES_128_GCM_SHA256","Sign'
    b'atureVersion":"SigV4","bytesTransferredIn":0,"bytesTransferredOut":0,"x-amz-id-2":""},"awsRegion":"us-ea'
    b'st-1","eventCategory":"Management","eventID":"","eventName":"PutBucket","eventSource":"s3.amazonaws.com",'
    b'"eventTime":"","eventType":"AwsApiCall","eventVersion":"1.09","managementEvent":true,"readOnly":false,"rec'
    b'ipientAccountId":"","requestID":"","requestParameters":{"Host":".s3.us-east-1.amazonaws.com","PublicAcces'
    b'sBlockConfiguration":{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPu'
    b'blicBuckets":true,"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"},"acl":"","bucketName":"","host":[".s'
    b'3.amazonaws.com"],"policy":"","publicAccessBlock":""},"resources":[{"ARN":"arn:aws:s3:::","accountId":"",'
    b'"type":"AWS::S3::Bucket"}],"responseElements":null,"sourceIPAddress":"","tlsDetails":{"cipherSuite":"TLS_'
    b'AES_128_GCM_SHA256","clientProvidedHostHeader":".s3.amazonaws.com","tlsVersion":"TLSv1.3"},"userAgent":"'
    b'","userIdentity":{"accessKeyId":"ASIA","accountId":"","arn":"arn:aws:sts:::assumed-role/","principalId":'
    b'"AROA","sessionContext":{"attributes":{"creationDate":"T","mfaAuthenticated":"false"},"sessionIssuer":{"a'
    b'ccountId":"","arn":"arn:aws:iam:::role/","principalId":"AROA","type":"Role","userName":""}},"type":"Assu'
    b'medRole"}}'
)


def row_text(values: RowText) -> bytes:
    """The dictionary's tail from a row's stored values (ids as text, times as CloudTrail writes them)."""
    parts = []
    for value in values:
        if isinstance(value, bytes):
            value = event_id_of(value)
        elif isinstance(value, int | float):
            value = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts.append(value or "")
    return "\0".join(parts).encode("utf-8", "surrogatepass")


# What the index does not keep of a raw record (issue 11: "the index is an index, the trail is the
# archive"). Each field here is read by no code (bot.core.record.Record's properties, the detections,
# bot.alerts.prior and .restore read records only through Record) and costs bytes that nothing can
# compress: fresh random values per event (`requestID`, `additionalEventData`'s `x-amz-id-2`), per
# session (`accessKeyId`, the session's `creationDate`), or transport details (TLS, signature,
# bytes transferred, VPC endpoint). tests/test_index_pruning.py checks, over the corpus and the
# detections' own cases, that every detection's verdict and every Record value are the same on the
# pruned record. The full record stays in the trail (or LookupEvents, for 90 days): a row's account,
# region, time and event id find it there (docs/benchmarks.md section 11).
FORENSIC_ONLY = frozenset({"requestID", "eventVersion", "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId",
                           "additionalEventData"})  # fmt: skip
FORENSIC_ONLY_IDENTITY = frozenset({"accessKeyId"})
FORENSIC_ONLY_SESSION = frozenset({"creationDate"})  # userIdentity.sessionContext.attributes
# tlsDetails: only the host header is read (Record.host falls back to it when requestParameters has none).
KEPT_TLS = "clientProvidedHostHeader"


def prune(raw: Any) -> Any:
    """The raw record as the index keeps it: without FORENSIC_ONLY's fields (a copy; `raw` is untouched)."""
    if not isinstance(raw, dict):
        return raw
    out = {k: v for k, v in raw.items() if k not in FORENSIC_ONLY}
    tls = out.get("tlsDetails")
    if isinstance(tls, dict):
        if KEPT_TLS in tls:
            out["tlsDetails"] = {KEPT_TLS: tls[KEPT_TLS]}
        else:
            del out["tlsDetails"]
    identity = out.get("userIdentity")
    if isinstance(identity, dict):
        identity = out["userIdentity"] = {k: v for k, v in identity.items() if k not in FORENSIC_ONLY_IDENTITY}
        session = identity.get("sessionContext")
        attributes = session.get("attributes") if isinstance(session, dict) else None
        if isinstance(session, dict) and isinstance(attributes, dict):
            kept = {k: v for k, v in attributes.items() if k not in FORENSIC_ONLY_SESSION}
            identity["sessionContext"] = {**session, "attributes": kept}
    return out


def pack_raw(raw: Any, row: RowText) -> bytes:
    dictionary = RAW_DICT_V2 + row_text(row)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
    return RAW_V2 + deflate.compress(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)) + deflate.flush()


def unpack_raw(blob: bytes, row: RowText = ()) -> Any:
    """The record stored by `pack_raw` (`row`: the same stored values), or by the older formats."""
    version = blob[:1]
    if version == RAW_V2:
        inflate = zlib.decompressobj(-15, RAW_DICT_V2 + row_text(row))
        return orjson.loads(inflate.decompress(blob[1:]) + inflate.flush())
    if version == RAW_V1:
        inflate = zlib.decompressobj(-15, RAW_DICT_V1)
        return orjson.loads(inflate.decompress(blob[1:]) + inflate.flush())
    return orjson.loads(isal_zlib.decompress(blob))
