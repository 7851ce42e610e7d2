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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.core.shapes import ANY_BUCKET
from bot.services import Services, status
from bot.services.acknowledge import acknowledge_in
from bot.services.allow import allow_bucket, revoke
from bot.services.remediate import fix_prompt, undo
from bot.services.reply import Reply
from bot.services.who_changed import parse_days, who_changed
from bot.slack import messages as msg
from bot.slack.errors import slack_failure
from handlers.payload import int_value, user_of

log = logging.getLogger(__name__)
# S3 bucket names (legacy us-east-1 names allowed uppercase and underscores, so accept those too).
_BUCKET = ANY_BUCKET


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
    days = parse_days(args[1] if len(args) > 1 else None)
    if days is None or len(args) > 2:
        raise Usage("Days is a whole number from 1 to 3650, e.g. `who-changed my-bucket 30`.")
    return who_changed(ctx.services, bucket, ctx.user, days=days)


def _alerts(ctx: Context, args: list[str]) -> Reply:
    return status.open_alerts(ctx.services)


def _ack(ctx: Context, args: list[str]) -> Reply:
    return acknowledge_in(ctx.services, _id(args), ctx.user, ctx.channel)


def _fix(ctx: Context, args: list[str]) -> Reply:
    return fix_prompt(ctx.services, _bucket(args), ctx.user)


def _undo(ctx: Context, args: list[str]) -> Reply:
    return undo(ctx.services, ctx.user, alert_id=_id(args))


def _allow(ctx: Context, args: list[str]) -> Reply:
    if len(args) < 3:
        raise Usage("Usage: `allow <bucket> <duration> <reason>`, e.g. `allow site-assets 30d public website`.")
    return allow_bucket(ctx.services, _bucket(args), args[1], " ".join(args[2:]), ctx.user)


def _revoke(ctx: Context, args: list[str]) -> Reply:
    return revoke(ctx.services, _id(args, "exception"), ctx.user)


def _allowlist(ctx: Context, args: list[str]) -> Reply:
    return status.allowlist(ctx.services)


def _status(ctx: Context, args: list[str]) -> Reply:
    return status.status(ctx.services)


def _digest(ctx: Context, args: list[str]) -> Reply:
    return status.digest_now(ctx.services)


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
        if not text.strip():  # a bare command asks what it can do
            return Reply(help_text(ctx.command))
        return Reply(msg.unknown_input(text) + "\n" + help_text(ctx.command))
    try:
        return sub.run(ctx, args)
    except Usage as problem:
        return Reply(msg.usage_problem(str(problem)) + "\n" + help_text(ctx.command))


def on_command(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
    """The slash command: fast subcommands answer in the ack, slow ones through `respond` after it."""
    services: Services = context["services"]
    command = services.settings.slash_command
    text = str(body.get("text") or "")
    sub, args = parse(text)
    ctx = Context(services, user_of(body), command, str(body.get("channel_id") or ""))
    if sub is None or not sub.slow:
        try:
            reply = answer(sub, ctx, args, text)
        except Exception as exc:
            refused = slack_failure(exc)  # a refused Slack call is one line; a bug keeps its traceback
            log.error("%s %s failed: %s", command, sub.name if sub else "?", refused or type(exc).__name__,
                      exc_info=refused is None)
            reply = Reply(msg.GENERIC_ERROR)
        ack(response_type="ephemeral", text=reply.text, blocks=reply.block_dicts())
        return
    ack()
    # Past the ack: an error here reaches the app's error handler, which answers with a short line.
    reply = answer(sub, ctx, args, text)
    respond(response_type="ephemeral", replace_original=False, text=reply.text, blocks=reply.block_dicts())


def register(app: App, services: Services) -> None:
    app.command(services.settings.slash_command)(on_command)
