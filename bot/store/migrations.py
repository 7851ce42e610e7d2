"""The database's numbered migrations (sqlite-utils), applied in order by `Store` under its lock file.

Each one says why its tables or columns exist. Never edit one that has shipped: add the next.
"""

from __future__ import annotations

import hashlib

import sqlite_utils
from sqlite_utils.migrations import Migrations

from bot.core.clock import parse_iso
from bot.store.packing import FACET, event_key, summary_key, when

MIGRATIONS = Migrations("bucketwatch")


@MIGRATIONS(name="0001_events_index")
def _m0001(db: sqlite_utils.Database) -> None:
    # The who-changed index: every successful S3 configuration write, raw record kept (compressed).
    db.table("events").create(
        {
            "event_id": str,
            "event_time": str,
            "account": str,
            "region": str,
            "bucket": str,
            "event_name": str,
            "actor": str,
            "actor_arn": str,
            "actor_type": str,
            "source_ip": str,
            "user_agent": str,
            "agent_kind": str,
            "summary": str,
            "source": str,
            "raw": bytes,
        },
        pk="event_id",
    )
    db.table("events").create_index(["bucket", "event_time"])
    db.table("events").create_index(["account", "event_time"])


@MIGRATIONS(name="0002_alerts")
def _m0002(db: sqlite_utils.Database) -> None:
    db.table("alerts").create(
        {
            "id": int,
            "resource_key": str,  # account/bucket, or account/* for account-level alerts
            "account": str,
            "region": str,
            "bucket": str,
            "detection": str,
            "severity": str,
            "title": str,
            "status": str,  # open → acknowledged → fixed / accepted / resolved
            "opened_at": str,
            "updated_at": str,
            "first_event_id": str,
            "actor": str,
            "verdict": str,
            "channel": str,
            "ts": str,
            "acknowledged_by": str,
            "acknowledged_at": str,
            "closed_by": str,
            "closed_at": str,
            "close_reason": str,
        },
        pk="id",
    )
    db.table("alerts").create_index(["resource_key", "status"])
    db.table("alert_findings").create(
        {"alert_id": int, "event_id": str, "detection": str, "added_at": str, "finding": str},
        pk=("alert_id", "event_id", "detection"),
    )
    db.table("alert_history").create(
        {"id": int, "alert_id": int, "at": str, "who": str, "status_from": str, "status_to": str, "note": str},
        pk="id",
    )
    db.table("alert_history").create_index(["alert_id"])
    db.table("outbox").create(
        {
            "id": int,
            "alert_id": int,
            "kind": str,  # card | thread | update
            "payload": str,
            "created_at": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "sent_at": str,
            "ts": str,
        },
        pk="id",
    )
    db.table("outbox").create_index(["sent_at", "next_attempt_at"])


@MIGRATIONS(name="0003_sources")
def _m0003(db: sqlite_utils.Database) -> None:
    db.table("poller_state").create(
        {
            "source": str,  # lookup:<account>:<region> or trail:<bucket>/<prefix>
            "watermark": str,
            "last_success": str,
            "last_attempt": str,
            "last_error": str,
            "lag_seconds": float,
            "events_seen": int,
        },
        pk="source",
    )
    db.table("seen_events").create({"event_id": str, "seen_at": str}, pk="event_id")
    db.table("trail_progress").create({"prefix": str, "last_key": str, "updated_at": str}, pk="prefix")
    db.table("quarantine").create(
        {"id": int, "at": str, "source": str, "reason": str, "raw": str}, pk="id"
    )


@MIGRATIONS(name="0004_responders")
def _m0004(db: sqlite_utils.Database) -> None:
    db.table("exceptions").create(
        {
            "id": int,
            "account": str,
            "bucket": str,
            "reason": str,
            "owner": str,
            "created_at": str,
            "expires_at": str,
            "revoked_at": str,
            "expiry_notified_at": str,
        },
        pk="id",
    )
    db.table("exceptions").create_index(["bucket"])
    db.table("audit").create(
        {
            "id": int,
            "at": str,
            "user": str,
            "action": str,
            "alert_id": int,
            "outcome": str,
            "detail": str,
            "aws_request_id": str,
        },
        pk="id",
    )
    db.table("remediations").create(
        {
            "id": int,
            "alert_id": int,
            "target": str,
            "account": str,
            "bucket": str,
            "snapshot": str,  # JSON of the BPA before the fix; null config = deleted
            "applied": str,
            "by": str,
            "at": str,
            "status": str,  # applied | dry_run | undone | failed
            "undone_by": str,
            "undone_at": str,
        },
        pk="id",
    )
    db.table("remediations").create_index(["alert_id"])
    db.table("digest_runs").create({"day": str, "sent_at": str}, pk="day")


@MIGRATIONS(name="0005_remediation_guard")
def _m0005_remediation(db: sqlite_utils.Database) -> None:
    db.table("remediations").add_column("request_id", str)
    db.table("remediations").add_column("error", str)
    db.table("remediations").add_column("region", str)
    db.table("exceptions").add_column("revoked_by", str)
    # At most one live fix per alert, across processes: a second claim fails atomically in SQLite.
    db.execute(
        "CREATE UNIQUE INDEX remediations_one_live_fix ON remediations(alert_id) "
        "WHERE status IN ('applying', 'applied', 'undoing')"
    )


@MIGRATIONS(name="0006_alerts_verdict")
def _m0006_alerts(db: sqlite_utils.Database) -> None:
    # The full live verdict (flags seen, paths, denied reads) so a card re-rendered later shows it.
    db.table("alerts").add_column("verdict_json", str)
    # Per finding: when it happened (late events must not be resolved by older restores) and which
    # later event restored the block it opened (an alert resolves once all its findings are restored).
    db.table("alert_findings").add_column("event_time", str)
    db.table("alert_findings").add_column("cleared_by", str)
    db.table("alert_findings").create_index(["event_id"])
    db.table("outbox").create_index(["alert_id", "sent_at"])


@MIGRATIONS(name="0007_sources_trail_files")
def _m0007_sources(db: sqlite_utils.Database) -> None:
    # Trail log files read inside the listing overlap (same-minute files do not sort by delivery).
    db.table("trail_files").create({"key": str, "prefix": str, "read_at": str}, pk="key")
    db.table("trail_files").create_index(["prefix", "key"])
    db.table("seen_events").create_index(["seen_at"])


@MIGRATIONS(name="0008_sources_lag_quarantine")
def _m0008_sources(db: sqlite_utils.Database) -> None:
    # Lag is now − the newest event a source returned (bot.sources.event_lag), not now − watermark.
    db.table("poller_state").add_column("newest_event", str)
    # A bad entry served again by the overlap is looked up by (source, raw) before it is kept again.
    db.table("quarantine").create_index(["source"])


@MIGRATIONS(name="0009_alerts_closed_by_slack")
def _m0009_alerts(db: sqlite_utils.Database) -> None:
    # closed_by holds a Slack user id or an AWS actor's name; only the former may become a mention.
    db.table("alerts").add_column("closed_by_slack", int)
    # Fixed, and accepted other than by an exception, were always closed by a press in Slack.
    db.execute(
        "UPDATE alerts SET closed_by_slack = 1 WHERE status = 'fixed'"
        " OR (status = 'accepted' AND closed_by NOT LIKE 'exception #%')"
    )


@MIGRATIONS(name="0010_sources_quarantine_hash")
def _m0010_sources(db: sqlite_utils.Database) -> None:
    # Quarantine dedup looks entries up by a hash of their text (bot.sources.raw_hash), not the text.
    db.table("quarantine").add_column("raw_hash", str)
    for row_id, raw in db.execute("SELECT id, raw FROM quarantine").fetchall():
        digest = hashlib.sha256((raw or "").encode("utf-8", "surrogatepass")).hexdigest()
        db.execute("UPDATE quarantine SET raw_hash = ? WHERE id = ?", [digest, row_id])
    db.execute(
        "DELETE FROM quarantine WHERE id NOT IN (SELECT min(id) FROM quarantine GROUP BY source, raw_hash)"
    )
    db.execute("CREATE UNIQUE INDEX quarantine_source_raw_hash ON quarantine(source, raw_hash)")
    db.table("quarantine").create_index(["source", "at"])


@MIGRATIONS(name="0011_outbox_dead_letter")
def _m0011_outbox(db: sqlite_utils.Database) -> None:
    # An item that failed too many times is set aside (dead letter) so it no longer holds up the rest.
    db.table("outbox").add_column("failed_at", str)


@MIGRATIONS(name="0012_security_crash_safety")
def _m0012_security(db: sqlite_utils.Database) -> None:
    # Signed Slack requests and Events API deliveries already handled (bot.slack.verify): a replay of
    # the same signature, or a retried event_id, within Slack's five-minute window is not acted on twice.
    db.table("slack_requests_seen").create({"key": str, "at": float}, pk="key")
    db.table("slack_requests_seen").create_index(["at"])
    # A fix or undo writes what it intends to set before the AWS call, and when it started, so a crash
    # between the AWS write and the row update can be reconciled with the live configuration.
    db.table("remediations").add_column("intended", str)
    db.table("remediations").add_column("started_at", str)
    # When the alert and its card were brought in line with the row's outcome; a row with an outcome and
    # no settled_at (the process died between the two) is settled by the reconciler.
    db.table("remediations").add_column("settled_at", str)
    db.execute("UPDATE remediations SET settled_at = at")
    # Cards carry Slack metadata naming the alert; an attempt whose outcome is unknown (claimed but not
    # marked sent, or a timeout) is looked up in the channel before it is posted again.
    db.table("outbox").add_column("attempt_started_at", str)


@MIGRATIONS(name="0013_access_points")
def _m0013_access_points(db: sqlite_utils.Database) -> None:
    # An access point's alert, exception and fix are scoped to the access point (issue 8, defect 3):
    # an exception for it must not cover the account, and its fix must not turn on account-wide BPA.
    for table in ("alerts", "exceptions", "remediations"):
        db.table(table).add_column("access_point", str)


@MIGRATIONS(name="0014_handoff")
def _m0014_handoff(db: sqlite_utils.Database) -> None:
    # Hand-offs to PagerDuty and the signed webhook (bot.handoff): stored in the transaction that changed
    # the alert, sent after, retried with back-off. `key` names the event (target, action, alert, history
    # row): a unique index makes a second enqueue of the same event a no-op, so nothing is handed off twice.
    db.table("handoffs").create(
        {
            "id": int,
            "key": str,
            "target": str,  # pagerduty | webhook
            "alert_id": int,
            "action": str,  # trigger | resolve (PagerDuty); the webhook's event name
            "payload": str,  # JSON without secrets: the routing key and the signature are added when sent
            "created_at": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "sent_at": str,
            "failed_at": str,
        },
        pk="id",
    )
    db.execute("CREATE UNIQUE INDEX handoffs_key ON handoffs(key)")
    db.table("handoffs").create_index(["sent_at", "failed_at", "next_attempt_at"])
    db.table("handoffs").create_index(["alert_id"])


@MIGRATIONS(name="0015_ask_actor")
def _m0015_ask(db: sqlite_utils.Database) -> None:
    # One ask per alert: who was asked (or why nobody), the DM, the answer and the escalation on silence.
    db.table("asks").create(
        {
            "alert_id": int,
            "state": str,  # resolving | asked | answered | not_asked | unreachable
            "actor_arn": str,
            "actor_name": str,
            "email": str,
            "slack_user": str,  # the Slack user asked (U…), once known
            "reason": str,  # why nobody is asked, or why the person could not be reached
            "created_at": str,
            "dm_channel": str,
            "dm_outbox_id": int,  # the outbox item carrying the DM; its sent_at is when they were asked
            "asked_at": str,
            "answer": str,  # intended | not_me
            "answered_at": str,
            "escalated_at": str,  # ASK_TIMEOUT passed without an answer: responders were told
        },
        pk="alert_id",
    )
    db.table("asks").create_index(["state"])
    # "Yes, intended": an exception the actor asks for, pending until a responder approves it.
    db.table("exception_requests").create(
        {
            "id": int,
            "alert_id": int,
            "account": str,
            "bucket": str,
            "reason": str,
            "seconds": int,  # how long the exception lasts, counted from its approval
            "requested_by": str,
            "requested_at": str,
            "approved_by": str,
            "approved_at": str,
            "exception_id": int,
        },
        pk="id",
    )
    db.table("exception_requests").create_index(["alert_id"])


@MIGRATIONS(name="0016_events_compact")
def _m0016_events_compact(db: sqlite_utils.Database) -> None:
    # The who-changed index at a third of its size (issue 11; docs/benchmarks.md section 11): event ids
    # as 16 bytes, times as numbers, what many rows share (account, who, with what, the summary) stored
    # once in index_facets, and no (account, time) index (no query starts from an account alone). The
    # (bucket, time) index also holds what who-changed shows of the row itself, so an answer reads one
    # range of the index and no table row (p99 under 1 ms at 10M events).
    # Rows keep their raw record as it was packed: the older formats still read.
    conn = db.conn
    conn.create_function("bw_key", 1, event_key, deterministic=True)
    conn.create_function("bw_when", 1, lambda text: when(parse_iso(text)), deterministic=True)
    conn.create_function("bw_summary", 2, lambda text, bucket: summary_key(text or "", bucket or ""),
                         deterministic=True)
    facet = ", ".join(FACET)
    old = {c: f"coalesce(o.{c}, '')" for c in FACET} | {"summary": "bw_summary(o.summary, o.bucket)"}
    script = f"""
        DROP INDEX IF EXISTS idx_events_bucket_event_time;
        DROP INDEX IF EXISTS idx_events_account_event_time;
        ALTER TABLE events RENAME TO events_v1;
        CREATE TABLE index_facets (id INTEGER PRIMARY KEY, {", ".join(f"{c} TEXT NOT NULL" for c in FACET)},
                                   UNIQUE ({facet}));
        CREATE TABLE events (event_id NOT NULL, event_time NUMERIC, bucket TEXT NOT NULL, facet INTEGER NOT NULL,
                             source_ip TEXT, raw BLOB);
        INSERT OR IGNORE INTO index_facets ({facet})
            SELECT DISTINCT {", ".join(old.values())} FROM events_v1 o;
        INSERT OR IGNORE INTO events (event_id, event_time, bucket, facet, source_ip, raw)
            SELECT bw_key(o.event_id), bw_when(o.event_time), coalesce(o.bucket, ''), f.id, o.source_ip, o.raw
            FROM events_v1 o JOIN index_facets f ON {" AND ".join(f"f.{c} = {old[c]}" for c in FACET)};
        DROP TABLE events_v1;
        CREATE UNIQUE INDEX idx_events_event_id ON events (event_id);
        CREATE INDEX idx_events_bucket_time ON events (bucket, event_time, event_id, facet, source_ip)
    """  # noqa: S608 - column names are our own constants
    for statement in script.split(";"):  # not executescript: it would commit the migration's transaction
        conn.execute(statement)


@MIGRATIONS(name="0017_events_one_btree")
def _m0017_events_one_btree(db: sqlite_utils.Database) -> None:
    # The who-changed index as one B-tree (issue 11; docs/benchmarks.md section 11): `events` keyed by
    # (bucket, event_time, event_id) WITHOUT ROWID. Who-changed and the card's look-ups read one range
    # of it; the same event seen through several paths (EventBridge, LookupEvents, a trail file: the
    # same bucket, time and id) is one row, so neither the event-id index nor the covering (bucket,
    # time) index is needed. Rows are copied in key order (pages filled whole) and keep their raw
    # record as it was packed. A row without a time goes: no query could reach it, the trail keeps it.
    script = """
        CREATE TABLE events_v3 (bucket TEXT NOT NULL, event_time NUMERIC NOT NULL, event_id NOT NULL,
                                facet INTEGER NOT NULL, source_ip TEXT, raw BLOB,
                                PRIMARY KEY (bucket, event_time, event_id)) WITHOUT ROWID;
        INSERT OR IGNORE INTO events_v3 (bucket, event_time, event_id, facet, source_ip, raw)
            SELECT bucket, event_time, event_id, facet, source_ip, raw FROM events WHERE event_time IS NOT NULL
            ORDER BY bucket, event_time, event_id;
        DROP TABLE events;
        ALTER TABLE events_v3 RENAME TO events
    """
    for statement in script.split(";"):  # not executescript: it would commit the migration's transaction
        db.conn.execute(statement)
