"""The `slack_standin` fixture: a started `bot.standins.slack.SlackStandin`, stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from standins.slack import Call, Message, SlackStandin

__all__ = ["Call", "Message", "SlackStandin", "slack_standin"]


@pytest.fixture
def slack_standin() -> Iterator[SlackStandin]:
    """A started SlackStandin, stopped after the test."""
    with SlackStandin() as standin:
        yield standin
