"""Who-changed index rows, built where records are read (a scan worker): no database here, so the
scanner's worker processes do not load SQLite's helpers. Their stored forms: bot.store.packing."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from bot.core.record import Record, text
from bot.store.packing import EventKey, RowText, When, event_key, pack_raw, prune, summary_key, unpack_raw, when
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


class IndexRow(NamedTuple):
    """One who-changed index row in its stored forms (bot.store.packing), built where the record was read.

    `facet` is what a row shares with many others (who, with what, the summary): stored once in
    `index_facets`, referenced by id.
    """

    key: EventKey
    time: When | None
    bucket: str
    source_ip: str
    facet: tuple[str, ...]
    raw: bytes

    def record(self) -> Any:
        """The raw record again (what the index gives back)."""
        f = self.facet
        context = raw_context(self.key, self.time, self.bucket, self.source_ip, f[0], f[1], f[2], f[4], f[6])
        return unpack_raw(self.raw, context)


def raw_context(key: EventKey, time: When | None, bucket: str, source_ip: str, account: str, region: str,
                event_name: str, actor_arn: str, user_agent: str) -> RowText:  # fmt: skip
    """The stored values the raw record is packed against (the order is part of the format)."""
    return (user_agent, actor_arn, account, region, event_name, key, time, source_ip, bucket)


def index_row(record: Record, source: str, findings: list[Finding] | None = None) -> IndexRow:
    """One index row; built where the record was read (a scan worker), from the findings already made."""
    key, moment, bucket = event_key(record.event_id), when(record.event_time), record.bucket or ""
    actor, summary = record.actor, summary_key(summarise(record, findings), bucket)
    facet = (record.account, record.region, record.event_name, actor.display, actor.arn, actor.kind,
             record.user_agent, record.agent_kind, summary, source)  # fmt: skip
    context = raw_context(key, moment, bucket, record.source_ip, record.account, record.region, record.event_name,
                          actor.arn, record.user_agent)  # fmt: skip
    # Raw records are kept for the card's "before" values (bot.alerts.prior) and later restores
    # (bot.alerts.restore), without what only the trail needs to keep (packing.FORENSIC_ONLY).
    return IndexRow(key, moment, bucket, record.source_ip, facet, pack_raw(prune(record.raw), context))
