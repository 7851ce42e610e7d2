"""Who may press fix/undo/allow (user groups resolved through the local Slack stand-in) and the audit rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient

from bot.alerts.audit import AuditLog
from bot.core.config import ConfigError
from bot.slack.permissions import Permissions
from bot.store.database import Store
from tests.slack_standin import SlackStandin

GROUP = "S0ONCALL"


@pytest.fixture(scope="module")
def _server() -> Iterator[SlackStandin]:
    # One server for the module: stopping a stand-in takes half a second.
    with SlackStandin() as standin:
        yield standin


@pytest.fixture
def slack_standin(_server: SlackStandin) -> SlackStandin:
    _server.clear()
    _server.usergroups.clear()
    return _server


class Tick:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def permissions(standin: SlackStandin, responders: tuple[str, ...], clock: Tick | None = None) -> Permissions:
    client = WebClient(token="xoxb-test", base_url=standin.url)
    return Permissions(responders, client, ttl_seconds=300, clock=clock or Tick())


def test_listed_users_are_responders_without_asking_slack(slack_standin: SlackStandin) -> None:
    perms = permissions(slack_standin, ("U0ALICE", "W0GRID"))
    assert perms.is_responder("U0ALICE") and perms.is_responder("W0GRID")
    assert not perms.is_responder("U0MALLORY") and not perms.is_responder("")
    assert slack_standin.calls_to("usergroups.users.list") == []


def test_group_members_are_resolved_and_cached(slack_standin: SlackStandin) -> None:
    slack_standin.usergroups[GROUP] = ["U0BOB", "U0CAROL"]
    clock = Tick()
    perms = permissions(slack_standin, ("U0ALICE", GROUP), clock)
    assert perms.is_responder("U0BOB") and perms.is_responder("U0CAROL")
    assert not perms.is_responder("U0MALLORY")
    calls = slack_standin.calls_to("usergroups.users.list")
    assert len(calls) == 1 and calls[0].params["usergroup"] == GROUP

    # Membership changes are picked up once the cache expires, not before.
    slack_standin.usergroups[GROUP] = ["U0MALLORY"]
    clock.now += 299
    assert perms.is_responder("U0BOB") and not perms.is_responder("U0MALLORY")
    clock.now += 2
    assert perms.is_responder("U0MALLORY") and not perms.is_responder("U0BOB")
    assert len(slack_standin.calls_to("usergroups.users.list")) == 2


def test_slack_errors_fall_back_to_the_last_known_members(slack_standin: SlackStandin) -> None:
    slack_standin.usergroups[GROUP] = ["U0BOB"]
    clock = Tick()
    perms = permissions(slack_standin, (GROUP,), clock)
    assert perms.is_responder("U0BOB")
    clock.now += 301
    slack_standin.fail_next("usergroups.users.list", error="ratelimited")
    assert perms.is_responder("U0BOB")


def test_slack_errors_with_nothing_known_deny(slack_standin: SlackStandin) -> None:
    slack_standin.usergroups[GROUP] = ["U0BOB"]
    slack_standin.fail_next("usergroups.users.list", error="missing_scope")
    perms = permissions(slack_standin, (GROUP,))
    assert not perms.is_responder("U0BOB")
    # The next press asks again and succeeds.
    assert perms.is_responder("U0BOB")


def test_concurrent_presses_ask_slack_once(slack_standin: SlackStandin) -> None:
    slack_standin.usergroups[GROUP] = ["U0BOB"]
    perms = permissions(slack_standin, (GROUP,))
    barrier = threading.Barrier(8)
    answers: list[bool] = []

    def press() -> None:
        barrier.wait()
        answers.append(perms.is_responder("U0BOB"))

    threads = [threading.Thread(target=press) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert answers == [True] * 8
    assert len(slack_standin.calls_to("usergroups.users.list")) == 1


def test_describe_names_who_may_act(slack_standin: SlackStandin) -> None:
    perms = permissions(slack_standin, ("U1", "S1"))
    assert perms.describe() == "Only responders may fix: <@U1>, <!subteam^S1>"
    assert perms.describe("undo").startswith("Only responders may undo:")
    assert "none are configured" in permissions(slack_standin, ()).describe()
    assert not permissions(slack_standin, ()).is_responder("U1")


@pytest.mark.parametrize("bad", ["alice", "<@U1>", "C0CHANNEL", "u0lower"])
def test_malformed_responders_are_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="RESPONDERS"):
        Permissions(("U0ALICE", bad), WebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"))


def test_every_press_is_an_audit_row(store: Store) -> None:
    moments = iter(datetime(2025, 3, 1, 9, m, tzinfo=UTC) for m in range(10))
    audit = AuditLog(store, clock=lambda: next(moments))
    first = audit.record("U0MALLORY", "fix", 7, "refused", "not a responder")
    audit.record("U0ALICE", "fix", 7, "applied", "BlockPublicPolicy on", aws_request_id="REQ1")
    audit.record("U0BOB", "ack", 8, "acknowledged")
    audit.record("U0ALICE", "allowlist", None, "listed")

    rows = audit.for_alert(7)
    assert [(r.user, r.outcome) for r in rows] == [("U0MALLORY", "refused"), ("U0ALICE", "applied")]
    assert rows[0].id == first and rows[0].detail == "not a responder" and rows[0].aws_request_id == ""
    assert rows[1].aws_request_id == "REQ1" and rows[1].at == datetime(2025, 3, 1, 9, 1, tzinfo=UTC)
    recent = audit.recent(3)
    assert [r.action for r in recent] == ["allowlist", "ack", "fix"] and recent[0].alert_id is None
    assert rows[1].at - rows[0].at == timedelta(minutes=1)
