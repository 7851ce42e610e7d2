"""Who-changed index rows, built where records are read (a scan worker): no database here, so the
scanner's worker processes do not load SQLite's helpers."""

from __future__ import annotations

import re
from typing import Any

import orjson
from isal import isal_zlib

from bot.core.clock import iso
from bot.core.record import Record, text
from detections import WATCHED_EVENT_NAMES, Finding, evaluate
from detections.base import acl_verdict, bpa_config, bpa_flags

_CONFIG_WRITE = re.compile(r"^(Put|Delete|Create|Restore)(Bucket|Account|AccessPoint|MultiRegionAccessPoint)")
# Object-level writes are data, not configuration, unless they set an ACL (detections decide those).
_OBJECT_WRITES = frozenset({"PutObject", "CopyObject"})


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
        # Raw records are kept for forensics; level-1 deflate keeps a 10M-event index on an ordinary disk.
        "raw": isal_zlib.compress(orjson.dumps(record.raw), 1),
    }
