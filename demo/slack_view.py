"""Reading the Slack stand-in the way the story shows it: a card's status line, its verdict and
who-changed fields, a button's value, waiting for a thread reply."""

from __future__ import annotations

import json
import time
from typing import Any

from demo.render import render_blocks
from demo.world import NAMES, Demo


def status_line(message: Any) -> str:
    """The card's status section (the first section), as one line of text."""

    blocks = json.loads(message.blocks) if isinstance(message.blocks, str) else list(message.blocks or [])
    section = next((b for b in blocks if b.get("type") == "section"), None)
    lines = render_blocks([section] if section else [], fallback=message.text, width=10_000, users=NAMES)
    return "card now says: " + " ".join(line.strip() for line in lines if line.strip())


def verdict_and_who(blocks: Any) -> list[dict[str, Any]]:
    blocks = json.loads(blocks) if isinstance(blocks, str) else list(blocks or [])
    keep = [b for b in blocks if b.get("type") in ("section", "context")]
    return keep[:4]


def wait_reply(demo: Demo, ts: str, count: int, containing: str = "") -> Any:

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        replies = demo.slack.replies(ts)
        fresh = replies[count:]
        for reply in fresh:
            if not containing or containing in json.dumps(reply.blocks or []) + reply.text:
                return reply
        time.sleep(0.05)
    raise RuntimeError("the bot did not reply in the thread")


def button_value(blocks: Any, action: str) -> str:
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    for block in blocks or []:
        for element in block.get("elements", []) + ([block["accessory"]] if block.get("accessory") else []):
            if isinstance(element, dict) and action in str(element.get("action_id", "")):
                return str(element.get("value"))
    raise RuntimeError(f"no {action} button")
