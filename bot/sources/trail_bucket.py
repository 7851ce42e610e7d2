"""New log files of a trail, read from its S3 bucket (data events, organisations too big for LookupEvents).

CloudTrail writes `<prefix>/AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/
<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<random>.json.gz`, the date and time being the delivery
time ("Finding your CloudTrail log files", CloudTrail user guide). Keys of one account-region
therefore sort by delivery minute, so each region prefix is listed with `StartAfter`, from progress
kept per prefix in `trail_progress`. Within one minute the random suffix does not sort by delivery:
a file delivered after we listed its minute can sort before the last key read. So the listing starts
`OVERLAP` before the last key's minute, and files already read (table `trail_files`) are skipped:
each file is read once, none is missed. The bucket is read with the ambient credentials.

A poll reads at most `max_files` files, shared fairly between region prefixes (oldest unread file
first when there are more prefixes than files), and a prefix's start is kept from its first listing:
a busy account-region delays a quiet one, never skips it. A capped poll still succeeds (what it read is
handled and committed); health shows "backlog: N files left to read" until a poll catches up.

A file that is not gzip or JSON, and records in it that are not CloudTrail objects, are counted and
quarantined (table `quarantine`); the file is marked read and the trail goes on.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlite_utils
from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.clients import AwsClients, error_code, error_message
from bot.core.clock import iso
from bot.core.config import ConfigError
from bot.core.record import Record
from bot.sources.files import wanted
from bot.sources.inflate import InputError, bytes_opener
from bot.sources.reader import WHOLE_MAX, ScanStats, read_records
from bot.sources.state import Quarantined, SourceResult
from bot.store.database import Store
from bot.store.index import is_config_write

logger = logging.getLogger(__name__)
OVERLAP = timedelta(minutes=15)
_STAMP = re.compile(r"_(\d{8}T\d{4}Z)_")
_LOG_SUFFIXES = (".json.gz", ".json")
MAX_OBJECT = 256 << 20  # compressed bytes of one log file (CloudTrail's are a few MB at most)


class TrailConfigError(ConfigError):
    """A TRAIL_BUCKETS entry is not s3://bucket[/prefix]."""


@dataclass(frozen=True)
class TrailLocation:
    """One TRAIL_BUCKETS entry."""

    bucket: str
    prefix: str  # without slashes at either end; '' when the trail writes at the bucket root

    @classmethod
    def parse(cls, text: str) -> TrailLocation:
        if not text.startswith("s3://") or not text[5:].split("/", 1)[0]:
            raise TrailConfigError(f"TRAIL_BUCKETS: {text!r} is not s3://bucket/prefix")
        bucket, _, prefix = text[5:].partition("/")
        return cls(bucket, prefix.strip("/"))

    @property
    def source(self) -> str:
        return f"trail:{self.bucket}/{self.prefix}" if self.prefix else f"trail:{self.bucket}"

    @property
    def logs_root(self) -> str:
        return f"{self.prefix}/AWSLogs/" if self.prefix else "AWSLogs/"


def _subprefixes(s3: Any, bucket: str, prefix: str, calls: list[int]) -> list[str]:
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        calls[0] += 1
        out.extend(p["Prefix"] for p in page.get("CommonPrefixes") or [])
    return out


def region_prefixes(s3: Any, location: TrailLocation, calls: list[int]) -> list[str]:
    """`…/AWSLogs/<acct>/CloudTrail/<region>/` for every account (and organisation) under the trail."""
    out: list[str] = []
    accounts: list[str] = []
    for sub in _subprefixes(s3, location.bucket, location.logs_root, calls):
        name = sub[len(location.logs_root) :].strip("/")
        if name.startswith("o-"):  # organisation trail: one more level of account ids
            accounts.extend(_subprefixes(s3, location.bucket, sub, calls))
        else:
            accounts.append(sub)
    for account_prefix in accounts:
        out.extend(_subprefixes(s3, location.bucket, account_prefix + "CloudTrail/", calls))
    return out


def start_after(region_prefix: str, moment: datetime) -> str:
    """The key just before any file delivered at or after `moment` under one region prefix."""
    parts = region_prefix.rstrip("/").split("/")
    account, region = parts[-3], parts[-1]
    return f"{region_prefix}{moment:%Y/%m/%d}/{account}_CloudTrail_{region}_{moment:%Y%m%dT%H%MZ}"


def _stamp(key: str) -> datetime | None:
    match = _STAMP.search(key.rsplit("/", 1)[-1])
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def _progress(store: Store, key: str) -> str | None:
    row = store.db.execute("select last_key from trail_progress where prefix = ?", [key]).fetchone()
    return row[0] if row else None


def _already_read(store: Store, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = store.db.execute(
        "select key from trail_files where key in (select value from json_each(?))", [orjson.dumps(keys).decode()]
    )
    return {row[0] for row in rows}


def read_log_file(s3: Any, bucket: str, key: str, stats: ScanStats) -> tuple[list[Record], list[Quarantined]]:
    """The records of one log file that matter (all of them up to WHOLE_MAX inflated, so every record
    counts toward lag; past that the byte scan's S3 ones) and what in it was unreadable.

    Inflated as a stream with the per-file cap (bot.sources.inflate), like `scan`: a small object that
    inflates to gigabytes is quarantined with the reason, never held in memory.
    """
    uri = f"s3://{bucket}/{key}"
    reply = s3.get_object(Bucket=bucket, Key=key)
    size = int(reply.get("ContentLength") or 0)
    if size > MAX_OBJECT:
        reply["Body"].close()
        logger.warning("%s: %d bytes, over the %d MiB a log file may have: skipped", uri, size, MAX_OBJECT >> 20)
        stats.malformed += 1
        return [], [Quarantined(f"{uri}: {size} bytes, over the {MAX_OBJECT >> 20} MiB cap: skipped", uri)]
    body = reply["Body"].read()
    mine = ScanStats()
    try:
        opener = bytes_opener(body, label=uri)
        records = [Record(raw) for raw in read_records(opener, mine, label=uri, wanted=wanted(True),
                                                        whole_up_to=WHOLE_MAX)]  # fmt: skip
    except InputError as exc:
        # A corrupt file is bad input: counted, marked read, never a reason to stop the trail.
        # Its bytes stay in the bucket; the quarantine row says where.
        logger.warning("%s: unreadable log file (%s)", uri, exc)
        stats.malformed += 1
        why = str(exc).removeprefix(f"{uri}: ")
        return [], [Quarantined(f"{uri}: unreadable log file ({why})"[:500], uri)]
    stats.records += mine.records
    stats.malformed += mine.malformed
    return records, [Quarantined(f"{uri}: {reason}", text) for reason, text in mine.bad]


def collect(result: SourceResult, records: list[Record], ids: set[str]) -> None:
    """Configuration writes into `result.records`, once per event id; every record counts toward lag."""
    for record in records:
        when = record.event_time
        if when is not None and (result.newest_event is None or when > result.newest_event):
            result.newest_event = when  # lag: see bot.sources.event_lag
        if not is_config_write(record):
            continue
        if not record.event_id:  # a write no path can deduplicate or cite: counted and set aside, not dropped
            result.malformed += 1
            shown = orjson.dumps(record.raw).decode()[:4000]
            result.quarantine.append(Quarantined(f"{record.event_name} without an eventID: set aside", shown))
        elif record.event_id not in ids:
            ids.add(record.event_id)
            result.records.append(record)


def _new_keys(s3: Any, store: Store, bucket: str, prefix: str, now: datetime, lookback: timedelta,
              calls: list[int]) -> tuple[list[str], str | None]:
    """Log file keys under one region prefix not read yet, oldest first; and where a new prefix starts.

    A prefix with no progress yet starts at now − lookback. That start is returned so the poll keeps
    it (`trail_progress`) even when no file of the prefix fits in this poll: a window that slid with
    `now` would pass over files no poll had room for.
    """
    last = _progress(store, f"s3://{bucket}/{prefix}")
    stamp = _stamp(last) if last else None
    if last and stamp is None:
        after = last  # a kept start, or not CloudTrail's naming: plain StartAfter
    else:
        after = start_after(prefix, (stamp - OVERLAP) if stamp else (now - lookback))
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, StartAfter=after):
        calls[0] += 1
        keys.extend(o["Key"] for o in page.get("Contents") or [] if o["Key"].endswith(_LOG_SUFFIXES))
    done = _already_read(store, [f"s3://{bucket}/{k}" for k in keys])
    return sorted(k for k in keys if f"s3://{bucket}/{k}" not in done), (None if last else after)


def fair_shares(pending: list[int], budget: int) -> list[int]:
    """How many files each prefix may read out of `budget`: equal shares, what one cannot use goes to the
    others; when the budget is smaller than the prefixes waiting, the first ones in `pending` get one."""
    shares = [0] * len(pending)
    waiting = [i for i, n in enumerate(pending) if n]
    left = budget
    while left > 0 and waiting:
        each = max(1, left // len(waiting))
        for i in list(waiting):
            give = min(each, pending[i] - shares[i], left)
            shares[i] += give
            left -= give
            if shares[i] == pending[i]:
                waiting.remove(i)
            if not left:
                break
    return shares


def _oldest_first(item: tuple[str, list[str]]) -> tuple[datetime, str]:
    # The prefix whose oldest unread file is oldest is served first: one left out of a poll (budget
    # smaller than the prefixes waiting) is first in line at the next, while the others move on.
    prefix, keys = item
    return (_stamp(keys[0]) if keys else None) or datetime.min.replace(tzinfo=UTC), prefix


class UnreadFiles(Exception):
    """Some log files could not be read (their account-regions wait behind them); the rest were."""


def poll_location(
    aws: AwsClients,
    store: Store,
    location: TrailLocation,
    *,
    region: str,
    now: datetime,
    lookback: timedelta,
    max_files: int = 500,
) -> SourceResult:
    """New log files under one TRAIL_BUCKETS entry; progress is committed by the poller afterwards."""
    result = SourceResult(source=location.source, kind="trail")
    began = time.monotonic()
    calls = [0]
    read: list[tuple[str, str]] = []  # (progress key, s3:// URI of a file read)
    starts: dict[str, str] = {}  # progress key → where a prefix seen for the first time was listed from
    ids: set[str] = set()
    stats = ScanStats()
    try:
        s3 = aws.ambient_client("s3", region)
        pending: list[tuple[str, list[str]]] = []
        for prefix in region_prefixes(s3, location, calls):
            keys, start = _new_keys(s3, store, location.bucket, prefix, now, lookback, calls)
            if start is not None:
                starts[f"s3://{location.bucket}/{prefix}"] = start
            pending.append((prefix, keys))
        # Every prefix gets its share of max_files, so a busy account-region cannot starve a quiet one.
        pending.sort(key=_oldest_first)
        shares = fair_shares([len(k) for _, k in pending], max_files)
        unread: list[str] = []  # files AWS would not hand over: "s3://…: AccessDenied: …"
        for (prefix, keys), share in zip(pending, shares, strict=True):
            for key in keys[:share]:
                calls[0] += 1
                uri, progress = f"s3://{location.bucket}/{key}", f"s3://{location.bucket}/{prefix}"
                try:
                    records, bad = read_log_file(s3, location.bucket, key, stats)
                except (ClientError, BotoCoreError, OSError) as exc:
                    if error_code(exc) == "NoSuchKey":  # deleted between the listing and the read: nothing to wait for
                        result.quarantine.append(Quarantined(f"{uri}: gone before it could be read", uri))
                        read.append((progress, uri))
                        continue
                    # One account's file under a KMS key the bot may not use must not stop the trail: the other
                    # account-regions go on, and this one waits behind the file (its progress must not pass it)
                    # until the next polls can read it.
                    unread.append(f"{uri}: {error_message(exc)}")
                    logger.warning("%s: %s; its account-region waits behind it", uri, error_message(exc))
                    break
                collect(result, records, ids)
                result.quarantine += bad
                read.append((progress, uri))
        if unread:
            more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
            raise UnreadFiles(f"could not read {unread[0]}{more}; the other account-regions were read")
        left = sum(len(k) for _, k in pending) - len(read)
        if left:
            # Not an error: what was read is handled and committed, the rest is read by the next polls.
            result.warning = f"backlog: {left} file{'s' if left != 1 else ''} left to read"
            logger.info("%s: %s (max %d per poll)", location.source, result.warning, max_files)
    except UnreadFiles as exc:  # a failure of the source (status, the digest, /readyz say so), not a stop
        result.error = str(exc)[:500]
    except Exception as exc:  # recorded per source; files read before the error are still committed
        result.error = error_message(exc)
    else:
        result.watermark = now
    finally:
        store.close()  # this worker thread's connection: pool threads end after the poll
    result.seen = stats.records
    result.malformed = stats.malformed
    result.calls = calls[0]
    result.seconds = time.monotonic() - began
    result.commit = _committer(read, starts, now)
    return result


def _committer(read: list[tuple[str, str]], starts: dict[str, str], now: datetime) -> Any:
    def commit(db: sqlite_utils.Database) -> None:
        if starts:  # kept only where no progress exists: a row another poll wrote meanwhile wins
            rows = [{"prefix": p, "last_key": key, "updated_at": iso(now)} for p, key in starts.items()]
            db.table("trail_progress").insert_all(rows, pk="prefix", ignore=True)
        if not read:
            return
        db.table("trail_files").insert_all(
            [{"key": uri, "prefix": p, "read_at": iso(now)} for p, uri in read],
            pk="key",
            replace=True,
        )
        newest: dict[str, str] = {}
        for progress_key, uri in read:
            key = uri.split("/", 3)[3]  # s3://bucket/key → key
            newest[progress_key] = max(newest.get(progress_key, ""), key)
        for progress_key, key in newest.items():
            row = db.execute("select last_key from trail_progress where prefix = ?", [progress_key]).fetchone()
            last = max(key, row[0] or "") if row else key
            row_out = {"prefix": progress_key, "last_key": last, "updated_at": iso(now)}
            db.table("trail_progress").upsert(row_out, pk="prefix")

    return commit


def prune_read_files(store: Store) -> int:
    """Forget read files that sort before their prefix's overlap: no listing reaches them again."""
    removed = 0
    with store.atomic() as db:
        for prefix, last in db.execute("select prefix, last_key from trail_progress").fetchall():
            stamp = _stamp(last or "")
            if stamp is None:
                continue
            bucket_uri = "/".join(prefix.split("/", 3)[:3])  # s3://bucket/<region prefix> → s3://bucket
            region_prefix = prefix.split("/", 3)[3]
            floor = f"{bucket_uri}/{start_after(region_prefix, stamp - OVERLAP)}"
            cursor = db.execute("delete from trail_files where prefix = ? and key <= ?", [prefix, floor])
            removed += cursor.rowcount or 0
    return removed
