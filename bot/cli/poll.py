"""`poll --once` and `backfill --days N`: one poll cycle, or the who-changed index from LookupEvents history."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from bot.app import build_services, build_web_client
from bot.aws.clients import AwsClients
from bot.cli.common import configure, open_store
from bot.cli.scan import format_finding
from bot.core.config import Settings, load_settings
from bot.sources.poller import OnRecords, Poller, SourceReport


def _format_source(s: SourceReport) -> str:
    state = f"ERROR {s.error}" if s.error else "ok"
    counts = f"seen {s.seen}, new {s.new}, findings {s.findings}, {s.calls} call(s), {s.seconds:.1f}s"
    return f"  {s.source}  {state}  {counts}"


def _open(settings: Settings, on_records: OnRecords | None = None) -> Poller:
    return Poller(settings, open_store(settings), AwsClients(settings), on_records=on_records)


def cli_poll(args: argparse.Namespace, *, on_records: OnRecords | None = None) -> int:
    """`poll --once`: one cycle; prints findings on the new records and one line per source."""

    if not getattr(args, "once", False):
        print(
            "bucketwatch poll: only `poll --once` is supported; the bot polls every POLL_SECONDS inside"
            " `python -m bot run`.",
            file=sys.stderr,
        )
        return 2
    settings = load_settings(dotenv=Path(".env"))
    configure(settings, one_shot=True)
    if not (settings.has_accounts or settings.trail_buckets or settings.queue_urls or settings.findings_queue_url):
        print(
            "bucketwatch poll: nothing to poll: set AWS_ACCOUNTS (and AWS_REGIONS), TRAIL_BUCKETS, EVENT_QUEUE_URLS,"
            " TRAIL_QUEUE_URLS or FINDINGS_QUEUE_URL.",
            file=sys.stderr,
        )
        return 2
    if on_records is not None:
        report = _open(settings, on_records).poll_once()
        posted = ""
    else:
        # The same wiring as `run`: new records become alerts (stored, then posted through the outbox), so
        # nothing this cycle marks as seen is lost to the running bot.

        services = build_services(settings, build_web_client(settings), open_store(settings), AwsClients(settings))
        report = services.poller.poll_once()
        pending = len(services.outbox.pending())
        posted = (
            f"; {pending} Slack message(s) queued for the running bot (no SLACK_BOT_TOKEN/ALERT_CHANNEL here)"
            if pending
            else ""
        )
    for finding in report.findings:
        print(format_finding(finding) + "\n")
    print(f"polled {len(report.sources)} source(s):")
    for source in sorted(report.sources, key=lambda s: s.source):
        print(_format_source(source))
    print(
        f"{len(report.new_records)} new configuration change(s), {len(report.findings)} finding(s),"
        f" {len(report.errors)} source(s) with errors{posted}"
    )
    return 1 if report.errors else 0


def cli_backfill(args: argparse.Namespace) -> int:
    """`backfill --days N`: the who-changed index from LookupEvents history, with a progress bar."""
    settings = load_settings(dotenv=Path(".env"))
    configure(settings, one_shot=True)
    if not settings.has_accounts:
        print("bucketwatch backfill: set AWS_ACCOUNTS (and AWS_REGIONS) first.", file=sys.stderr)
        return 2
    days = int(getattr(args, "days", 7))
    if days > 90:
        print("bucketwatch backfill: LookupEvents keeps 90 days; reading 90.", file=sys.stderr)
    poller = _open(settings)
    bar = None
    if sys.stderr.isatty():

        bar = tqdm(total=len(poller.targets), unit="account-region", file=sys.stderr, leave=False)

    def progress(source: str, added: int, error: str | None) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(source)

    report = poller.backfill(days, progress)
    if bar is not None:
        bar.close()
    print(
        f"backfill: {report.indexed} configuration change(s) indexed from {report.seen} S3 event(s) in"
        f" {len(poller.targets)} account-region(s) over {min(days, 90)} day(s)"
    )
    for source, error in sorted(report.errors.items()):
        print(f"  {source}  ERROR {error}")
    return 1 if report.errors else 0
