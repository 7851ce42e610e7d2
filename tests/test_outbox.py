"""The outbox against the Slack stand-in: stored first, posted after, retried until Slack accepts it."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.alerts.engine import AlertService
from bot.core.clock import parse_iso
from bot.slack.outbox import CARD_FAILED, MAX_ATTEMPTS, Outbox
from bot.slack.webclient import retry_handlers
from bot.store.database import Store
from tests.ports import unused_port
from tests.slack_standin import SlackStandin, slack_standin  # noqa: F401
from tests.test_alerts import ALL_OFF, PUBLIC_POLICY, bpa, make_record
from tests.wiring import alert_service, notifier_of, render_card

CHANNEL = "C0ALERTS"
TOKEN = "xoxb-never-log-me"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def wire(store: Store, url: str, *, handlers: bool = False) -> tuple[AlertService, Outbox, Clock]:
    clock = Clock()
    client = WebClient(token=TOKEN, base_url=url, retry_handlers=retry_handlers() if handlers else [])
    outbox = Outbox(store, client, CHANNEL, clock=clock)
    return alert_service(store, outbox=outbox, clock=clock), outbox, clock


def open_one(service: AlertService) -> int:
    return service.process([bpa(ALL_OFF)])[0].alert_id


def test_card_is_stored_first_and_its_channel_and_ts_kept(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, _ = wire(store, slack_standin.url)
    alert_id = open_one(service)
    assert [r["kind"] for r in outbox.pending()] == ["card"] and slack_standin.calls == []
    assert outbox.flush() == 1
    posted = slack_standin.accepted("chat.postMessage")[0]
    alert = service.get(alert_id)
    assert (alert.channel, alert.ts) == (CHANNEL, slack_standin.top_level()[0].ts)
    assert posted.token == TOKEN and posted.params["unfurl_links"] is False
    assert outbox.pending() == []


def test_updates_coalesce_and_threads_wait_for_the_card(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, _ = wire(store, slack_standin.url)
    alert_id = open_one(service)
    slack_standin.fail_next("chat.postMessage", error="channel_not_found")
    outbox.flush()  # the card fails: nothing else about this alert may go out
    service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=1)])
    service.transition(alert_id, "acknowledged", "U0ALICE")
    notifier_of(service, store).note(alert_id, "a note")
    assert outbox.flush() == 0
    assert slack_standin.methods() == ["chat.postMessage"]
    card = next(r for r in outbox.pending() if r["kind"] == "card")
    assert card["last_error"] == "channel_not_found"
    assert parse_iso(card["next_attempt_at"]) == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)  # retried slowly


def test_thread_and_update_after_the_card(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, _ = wire(store, slack_standin.url)
    alert_id = open_one(service)
    outbox.flush()
    service.process([make_record("PutBucketPolicy", {"bucketPolicy": PUBLIC_POLICY}, minutes=1)])
    service.transition(alert_id, "acknowledged", "U0ALICE")
    assert outbox.flush() == 2
    ts = service.get(alert_id).ts
    assert [m.thread_ts for m in slack_standin.messages] == [None, ts]
    assert [c.params["ts"] for c in slack_standin.accepted("chat.update")] == [ts]  # one update for two changes
    assert "Acknowledged" in str(slack_standin.message(ts).blocks)


def test_rate_limit_honours_retry_after(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, clock = wire(store, slack_standin.url)
    alert_id = open_one(service)
    slack_standin.fail_next("chat.postMessage", status=429, retry_after=30)
    assert outbox.flush() == 0
    row = outbox.pending()[0]
    assert row["last_error"] == "ratelimited" and row["attempts"] == 1
    assert parse_iso(row["next_attempt_at"]) == clock.now + timedelta(seconds=30)
    clock.now += timedelta(seconds=10)
    assert outbox.flush() == 0 and len(slack_standin.calls) == 1  # not due yet: Slack is not asked
    clock.now += timedelta(seconds=21)
    assert outbox.flush() == 1
    assert service.get(alert_id).ts == slack_standin.top_level()[0].ts


def test_server_errors_back_off_then_succeed(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, clock = wire(store, slack_standin.url)
    open_one(service)
    slack_standin.fail_next("chat.postMessage", times=2, status=503)
    assert outbox.flush() == 0
    first = parse_iso(outbox.pending()[0]["next_attempt_at"])
    clock.now = first
    assert outbox.flush() == 0
    second = parse_iso(outbox.pending()[0]["next_attempt_at"])
    assert second - clock.now > first - datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # exponential
    assert outbox.pending()[0]["last_error"] == "http 503"
    clock.now = second
    assert outbox.flush() == 1 and len(slack_standin.top_level()) == 1


def test_a_429_reschedules_that_message_and_the_rest_keep_flowing(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    """Defect 8: Retry-After: 20, three times, held flush() (and its lock) for 40 s. Now the 429'd card is
    rescheduled after Retry-After and the other alerts' cards go out in the same flush, with no sleep,
    even when the WebClient was built with the bot's retry handlers."""
    service, outbox, clock = wire(store, slack_standin.url, handlers=True)
    for name in ("bw-a", "bw-b", "bw-c"):
        service.process([bpa(ALL_OFF, bucket=name)])
    slack_standin.fail_next("chat.postMessage", times=3, status=429, retry_after=20)
    started = time.monotonic()
    assert outbox.flush() == 0  # three cards, three 429s: each rescheduled, none slept on
    assert time.monotonic() - started < 3
    assert {r["last_error"] for r in outbox.pending()} == {"ratelimited"}
    assert {parse_iso(r["next_attempt_at"]) for r in outbox.pending()} == {clock.now + timedelta(seconds=20)}
    slack_standin.fail_next("chat.postMessage", times=1, status=429, retry_after=20)
    clock.now += timedelta(seconds=20)
    started = time.monotonic()
    assert outbox.flush() == 2  # one more 429: that card waits again, the other two are posted now
    assert time.monotonic() - started < 3
    assert len(outbox.pending()) == 1 and len(slack_standin.top_level(CHANNEL)) == 2
    clock.now += timedelta(seconds=20)
    assert outbox.flush() == 1 and len(slack_standin.top_level(CHANNEL)) == 3


def test_cards_carry_metadata_naming_the_alert(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, _ = wire(store, slack_standin.url)
    alert_id = open_one(service)
    outbox.flush()
    posted = slack_standin.accepted("chat.postMessage")[0].params
    assert posted["metadata"] == {"event_type": "bucketwatch_alert", "event_payload": {"alert_id": alert_id}}


def test_a_card_answered_too_late_is_adopted_not_posted_twice(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    """Defect 7: Slack accepted the card but answered after the client's timeout. The next attempt finds
    it with conversations.history (include_all_metadata) and adopts it: one card, updates edit it."""
    clock = Clock()
    client = WebClient(token=TOKEN, base_url=slack_standin.url, timeout=1)
    outbox = Outbox(store, client, CHANNEL, clock=clock)
    service = alert_service(store, outbox=outbox, clock=clock)
    alert_id = open_one(service)
    slack_standin.delay_next("chat.postMessage", 2.5)
    assert outbox.flush() == 0
    row = outbox.pending()[0]
    assert row["attempt_started_at"] and row["last_error"] in ("TimeoutError", "URLError", "timeout")
    assert len(slack_standin.top_level(CHANNEL)) == 1  # Slack has it all the same
    clock.now = parse_iso(row["next_attempt_at"])
    assert outbox.flush() == 1
    assert len(slack_standin.top_level(CHANNEL)) == 1 and len(slack_standin.calls_to("chat.postMessage")) == 1
    history = slack_standin.calls_to("conversations.history")[0].params
    assert history["include_all_metadata"] in ("1", "true", True) and history["channel"] == CHANNEL
    assert service.get(alert_id).ts == slack_standin.top_level(CHANNEL)[0].ts
    service.transition(alert_id, "acknowledged", "U0ALICE")
    assert outbox.flush() == 1
    assert slack_standin.accepted("chat.update")[0].params["ts"] == service.get(alert_id).ts


def test_an_adopted_card_shows_what_happened_while_its_outcome_was_unknown(
    store: Store, slack_standin: SlackStandin  # noqa: F811
) -> None:
    """Before, an acknowledge made between the lost answer and the adoption never reached the card: it still
    said Open, with the Acknowledge button, while the alert was acknowledged."""
    clock = Clock()
    outbox = Outbox(store, WebClient(token=TOKEN, base_url=slack_standin.url, timeout=1), CHANNEL, clock=clock)
    service = alert_service(store, outbox=outbox, clock=clock)
    alert_id = open_one(service)
    slack_standin.delay_next("chat.postMessage", 2.5)
    assert outbox.flush() == 0
    service.transition(alert_id, "acknowledged", "U0ALICE")  # while the card's outcome is unknown
    clock.now = parse_iso(outbox.pending()[0]["next_attempt_at"])
    outbox.flush()
    outbox.flush()
    [card] = slack_standin.top_level(CHANNEL)
    status = json.dumps(card.blocks)
    assert "Acknowledged" in status and '"action_id": "ack"' not in status
    assert len(slack_standin.calls_to("chat.postMessage")) == 1 and outbox.pending() == []


def test_a_card_not_found_after_an_unknown_outcome_is_posted(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    """A 5xx may or may not have posted: the look-up finds nothing here, so the card is posted, once."""
    service, outbox, clock = wire(store, slack_standin.url)
    open_one(service)
    slack_standin.fail_next("chat.postMessage", status=503)
    assert outbox.flush() == 0
    clock.now = parse_iso(outbox.pending()[0]["next_attempt_at"])
    assert outbox.flush() == 1
    assert slack_standin.methods() == ["chat.postMessage", "conversations.history", "chat.postMessage"]
    assert len(slack_standin.top_level(CHANNEL)) == 1


def test_a_failed_look_up_posts_nothing_and_tries_again(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, clock = wire(store, slack_standin.url)
    open_one(service)
    slack_standin.fail_next("chat.postMessage", status=500)
    outbox.flush()
    slack_standin.fail_next("conversations.history", status=429, retry_after=7)
    clock.now = parse_iso(outbox.pending()[0]["next_attempt_at"])
    assert outbox.flush() == 0
    row = outbox.pending()[0]
    assert row["attempt_started_at"] and parse_iso(row["next_attempt_at"]) == clock.now + timedelta(seconds=7)
    assert len(slack_standin.calls_to("chat.postMessage")) == 1
    clock.now += timedelta(seconds=7)
    assert outbox.flush() == 1 and len(slack_standin.top_level(CHANNEL)) == 1


def test_rejected_layout_falls_back_to_text(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, _ = wire(store, slack_standin.url)
    alert_id = open_one(service)
    slack_standin.fail_next("chat.postMessage", error="invalid_blocks")
    assert outbox.flush() == 1
    posted = slack_standin.accepted("chat.postMessage")[0]
    assert "blocks" not in posted.params and "bw-data-prod" in posted.params["text"]
    assert service.get(alert_id).ts


def test_unreachable_slack_never_raises(store: Store) -> None:
    port = unused_port()  # nobody listens: connection refused
    service, outbox, _ = wire(store, f"http://127.0.0.1:{port}/api/")
    open_one(service)
    assert outbox.flush() == 0
    assert outbox.pending()[0]["last_error"] in ("URLError", "ConnectionRefusedError", "OSError")


def test_deleted_card_update_is_dropped_not_retried_forever(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, _ = wire(store, slack_standin.url)
    alert_id = open_one(service)
    outbox.flush()
    slack_standin.fail_next("chat.update", error="message_not_found")
    service.transition(alert_id, "acknowledged", "U0ALICE")
    assert outbox.flush() == 1 and outbox.pending() == []


def test_message_without_alert_goes_to_the_channel(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    _, outbox, _ = wire(store, slack_standin.url)
    outbox.enqueue_message("Exception #3 for bw-site expires tomorrow")
    assert outbox.flush() == 1
    assert slack_standin.top_level(CHANNEL)[0].text.startswith("Exception #3")


def test_no_token_in_logs(store: Store, slack_standin: SlackStandin, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG)
    service, outbox, clock = wire(store, slack_standin.url)
    open_one(service)
    for failure in ({"status": 429}, {"status": 500}, {"error": "invalid_auth"}):
        slack_standin.fail_next("chat.postMessage", **failure)  # type: ignore[arg-type]
        outbox.flush()
        clock.now += timedelta(hours=1)
    assert outbox.flush() == 1
    assert caplog.records and TOKEN not in caplog.text


def test_two_processes_flushing_at_once_post_each_item_once(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, clock = wire(store, slack_standin.url)
    other_store = Store(store.path)  # its own connection, as `poll --once` beside the bot has
    other = Outbox(other_store, WebClient(token=TOKEN, base_url=slack_standin.url), CHANNEL, clock=clock)
    other.render = notifier_of(service, store).render_card
    inner: list[int] = []

    def render_while_the_other_flushes(alert_id: int) -> tuple[str, list[Any]]:
        inner.append(other.flush())  # the other process runs its whole flush between our claim and our post
        return render_card(service, alert_id)

    outbox.render = render_while_the_other_flushes
    open_one(service)
    assert outbox.flush() == 1 and inner == [0]
    assert len(slack_standin.accepted("chat.postMessage")) == 1
    assert other.flush() == 0 and outbox.pending() == []


def test_an_item_not_due_does_not_hold_up_newer_ones(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, _ = wire(store, slack_standin.url)
    for name in ("bw-a", "bw-b"):
        service.process([bpa(ALL_OFF, bucket=name)])
    slack_standin.fail_next("chat.postMessage", times=2, error="not_in_channel")
    assert outbox.flush() == 0  # both cards wait 15 minutes now
    service.process([bpa(ALL_OFF, bucket="bw-c")])
    assert outbox.flush(limit=2) == 1
    assert "bw-c" in slack_standin.top_level(CHANNEL)[0].text


def test_an_item_that_keeps_failing_is_set_aside_and_counted(store: Store, slack_standin: SlackStandin) -> None:  # noqa: F811
    service, outbox, clock = wire(store, slack_standin.url)
    alert_id = open_one(service)
    notifier_of(service, store).note(alert_id, "a note for the card's thread")
    slack_standin.fail_next("chat.postMessage", times=MAX_ATTEMPTS, status=500)
    for _ in range(MAX_ATTEMPTS):
        assert outbox.failed() == 0
        outbox.flush()
        clock.now += timedelta(hours=1)
    assert outbox.failed() == 2 and outbox.pending() == []  # the card, and its reply with nowhere to go
    assert {r["last_error"] for r in outbox.failed_items()} == {"http 500", CARD_FAILED}
    service.process([bpa(ALL_OFF, bucket="bw-next")])
    assert outbox.flush() == 1  # the rest of the queue moves on
    assert outbox.retry_failed() == 2 and outbox.flush() == 2 and outbox.failed() == 0
    card = service.get(alert_id)
    assert card is not None and card.ts
    assert [m.text for m in slack_standin.replies(card.ts)] == ["a note for the card's thread"]
