"""Slack mrkdwn helpers: escaping hostile text, dates in the reader's time zone, code, truncation.

Slack's "Formatting text for app surfaces" page: `&`, `<` and `>` are the only characters that must be
escaped; everything Slack treats as a control sequence (`<!channel>`, `<@U…>`, `<url|label>`,
`<!date^…>`) starts with `<`, so escaping it turns any such sequence in a user agent, session name or
policy into plain text that never pings and never links.

Escaping is not enough on its own: a mrkdwn text object with `verbatim: false` (Slack's default) has
Slack turn a bare `@channel`, `#channel`, URL or domain in it into a mention or a link. So every block
the bot sends passes through `inert()`, which sets `verbatim: true` on each mrkdwn object; the bot's
own mentions, links and dates are written as explicit `<…>` sequences, which verbatim text still renders.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# C0/C1 control characters (keep newline and tab out of inline text too: a newline in a user agent
# would break the card's layout and could fake a line of the card).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
TRUNCATION_NOTE = "… (truncated)"


def escape(text: object, *, multiline: bool = False) -> str:
    """Caller-chosen text as inert mrkdwn: `&`, `<`, `>` escaped, control characters removed."""
    value = "" if text is None else str(text)
    value = _CONTROL.sub(" ", value)
    if not multiline:
        value = value.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: object) -> str:
    """Text for `plain_text` objects (headers, button labels): no entities there, so no angle brackets."""
    value = "" if text is None else str(text)
    value = _CONTROL.sub(" ", value).replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return value.replace("<", "‹").replace(">", "›")


def strip_controls(text: object) -> str:
    """Text for a terminal: control and bidi characters become spaces (newlines, tabs and `<` stay)."""
    return _CONTROL.sub(" ", "" if text is None else str(text))


def code(text: object, *, empty: str = "(none)") -> str:
    """Inline code of hostile text; a backtick inside cannot close the span early."""
    value = escape(text)
    if not value:
        return f"_{empty}_"
    return "`" + value.replace("`", "ˋ") + "`"


def user(who: str | None) -> str:
    """A Slack user id as a mention (`<@U…>`); anything else (an AWS name) as escaped text."""
    if not who:
        return "someone"
    if _SLACK_USER.match(who):
        return f"<@{who}>"
    return escape(who)


def link(url: str, label: str) -> str:
    """`<url|label>` with the label escaped and the URL unable to close the sequence."""
    safe_url = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace(" ", "%20")
    safe_label = escape(label).replace("|", "¦")
    return f"<{safe_url}|{safe_label}>"


def quote_path(part: str) -> str:
    """One URL path or fragment component, percent-encoded."""
    return urllib.parse.quote(part, safe="")


def _fallback(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(
    moment: datetime | None, fmt: str = "{date_short_pretty} {time}", fallback: str | None = None
) -> str:
    """`<!date^epoch^fmt|fallback>`: Slack shows it in each reader's own time zone."""
    if moment is None:
        return "unknown time"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    epoch = int(moment.timestamp())
    shown = fallback if fallback is not None else _fallback(moment)
    # The fallback sits inside the control sequence: it must not contain | or >.
    shown = escape(shown).replace("|", "¦")
    safe_fmt = fmt.replace("|", "").replace(">", "").replace("<", "")
    return f"<!date^{epoch}^{safe_fmt}|{shown}>"


def truncate(text: str, limit: int, note: str = TRUNCATION_NOTE) -> str:
    """Cut mrkdwn to `limit` characters with a note, never inside an entity or a `<…>` sequence."""
    if len(text) <= limit:
        return text
    if limit <= len(note):
        return note[:limit]
    cut = text[: limit - len(note)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp < 6:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]
    if cut.count("`") % 2:
        # An unclosed code span would swallow the note.
        cut = cut[: cut.rfind("`")]
    return cut + note


def truncate_plain(text: str, limit: int) -> str:
    """Cut plain text to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def inert(blocks: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Blocks (slack_sdk models or dicts) as dicts, every mrkdwn text object in them `verbatim: true`."""
    return [_verbatim(b.to_dict() if hasattr(b, "to_dict") else b) for b in blocks or ()]


def inert_view(view: Any) -> dict[str, Any]:
    """A view (modal, App Home) as a dict with its blocks made inert."""
    data = dict(view.to_dict() if hasattr(view, "to_dict") else view)
    data["blocks"] = inert(data.get("blocks"))
    return data


def _verbatim(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _verbatim(value) for key, value in node.items()}
        if out.get("type") == "mrkdwn" and "text" in out:
            out["verbatim"] = True
        return out
    if isinstance(node, list):
        return [_verbatim(item) for item in node]
    return node
