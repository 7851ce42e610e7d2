"""Exactly one card per alert across a SIGKILL (issue 8, defect 7): a process killed after Slack took the
card but before the row was marked sent; the next flush finds the card by its metadata and adopts it."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

from slack_sdk import WebClient

from bot.core.clock import utcnow
from bot.slack.outbox import LEASE, Outbox
from bot.store.database import Store
from tests.killed import kill_once_slack_took_it
from tests.slack_standin import SlackStandin, slack_standin
from tests.wiring import alert_service

FIXTURES = (slack_standin,)
SENDER = textwrap.dedent(
    """
    import sys
    from slack_sdk import WebClient
    from tests.wiring import alert_service
    from bot.slack.outbox import Outbox
    from bot.store.database import Store
    from tests.test_alerts import ALL_OFF, bpa
    store = Store(sys.argv[1])
    outbox = Outbox(store, WebClient(token="xoxb-test", base_url=sys.argv[2]), "C0ALERTS")
    service = alert_service(store, outbox=outbox)
    service.process([bpa(ALL_OFF)])
    print("flushing", flush=True)
    outbox.flush()
    print("flushed", flush=True)
    """
)


def test_killed_after_slack_took_the_card_the_card_is_adopted_not_reposted(
    slack_standin: SlackStandin, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    kill_once_slack_took_it(slack_standin, SENDER, db, "C0ALERTS")
    store = Store(db)
    row = store.db.execute("SELECT alert_id, sent_at, attempt_started_at FROM outbox").fetchone()
    assert row[1] is None and row[2] is not None  # claimed, outcome unknown

    # The bot starts again (its lease on the item ran out): one card, adopted; the update edits it.
    outbox = Outbox(store, WebClient(token="xoxb-test", base_url=slack_standin.url), "C0ALERTS",
                    clock=lambda: utcnow() + LEASE + timedelta(seconds=1))
    service = alert_service(store, outbox=outbox, clock=outbox.clock)
    assert outbox.flush() == 1
    cards = slack_standin.top_level("C0ALERTS")
    assert len(cards) == 1 and len(slack_standin.calls_to("chat.postMessage")) == 1
    assert service.get(row[0]).ts == cards[0].ts
    service.transition(row[0], "acknowledged", "U0ALICE")
    assert outbox.flush() == 1 and slack_standin.accepted("chat.update")[0].params["ts"] == cards[0].ts
