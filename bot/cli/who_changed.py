"""`who-changed BUCKET`: the same answer as the slash command, saying what was asked and what failed first.

Exit status (also in `who-changed --help`): 0 every source asked answered; 1 a CloudTrail look-up
failed, so changes may be missing; 2 the local index had nothing and CloudTrail could not be asked
(AWS_ACCOUNTS is not set).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from bot.aws.clients import AwsClients
from bot.cli.common import open_store
from bot.core.clock import utcnow
from bot.core.config import load_settings
from bot.slack.mrkdwn import strip_controls
from bot.sources.fleet import refresh_fleet
from bot.sources.lookup import LookupTarget
from bot.sources.who_changed import Timeline, timeline

EXIT_OK, EXIT_LOOKUP_FAILED, EXIT_NOT_CONFIGURED = 0, 1, 2


def asked_lines(answer: Timeline, targets: list[LookupTarget]) -> list[str]:
    """What was asked, what failed and what is not configured, in that order."""
    if answer.source == "index":
        return [f"Asked: the local index ({len(answer.changes)} change(s) found; CloudTrail not needed)."]
    if not targets:
        return [
            "Asked: the local index only (nothing there for this bucket).",
            "Not configured: AWS_ACCOUNTS is not set, so CloudTrail LookupEvents was not asked.",
        ]
    lines = [f"Asked: the local index (nothing there), then CloudTrail LookupEvents in {len(targets)}"
             " account-region(s)."]
    if answer.errors:
        lines.append(f"Failed: {len(answer.errors)} of {len(targets)} look-up(s):")
        lines += [f"  {where}: {error}" for where, error in sorted(answer.errors.items())]
    return lines


def cli_who_changed(args: argparse.Namespace) -> int:
    settings = load_settings(dotenv=Path(".env"))
    store = open_store(settings)
    aws = AwsClients(settings) if settings.has_accounts else None
    if aws is not None:
        refresh_fleet(settings, aws, store, utcnow())  # AWS_ACCOUNTS=org:…, AWS_REGIONS=all: discovered first
    targets = [LookupTarget(account, region) for account, region in aws.targets()] if aws is not None else []
    aws = aws if targets else None
    answer = timeline(store, aws, args.bucket, days=args.days, targets=targets or None)
    all_failed = bool(targets) and len(answer.errors) >= len(targets)
    if answer.errors:
        code = EXIT_LOOKUP_FAILED
    elif answer.source != "index" and not answer.changes and not targets:
        code = EXIT_NOT_CONFIGURED
    else:
        code = EXIT_OK
    head = asked_lines(answer, targets if answer.source != "index" else [])
    if args.format == "jsonl":
        for line in head:
            print(f"bucketwatch who-changed: {line}", file=sys.stderr)
        for change in answer.changes:
            print(orjson.dumps(change.as_dict()).decode())
        return code
    print("\n".join(head))
    where = f"{args.bucket}, last {args.days} days"
    if answer.changes:
        source = "the local index" if answer.source == "index" else "CloudTrail LookupEvents, now in the local index"
        print(f"Configuration changes to {where}, newest first (from {source}):")
        for c in answer.changes:
            when = c.event_time.strftime("%Y-%m-%d %H:%M:%SZ") if c.event_time else "time unknown"
            line = f"  {when}  {c.actor}  from {c.source_ip or 'unknown'} via {c.agent_kind}"
            line += f"  {c.event_name}: {c.summary}"
            print(strip_controls(line))  # actor names and summaries are caller-chosen text
    elif code == EXIT_NOT_CONFIGURED:
        print(f"No answer for {where}: nothing in the local index, and CloudTrail was not asked.")
    elif all_failed:
        print(f"No answer for {where}: nothing in the local index, and every CloudTrail look-up failed.")
    elif answer.errors:
        print(f"No configuration changes to {where} in the account-regions that answered.")
    else:
        print(f"No configuration changes to {where}.")
    return code
