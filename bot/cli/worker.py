"""`worker`: a stateless scan worker (bot.sources.worker) on this machine; as many as the trail needs."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.clients import AwsClients, error_message
from bot.cli.common import configure
from bot.core.config import ConfigError, load_settings
from bot.sources.sqs import SqsQueue
from bot.sources.worker import Worker, WorkReport, run, stop_on_signals

logger = logging.getLogger("bucketwatch.worker")


def cli_worker(args: argparse.Namespace) -> int:
    settings = load_settings(dotenv=Path(".env"))
    configure(settings)  # LOG_LEVEL, LOG_FORMAT (text or JSON lines), no secrets
    if not settings.findings_queue_url:
        raise ConfigError("FINDINGS_QUEUE_URL: the worker sends what it finds to that queue; it is not set")
    url = args.queue or (settings.trail_queue_urls[0] if len(settings.trail_queue_urls) == 1 else "")
    if not url:
        raise ConfigError("TRAIL_QUEUE_URLS: give the worker one notification queue (or --queue URL)")
    queue = SqsQueue.parse(url, "TRAIL_QUEUE_URLS")
    SqsQueue.parse(settings.findings_queue_url, "FINDINGS_QUEUE_URL")  # a malformed URL: a clear error, before any work
    clients = AwsClients(settings)
    region = queue.region or settings.regions[0]
    worker = Worker(lambda r: clients.ambient_client("s3", r or region), clients.ambient_client("sqs", region),
                    settings.findings_queue_url)  # fmt: skip

    def progress(report: WorkReport) -> None:
        logger.info("%d file(s), %d record(s): %d S3 write(s), %d finding(s) sent in %d message(s)",
                    report.files, report.records, report.forwarded, report.findings, report.messages_sent)  # fmt: skip
        for error in report.errors:
            logger.warning("%s (the notification will come back)", error)

    try:
        total = run(worker, queue.url, once=args.once, wait_seconds=args.wait, visibility=args.visibility,
                    stop=stop_on_signals(), on_batch=progress)  # fmt: skip
    except (BotoCoreError, ClientError) as exc:  # --once: SQS could not be asked; running, it retries
        print(f"bucketwatch worker: cannot receive from {queue.url}: {error_message(exc)}", file=sys.stderr)
        return 1
    print(f"worker: {total.files} file(s), {total.records} record(s): {total.forwarded} S3 write(s), "
          f"{total.findings} finding(s) sent", file=sys.stderr)  # fmt: skip
    return 0
