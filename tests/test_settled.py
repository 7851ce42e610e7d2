"""Issue 8, item 11: the behaviours chosen for what was "to settle", each shown.

- Attacker text cannot auto-link or mention: every mrkdwn object the bot sends is `verbatim: true`,
  and attacker strings are escaped (a bare `@channel`, URL or domain stays text).
- A responder group whose member list cannot be fetched is trusted from the last answer for an hour,
  then only the user ids listed in RESPONDERS may act (fail closed), until Slack answers again.
- who-changed of buckets nobody knows cannot spend the LookupEvents calls the poller needs: the
  fallback has its own small budget per account-region and says when it is spent.
- A replayed signed interactive request acts once: tests/test_verify_requests.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.aws.clients import AwsClients
from bot.core.config import Account, Settings
from bot.slack.permissions import Permissions
from bot.sources.lookup import DEFAULT_RATE, LookupTarget
from bot.sources.who_changed import FALLBACK_BURST, SPENT, LookupGuard, timeline
from bot.store.database import Store
from standins.cloudtrail import FakeCloudTrailServer
from tests.clocks import VirtualClock
from tests.slack_requests import BYSTANDER, BotApp, bot_app, eventually
from tests.slack_standin import SlackStandin, slack_standin

FIXTURES = (bot_app, slack_standin)
HOSTILE = "@channel @here #general https://evil.example/login evil.example.com <!channel>"


def _mrkdwn_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            yield node
        for value in node.values():
            yield from _mrkdwn_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _mrkdwn_objects(item)


def test_attacker_text_is_verbatim_and_escaped_everywhere_it_is_shown(bot_app: BotApp) -> None:
    alert = bot_app.open_alert("inert-text", agent=HOSTILE)
    bot_app.press("who_changed", str(alert.id), user=BYSTANDER)  # an ephemeral answer with blocks
    eventually(lambda: bot_app.standin.accepted("chat.postEphemeral"))
    bot_app.services.home.publish(BYSTANDER)  # App Home
    sent = [c.params for c in bot_app.standin.calls
            if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish")]
    objects = [o for params in sent for o in _mrkdwn_objects(params.get("blocks") or params.get("view"))]
    assert objects and all(o.get("verbatim") is True for o in objects)
    card = json.dumps(bot_app.standin.message(alert.ts).blocks)
    assert "evil.example.com" in card  # shown, as text
    assert "<!channel>" not in card and "<https://evil" not in card and "&lt;!channel&gt;" in card


class Tick:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_group_that_cannot_be_fetched_is_trusted_for_an_hour_then_only_listed_ids(
    slack_standin: SlackStandin,
) -> None:
    slack_standin.usergroups["S0ONCALL"] = ["U0BOB"]
    clock = Tick()
    perms = Permissions(("U0ALICE", "S0ONCALL"), WebClient(token="xoxb-test", base_url=slack_standin.url),
                        ttl_seconds=300, stale_grace_seconds=3600, clock=clock)
    assert perms.is_responder("U0BOB")
    slack_standin.fail_next("usergroups.users.list", times=100, status=500)
    clock.now += 1800  # half an hour of failures: the last list still counts
    assert perms.is_responder("U0BOB")
    clock.now += 1801  # over an hour since Slack last answered: group members may no longer act
    assert not perms.is_responder("U0BOB")
    assert perms.is_responder("U0ALICE")  # listed by id: unaffected
    # Slack answers again (after the next TTL): the group counts again.
    slack_standin.fail_next("usergroups.users.list", times=0)
    clock.now += 301
    assert perms.is_responder("U0BOB")


@pytest.fixture
def cloudtrail(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudTrailServer]:
    with FakeCloudTrailServer() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", server.url)
        yield server


def test_who_changed_of_unknown_buckets_cannot_spend_the_pollers_lookup_budget(
    cloudtrail: FakeCloudTrailServer, store: Store
) -> None:
    account = cloudtrail.fake.default_account
    aws = AwsClients(Settings(accounts=(Account(account),), regions=("us-east-1",)))
    clock = Tick()
    pacing = VirtualClock()  # LookupEvents' own pacing (1.8 calls/s) moves this clock on, not the budget's
    guard = LookupGuard(max_running=2, wait=0, clock=clock, pace_clock=pacing.now, pace_sleep=pacing.sleep)
    now = datetime.now(UTC)
    targets = [LookupTarget(account, "us-east-1")]
    answers = [timeline(store, aws, f"nobody-{n:03d}", days=7, targets=targets, now=now, guard=guard)
               for n in range(100)]
    asked = cloudtrail.fake.requests(account)
    assert len(asked) == FALLBACK_BURST  # 100 names, 10 calls: the poller keeps the rest of the quota
    assert all(a.errors == {} for a in answers[:FALLBACK_BURST])
    assert all(a.errors == {targets[0].source: SPENT} for a in answers[FALLBACK_BURST:])
    clock.now += 60  # the budget refills slowly: about 11 calls a minute
    again = [timeline(store, aws, f"later-{n:03d}", days=7, targets=targets, now=now, guard=guard)
             for n in range(30)]
    assert len(cloudtrail.fake.requests(account)) - len(asked) == 10
    assert sum(1 for a in again if a.errors) == 20
    assert pacing.now() == pytest.approx(19 / DEFAULT_RATE)  # the 20 calls were still paced, one slot apart
