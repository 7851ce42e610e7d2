"""The slash command (`SLASH_COMMAND`, default /bucketwatch): a registry of subcommands with their help.

Slack wants an answer within 3 seconds: fast subcommands (store reads only) answer in the ack itself;
slow ones (AWS reads, Slack calls) ack first and answer through `respond` (the response_url). Unknown
or malformed input gets the help text, never an exception's text.

Who may do what (docs/slack.md): `ack` is for people in the alert channel — the command typed there
(Slack sends the channel it was typed in) — or responders anywhere; `fix`, `undo`, `allow` and
`revoke` are for responders. Reads (`alerts`, `status`, `allowlist`, `digest`, `who-changed`) answer
anyone who can use the command: App Home already shows every workspace member the open alerts,
exceptions and poller health, so hiding them here would protect nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.alerts.exceptions import ExceptionListError
from bot.services import Services
from bot.services import operations as ops
from bot.services.operations import Reply, deliver
from bot.slack import messages as msg
from bot.slack.blocks import sections
from bot.sources.state import quarantine_counts, set_aside_counts
from handlers.payload import int_value, user_of

log = logging.getLogger(__name__)
# S3 bucket names (legacy us-east-1 names allowed uppercase and underscores, so accept those too).
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


class Usage(ValueError):
    """The subcommand's arguments are missing or malformed; the message says which."""


@dataclass(frozen=True)
class Context:
    services: Services
    user: str
    command: str
    channel: str = ""  # where the command was typed (Slack's channel_id; a DM id in direct messages)


@dataclass(frozen=True)
class Subcommand:
    name: str
    args: str
    help: str
    run: Callable[[Context, list[str]], Reply]
    slow: bool = False  # touches AWS or Slack: answer after the ack, through respond()


# More than one Slack message can hold (about 47 alert lines): the rest is counted, not rendered.
ALERTS_LISTED = 60

def _bucket(args: list[str], position: int = 0) -> str:
    if len(args) <= position:
        raise Usage("Name a bucket.")
    name = args[position].strip("`*_<>")
    if not _BUCKET.match(name):
        raise Usage(f"{name[:80]!r} is not a bucket name.")
    return name


def _id(args: list[str], what: str = "alert") -> int:
    value = int_value(args[0]) if args else None
    if value is None:
        raise Usage(f"Give the {what} id as a number, e.g. 12.")
    return value


def _who_changed(ctx: Context, args: list[str]) -> Reply:
    bucket = _bucket(args)
    days = ops.parse_days(args[1] if len(args) > 1 else None)
    if days is None or len(args) > 2:
        raise Usage("Days is a whole number from 1 to 3650, e.g. `who-changed my-bucket 30`.")
    return ops.who_changed(ctx.services, bucket, ctx.user, days=days)


def _alerts(ctx: Context, args: list[str]) -> Reply:
    # Only what can fit in one message is read and rendered; the total comes from a count.
    total = ctx.services.alerts.count_open()
    if not total:
        return Reply(msg.NO_OPEN_ALERTS)
    alerts = ctx.services.alerts.open_alerts(limit=ALERTS_LISTED)
    head = f"*Open alerts ({total})*, newest first"
    return Reply(head, sections(head, [msg.alert_line(a) for a in alerts], total=total))


def _ack(ctx: Context, args: list[str]) -> Reply:
    return ops.acknowledge_in(ctx.services, _id(args), ctx.user, ctx.channel)


def _fix(ctx: Context, args: list[str]) -> Reply:
    return ops.fix_prompt(ctx.services, _bucket(args), ctx.user)


def _undo(ctx: Context, args: list[str]) -> Reply:
    return ops.undo(ctx.services, ctx.user, alert_id=_id(args))


def _allow(ctx: Context, args: list[str]) -> Reply:
    if len(args) < 3:
        raise Usage("Usage: `allow <bucket> <duration> <reason>`, e.g. `allow site-assets 30d public website`.")
    return ops.allow_bucket(ctx.services, _bucket(args), args[1], " ".join(args[2:]), ctx.user)


def _revoke(ctx: Context, args: list[str]) -> Reply:
    exception_id, s = _id(args, "exception"), ctx.services
    refusal = ops.refuse(s, ctx.user, "revoke", "Revoke", None)
    if refusal is not None:
        return refusal
    try:
        row = s.exceptions.get(exception_id)
    except ExceptionListError:
        s.audit.record(ctx.user, "revoke", None, "not_found", f"exception #{exception_id}")
        return Reply(msg.no_exception(exception_id))
    if row.revoked_at is not None:
        s.audit.record(ctx.user, "revoke", None, "already_revoked", f"exception #{row.id}")
        return Reply(msg.already_revoked(row))
    row = s.exceptions.revoke(row.id, ctx.user)
    s.audit.record(ctx.user, "revoke", None, "revoked", f"exception #{row.id} for {row.bucket or row.account}")
    # The alerts it closed stay closed (a revoke is not a finding); their threads are told, and the
    # next change to the bucket opens a new alert because no exception covers it any more.
    marker = re.compile(rf"exception #{row.id}\b")
    closed = [
        a
        for a in s.alerts.alerts_for(row.bucket, row.account, open_only=False)
        if a.status == "accepted" and marker.search(f"{a.closed_by or ''} {a.close_reason or ''}")
    ]
    for alert in closed:
        s.audit.record(ctx.user, "revoke", alert.id, "revoked", f"exception #{row.id}; alert stays accepted")
        if alert.ts:  # an alert the exception suppressed was never posted: no thread to tell
            s.alerts.note(alert.id, msg.revoked_line(ctx.user, row))
            deliver(s, alert.id)
    return Reply(msg.revoked_told(row, [a.id for a in closed]))


def _allowlist(ctx: Context, args: list[str]) -> Reply:
    rows = ctx.services.exceptions.list_active()
    if not rows:
        return Reply(msg.NO_EXCEPTIONS)
    head = f"*Active exceptions ({len(rows)})*, soonest to end first"
    return Reply(head, sections(head, [msg.exception_line(r) for r in rows]))


def _status(ctx: Context, args: list[str]) -> Reply:
    s = ctx.services
    settings = s.settings
    head = msg.status_summary(
        open_count=s.alerts.count_open(),
        mode="Socket Mode" if settings.socket_mode else "HTTP",
        dry_run=s.remediator.dry_run,
        pending=len(s.outbox.pending()),
        responders=s.permissions.describe("fix, undo and allow"),
        failed=s.outbox.failed(),
    )
    health = s.poller.health()
    lines = [msg.health_line(h) for h in health] or [msg.NO_SOURCES]
    quarantined = quarantine_counts(s.store)
    if quarantined:
        lines.append(msg.quarantine_line(quarantined))
    set_aside = set_aside_counts(s.store)
    if set_aside:
        lines.append(msg.set_aside_line(set_aside))
    return Reply(head, sections(head, lines))


def _digest(ctx: Context, args: list[str]) -> Reply:
    digest = ctx.services.digest.build(ctx.services.clock())
    return Reply(digest.text, list(digest.blocks))


def _help(ctx: Context, args: list[str]) -> Reply:
    return Reply(help_text(ctx.command))


# The one registry: order is the order of the help text; every entry has its help line.
SUBCOMMANDS: dict[str, Subcommand] = {
    s.name: s
    for s in (
        Subcommand(
            "who-changed",
            "<bucket> [days]",
            "configuration changes to a bucket, newest first (default 90 days)",
            _who_changed,
            slow=True,
        ),
        Subcommand("alerts", "", "the open alerts", _alerts),
        Subcommand(
            "ack", "<id>", "acknowledge an alert (typed in the alert channel, or by a responder)", _ack, slow=True
        ),
        Subcommand(
            "fix",
            "<bucket>",
            "re-enable Block Public Access on a bucket's open alert (responders; asks to confirm)",
            _fix,
            slow=True,
        ),
        Subcommand(
            "undo",
            "<id>",
            "restore the Block Public Access saved before alert <id>'s fix (responders)",
            _undo,
            slow=True,
        ),
        Subcommand(
            "allow",
            "<bucket> <duration> <reason>",
            "mark a bucket as public on purpose for a while, e.g. 30d (responders)",
            _allow,
            slow=True,
        ),
        Subcommand("allowlist", "", "the active exceptions and when they end", _allowlist),
        Subcommand(
            "revoke",
            "<exception-id>",
            "end an exception now (responders); alerts it closed stay closed, the next change alerts",
            _revoke,
            slow=True,
        ),
        Subcommand("status", "", "pollers' health, open alerts, dry-run mode, who may fix", _status),
        Subcommand("digest", "", "the daily digest, now", _digest, slow=True),
        Subcommand("help", "", "this list", _help),
    )
}


def help_text(command: str) -> str:
    return msg.help_text(command, [(s.name, s.args, s.help) for s in SUBCOMMANDS.values()])


def parse(text: str) -> tuple[Subcommand | None, list[str]]:
    """(subcommand, arguments); None for empty or unknown input."""
    words = text.split()
    if not words:
        return None, []
    return SUBCOMMANDS.get(words[0].lower().replace("_", "-")), words[1:]


def answer(sub: Subcommand | None, ctx: Context, args: list[str], text: str) -> Reply:
    """Run one subcommand; unknown or malformed input becomes the help text."""
    if sub is None:
        return Reply(msg.unknown_input(text) + "\n" + help_text(ctx.command))
    try:
        return sub.run(ctx, args)
    except Usage as problem:
        return Reply(msg.usage_problem(str(problem)) + "\n" + help_text(ctx.command))


def _payload(reply: Reply) -> dict[str, Any]:
    blocks = ops.as_dicts(reply.blocks) if reply.blocks else None
    return {"text": reply.text, "blocks": blocks}


def register(app: App, services: Services) -> None:
    command = services.settings.slash_command

    @app.command(command)
    def on_command(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        text = str(body.get("text") or "")
        sub, args = parse(text)
        ctx = Context(services, user_of(body), command, str(body.get("channel_id") or ""))
        if sub is None or not sub.slow:
            try:
                reply = answer(sub, ctx, args, text)
            except Exception:
                log.exception("%s %s failed", command, sub.name if sub else "?")
                reply = Reply(msg.GENERIC_ERROR)
            ack(response_type="ephemeral", **_payload(reply))
            return
        ack()
        # Past the ack: an error here reaches the app's error handler, which answers with a short line.
        reply = answer(sub, ctx, args, text)
        respond(response_type="ephemeral", replace_original=False, **_payload(reply))
