"""The app under test for handler tests: HTTP on 127.0.0.1, the Slack stand-in, moto for AWS.

Requests themselves are built and signed by `bot.standins.requests`, as Slack builds and signs them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.app import create_app
from bot.core.config import Account, Settings
from bot.core.record import Record
from bot.slack.transport import start_http_thread
from standins.cloudtrail import bpa_weakened
from standins.requests import (
    SECRET,
    TEAM,
    Reply,
    block_action,
    encode_form,
    encode_payload,
    post,
    sign,
    slash_body,
    view_submission,
)
from tests.migrated import migrated_copy
from tests.slack_standin import SlackStandin

__all__ = ["SECRET", "TEAM", "Reply", "block_action", "encode_form", "encode_payload", "post", "sign",
           "slash_body", "view_submission"]


# ---- the app under test: HTTP on 127.0.0.1, Slack stand-in, moto ---------------------------------

ACCOUNT = "123456789012"  # moto's default account
RESPONDER, BYSTANDER = "U0RESP", "U0BYSTANDER"
HOSTILE_AGENT = "<!channel> <https://evil.example|click>"


def bpa_record(
    bucket: str,
    *,
    event_id: str = "ev-0001",
    agent: str = "aws-cli/2.15.0",
    off: tuple[str, ...] = ("BlockPublicAcls", "BlockPublicPolicy"),
) -> dict[str, Any]:
    """mallory turning the `off` flags off on `bucket` a minute ago, in moto's account."""
    return bpa_weakened(
        bucket=bucket, account=ACCOUNT, user="mallory", event_id=event_id, agent=agent, off=off,
        source_ip="198.51.100.2", when=datetime.now(UTC) - timedelta(minutes=1),
    )


@dataclass
class BotApp:
    """The app serving HTTP on 127.0.0.1 against the Slack stand-in, with moto for AWS."""

    settings: Settings
    app: Any
    services: Any
    standin: SlackStandin
    url: str
    stops: list[Any] = field(default_factory=list)

    @cached_property
    def s3(self) -> Any:  # one client per app: each costs ~14 ms of CPU to build
        return boto3.client("s3", region_name="us-east-1")

    def slash(self, text: str, *, user: str = RESPONDER, **kw: Any) -> Reply:
        fields = slash_body(text, user=user, command=self.settings.slash_command)
        fields["response_url"] = self.standin.response_url("slash")
        return post(self.url, encode_form(fields), **kw)

    def press(self, action_id: str, value: str, *, user: str = RESPONDER, **kw: Any) -> Reply:
        payload = block_action(action_id, value, user=user, response_url=self.standin.response_url("press"))
        return post(self.url, encode_payload(payload), **kw)

    def answer(self, text: str, *, user: str = RESPONDER) -> dict[str, Any]:
        """What the person sees: the ack body, or for slow subcommands the respond() that follows."""
        before = len(self.responses())
        reply = self.slash(text, user=user)
        assert reply.status == 200
        if reply.body:
            return dict(reply.json())
        found = eventually(lambda: len(self.responses()) > before and self.responses()[-1])
        assert found, f"no answer to {text!r}"
        return dict(found)

    def responses(self) -> list[dict[str, Any]]:
        """Bodies of respond() calls (slash commands answered after the ack)."""
        return [c.params for c in self.standin.calls_to("response_url:slash")]

    def bucket(self, name: str, *, off: tuple[str, ...] = ("BlockPublicAcls", "BlockPublicPolicy")) -> None:
        """A moto bucket whose Block Public Access has `off` flags off."""
        self.s3.create_bucket(Bucket=name)
        flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        self.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={f: f not in off for f in flags})

    def bpa(self, name: str) -> dict[str, bool]:
        return dict(self.s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"])

    def open_alert(
        self,
        bucket: str,
        *,
        agent: str = "aws-cli/2.15.0",
        event_id: str = "ev-0001",
        off: tuple[str, ...] = ("BlockPublicAcls", "BlockPublicPolicy"),
    ) -> Any:
        """A weakened-BPA bucket in moto, the CloudTrail record for it processed, the card posted."""
        self.bucket(bucket, off=off)
        changes = self.services.alerts.process([Record(bpa_record(bucket, event_id=event_id, agent=agent, off=off))])
        assert changes, "the record should open an alert"
        self.services.outbox.flush()
        alert = self.services.alerts.get(changes[0].alert_id)
        assert alert.ts, "the card should be posted"
        return alert


def make_settings(standin: SlackStandin, tmp_path: Path, **overrides: Any) -> Settings:
    settings = Settings(
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=standin.url,
        alert_channel="C0ALERTS",
        responders=(RESPONDER,),
        accounts=(Account(ACCOUNT),),
        regions=("us-east-1",),
        db_path=tmp_path / "bot.db",
    )
    return replace(settings, **overrides)


def start_bot(standin: SlackStandin, tmp_path: Path, **overrides: Any) -> BotApp:
    settings = make_settings(standin, tmp_path, **overrides)
    if not settings.db_path.exists():
        migrated_copy(settings.db_path)  # a new database, as the bot would migrate it, at a copy's cost
    app, services = create_app(settings)
    server, stop = start_http_thread(app, settings, store=services.store)
    url = f"http://127.0.0.1:{server.effective_port}/slack/events"
    return BotApp(settings, app, services, standin, url, [stop, partial(drain_listeners, app)])


def drain_listeners(app: Any) -> None:
    """Wait for the work bolt runs after the ack: it ends inside the test that started it, while its
    Slack stand-in still answers, instead of retrying against a closed port during the next test."""
    app.listener_runner.listener_executor.shutdown(wait=True)


@pytest.fixture
def bot_app(slack_standin: SlackStandin, tmp_path: Path) -> Iterator[BotApp]:
    """The app in HTTP mode on a random port, Slack stand-in and moto behind it."""
    with mock_aws():
        bot = start_bot(slack_standin, tmp_path)
        try:
            yield bot
        finally:
            for stop in bot.stops:
                stop()


def eventually(check: Any, timeout: float = 15.0) -> Any:
    """Poll `check()` until it returns something truthy (work after the ack runs in bolt's threads).

    The timeout only bounds a failing wait: a passing one returns as soon as the work is done. It is
    generous because three xdist workers share two cores, and a loaded CI machine once took over 5 s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
