"""Asking the actor: who is behind a change (a Slack user to ask, or why nobody), and each ask's state.

One row per alert in `asks`, written in the transaction that opened the alert, so an alert is never
asked twice and never forgotten across a crash. States: `resolving` (a person; their Slack user is
being looked up) → `asked` (the DM is in the outbox; its `sent_at` is when they were asked) →
`answered`; or `not_asked` (a robot: an AWS service, the bot's own role, UNATTENDED_ROLES) and
`unreachable` (no email, not found in Slack, cannot be DMed). Nothing here speaks Slack.
"""

from __future__ import annotations

import fnmatch
import re
import statistics
from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from bot.core.asking import actor_map
from bot.core.clock import iso, parse_iso
from bot.core.config import Settings
from bot.core.record import Actor
from bot.store.database import Store

RESOLVING, ASKED, ANSWERED, NOT_ASKED, UNREACHABLE = "resolving", "asked", "answered", "not_asked", "unreachable"
INTENDED, NOT_ME = "intended", "not_me"
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}$")
_INSTANCE = re.compile(r"^i-[0-9a-f]{8,17}$")  # an EC2 instance profile's session name


@dataclass(frozen=True)
class Rules:
    """Who is asked, from the settings: ACTOR_MAP, ACTOR_EMAIL_DOMAIN, UNATTENDED_ROLES, the bot's roles."""

    email_domain: str = ""
    mapped: tuple[tuple[str, str], ...] = ()
    unattended: tuple[str, ...] = ()
    bot_roles: tuple[str, ...] = ()  # role names (the last part of an ARN)

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        arns = [a.role_arn for a in settings.accounts if a.role_arn] + [settings.remediation_role]
        roles = tuple(sorted({_role_name(r) for r in arns if r}))
        return cls(settings.actor_email_domain, tuple(actor_map(settings.actor_map).items()),
                   settings.unattended_roles, roles)


@dataclass(frozen=True)
class Decision:
    state: str  # RESOLVING, NOT_ASKED or UNREACHABLE
    reason: str = ""
    email: str = ""
    slack_user: str = ""


def _role_name(role: str) -> str:
    return role.rsplit("/", 1)[-1] if role.startswith("arn:") else role


def decide(actor: Actor, rules: Rules) -> Decision:
    """Whom to ask about a change `actor` made: a mapped Slack user, an email to look up, or why nobody."""
    role = actor.role
    if actor.kind == "AWSService":
        return Decision(NOT_ASKED, f"an AWS service made this change ({actor.person})")
    if role and role in rules.bot_roles:
        return Decision(NOT_ASKED, f"the bot's own role {role} made this change")
    names = [n for n in (role, actor.issuer, actor.arn, actor.person) if n]
    listed = next((p for p in rules.unattended for n in names if fnmatch.fnmatchcase(n, p)), None)
    if listed is not None:
        return Decision(NOT_ASKED, f"{role or actor.person} is an unattended role (UNATTENDED_ROLES {listed})")
    if actor.kind in ("AssumedRole", "SSO") and _INSTANCE.match(actor.person):
        return Decision(NOT_ASKED, f"an EC2 instance ({actor.person}) made this change through role {role}")
    mapped = dict(rules.mapped)
    for key in (actor.arn, actor.person, actor.issuer, role):
        if key and key in mapped:
            return Decision(RESOLVING, slack_user=mapped[key])
    if _EMAIL.match(actor.person):
        return Decision(RESOLVING, email=actor.person.lower())
    if actor.kind == "Root":
        return Decision(UNREACHABLE, "the account's root user made this change (map it in ACTOR_MAP)")
    if rules.email_domain and _LOCAL_PART.match(actor.person):
        return Decision(RESOLVING, email=f"{actor.person}@{rules.email_domain}".lower())
    who = actor.person or actor.arn or "the actor"
    return Decision(UNREACHABLE, f"no email for {who} (set ACTOR_EMAIL_DOMAIN or map it in ACTOR_MAP)")


@dataclass(frozen=True)
class Ask:
    """One row of `asks`, with its DM's delivery from the outbox."""

    alert_id: int
    state: str
    actor_arn: str = ""
    actor_name: str = ""
    email: str = ""
    slack_user: str = ""
    reason: str = ""
    created_at: datetime | None = None
    dm_channel: str = ""
    dm_outbox_id: int | None = None
    asked_at: datetime | None = None  # when the DM went out (None while it waits in the outbox)
    answer: str = ""
    answered_at: datetime | None = None
    escalated_at: datetime | None = None
    dm_ts: str = ""

    @property
    def time_to_answer(self) -> timedelta | None:
        if self.answered_at is None:
            return None
        start = self.asked_at or self.created_at
        return max(timedelta(), self.answered_at - start) if start else None


_SELECT = ("SELECT a.*, o.sent_at AS sent_at, o.ts AS dm_ts FROM asks a"
           " LEFT JOIN outbox o ON o.id = a.dm_outbox_id")
_UNDELIVERED = ("SELECT a.alert_id, o.last_error FROM asks a JOIN outbox o ON o.id = a.dm_outbox_id"
                " WHERE a.state = ? AND o.sent_at IS NULL AND (o.failed_at IS NOT NULL OR o.last_error IN ({}))"
                " ORDER BY a.alert_id")


def _ask(row: dict[str, Any]) -> Ask:
    names = {f.name for f in fields(Ask)}
    values = {k: v for k, v in row.items() if k in names and v is not None}
    for name in ("created_at", "answered_at", "escalated_at"):
        values[name] = parse_iso(row.get(name))
    values["asked_at"] = parse_iso(row.get("sent_at"))
    return Ask(**values)


class AskStore:
    """The `asks` table: written when an alert opens, moved by the ask job and by the actor's answers."""

    def __init__(self, store: Store):
        self.store = store

    def create(self, alert_id: int, actor: Actor, decision: Decision, now: datetime) -> None:
        """The ask of a new alert (a second call for the same alert changes nothing)."""
        row = {"alert_id": alert_id, "state": decision.state, "actor_arn": actor.arn, "actor_name": actor.display,
               "email": decision.email, "slack_user": decision.slack_user, "reason": decision.reason,
               "created_at": iso(now)}
        self.store.db.table("asks").insert(row, ignore=True)

    def get(self, alert_id: int) -> Ask | None:
        cursor = self.store.db.execute(f"{_SELECT} WHERE a.alert_id = ?", [alert_id])
        row = cursor.fetchone()
        return _ask(dict(zip([c[0] for c in cursor.description], row, strict=True))) if row else None

    def _many(self, where: str, params: list[Any]) -> list[Ask]:
        cursor = self.store.db.execute(f"{_SELECT} WHERE {where} ORDER BY a.alert_id", params)
        names = [c[0] for c in cursor.description]
        return [_ask(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]

    def resolving(self) -> list[Ask]:
        return self._many("a.state = ?", [RESOLVING])

    def silent_since(self, cutoff: datetime) -> list[Ask]:
        """Asked (the DM went out at or before `cutoff`), no answer, responders not told yet."""
        return self._many("a.state = ? AND a.escalated_at IS NULL AND o.sent_at IS NOT NULL AND o.sent_at <= ?",
                          [ASKED, iso(cutoff)])

    def move(self, alert_id: int, expect: str, **values: Any) -> bool:
        """Compare-and-set: change the row only if it is still in state `expect`; False if it moved on."""
        values = {k: iso(v) if isinstance(v, datetime) else v for k, v in values.items()}
        sets = ", ".join(f"{k} = ?" for k in values)
        cursor = self.store.db.execute(f"UPDATE asks SET {sets} WHERE alert_id = ? AND state = ?",  # noqa: S608
                                       [*values.values(), alert_id, expect])
        return cursor.rowcount == 1

    def undelivered(self, hopeless: Collection[str]) -> list[tuple[int, str]]:
        """(alert id, Slack's error) of each ask whose DM will not arrive: the outbox gave it up, or Slack
        answered one of `hopeless` (an error no retry changes, such as a DM channel the bot may not post in)."""
        codes = sorted(hopeless)
        cursor = self.store.db.execute(_UNDELIVERED.format(", ".join("?" * len(codes))), [ASKED, *codes])
        return [(int(alert_id), str(error or "unknown error")) for alert_id, error in cursor.fetchall()]

    def mark_escalated(self, alert_id: int, now: datetime) -> bool:
        cursor = self.store.db.execute(
            "UPDATE asks SET escalated_at = ? WHERE alert_id = ? AND state = ? AND escalated_at IS NULL",
            [iso(now), alert_id, ASKED])
        return cursor.rowcount == 1

    def since(self, start: datetime, end: datetime) -> list[Ask]:
        """Asks created in (start, end] (the digest's window)."""
        return self._many("a.created_at > ? AND a.created_at <= ?", [iso(start), iso(end)])


@dataclass(frozen=True)
class AskFigures:
    """The digest's line on asking: how many were asked, answered (which way), how fast."""

    asked: int = 0
    intended: int = 0
    not_me: int = 0
    silent: int = 0  # asked, no answer yet
    not_asked: int = 0
    unreachable: int = 0
    times: tuple[timedelta, ...] = ()

    @property
    def median(self) -> timedelta | None:
        return timedelta(seconds=statistics.median(t.total_seconds() for t in self.times)) if self.times else None

    @property
    def any(self) -> bool:
        return bool(self.asked or self.not_asked or self.unreachable)


def ask_figures(asks: list[Ask]) -> AskFigures:
    asked = [a for a in asks if a.state in (ASKED, ANSWERED)]
    return AskFigures(
        asked=len(asked),
        intended=sum(1 for a in asked if a.answer == INTENDED),
        not_me=sum(1 for a in asked if a.answer == NOT_ME),
        silent=sum(1 for a in asked if not a.answer),
        not_asked=sum(1 for a in asks if a.state == NOT_ASKED),
        unreachable=sum(1 for a in asks if a.state == UNREACHABLE),
        times=tuple(t for a in asked if (t := a.time_to_answer) is not None),
    )
