"""The alert card, thread replies and notes, built with slack-sdk's Block Kit models within Slack's limits.

Everything from a record (user agent, session and user names, ARNs, bucket and object names, policy
text) is escaped with bot.mrkdwn; button values carry only the alert id, which handlers look up
server-side. Limits are Slack's "Block Kit reference" figures; long text is cut with a note.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.alerts.lifecycle import Alert
from bot.core.exposure import ExposureVerdict
from bot.slack.blocks import CONFIRM_TEXT, FIELD_TEXT, HEADER_TEXT, SECTION_TEXT, fit_blocks
from bot.slack.card_text import changed_after_check, changes_text, headline, lead_finding, verdict_text
from bot.slack.fix_messages import fix_label
from bot.slack.messages import closer
from bot.slack.mrkdwn import code, escape, link, plain, quote_path, slack_date, truncate, truncate_plain, user
from detections.base import Finding

SEVERITY_EMOJI = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_circle:",
    "low": ":large_yellow_circle:",
}
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_AGENT_SHOWN = 300


def _region(region: str | None) -> str:
    # awsRegion comes from the record; it lands in a hostname, so only a real region shape is used.
    return region if region and _REGION.match(region) else "us-east-1"


def access_point_console_url(account: str, name: str, region: str | None) -> str:
    r = quote_path(_region(region))
    return f"https://s3.console.aws.amazon.com/s3/ap/{quote_path(account)}/{quote_path(name)}?region={r}"


def s3_console_url(bucket: str | None, region: str | None) -> str:
    r = quote_path(_region(region))
    if not bucket:
        return f"https://s3.console.aws.amazon.com/s3/settings?region={r}"
    return f"https://s3.console.aws.amazon.com/s3/buckets/{quote_path(bucket)}?region={r}&tab=permissions"


def cloudtrail_url(event_id: str, region: str | None) -> str:
    r = _region(region)
    return f"https://{r}.console.aws.amazon.com/cloudtrailv2/home?region={quote_path(r)}#/events/{quote_path(event_id)}"


def status_line(alert: Alert) -> str:
    """The line that changes in place: open, acknowledged by, fixed by, resolved because, accepted."""
    if alert.status == "acknowledged":
        return f":eyes: *Acknowledged* by {user(alert.acknowledged_by)} {slack_date(alert.acknowledged_at)}"
    if alert.status == "fixed":
        extra = f" — {escape(alert.close_reason)}" if alert.close_reason else ""
        return f":white_check_mark: *Fixed* by {closer(alert)} {slack_date(alert.closed_at)}{extra}"
    if alert.status == "resolved":
        reason = escape(alert.close_reason or "the block was restored")
        return f":white_check_mark: *Resolved* because {reason} {slack_date(alert.closed_at)}"
    if alert.status == "accepted":
        # Accepted by an exception or a bucket tag: the reason names it; only a person is "by".
        by = f" by {closer(alert)}" if alert.closed_by_slack else ""
        return f":ballot_box_with_check: *Accepted as expected*{by}: {escape(alert.close_reason or '')}"
    emoji = SEVERITY_EMOJI.get(alert.severity, ":red_circle:")
    return f"{emoji} *Open* · {escape(alert.severity)} · alert #{alert.id}"


def _field(title: str, body: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(f"*{title}*\n{body}", FIELD_TEXT))


def _mfa(value: bool | None) -> str:
    return "MFA yes" if value else "MFA no" if value is False else "MFA unknown"


def _fields(alert: Alert, finding: Finding | None, alias: str | None) -> list[MarkdownTextObject]:
    """The key facts, read in two columns on a phone: when, from where, with what, where."""
    account = code(alert.account) + (f" ({escape(alias)})" if alias else "")
    where = code(alert.bucket) if alert.bucket else "_whole account_"
    what = "Bucket"
    if alert.access_point:  # its own alert: the access point, not the account
        what, where = "Access point", code(alert.access_point)
    if finding is None:
        return [_field("Account", account), _field("Region", escape(alert.region)), _field(what, where)]
    return [
        _field("When", slack_date(finding.event_time)),
        _field("From", code(finding.source_ip, empty="unknown")),
        _field("Tool", escape(finding.agent_kind)),
        _field("Identity", f"{escape(finding.actor.kind)} · {_mfa(finding.actor.mfa)}"),
        _field("Account", account),
        _field("Region", escape(alert.region) or "_unknown_"),
        _field(what, where),
        _field("Event", f"{code(finding.event_name)} · {escape(alert.severity)}"),
    ]


def _details(finding: Finding | None) -> list[str]:
    """The long values, as context: the caller's ARN and user agent."""
    if finding is None:
        return []
    out = [f"ARN {code(finding.actor.arn, empty='unknown')}"]
    if finding.user_agent:
        out.append(f"{escape(finding.agent_kind)} {code(truncate_plain(finding.user_agent, _AGENT_SHOWN))}")
    return out


def fixable(alert: Alert, verdict: ExposureVerdict | None) -> bool:
    """Whether re-enabling Block Public Access closes this alert.

    Yes for public access (the alert's worst detection is a public one: a later public finding
    raises it); for a precursor only when the live check shows it public now with flags off. A
    cross-account grant names fixed accounts, which Block Public Access does not restrict.
    """
    if alert.is_public_detection:
        return True
    return bool(verdict is not None and verdict.public_now and verdict.flags_off())


def _as_of(moment: datetime) -> str:
    # Plain text: the confirm dialog is not the place for Slack's <!date> sequences.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fix_confirm(alert: Alert, verdict: ExposureVerdict | None) -> ConfirmObject:
    """Slack's confirm dialog: the target, and the flags off at the last live check (the fix reads them again)."""
    if alert.access_point:
        text = (f"Removes the public statements from the policy of access point {code(alert.access_point)}"
                " (the rest of it stays). Account-wide Block Public Access is not changed. The policy is saved"
                " first, so Undo restores it exactly.")
        return ConfirmObject(title="Remove the public policy?", confirm="Remove", deny="Cancel", style="danger",
                             text=MarkdownTextObject(text=truncate(text, CONFIRM_TEXT)))
    target = f"bucket {code(alert.bucket)}" if alert.bucket else f"account {code(alert.account)}"
    if verdict is None or verdict.checked_at is None:
        seen = f"No live check yet: turns on every flag that is off for {target} when pressed."
    else:
        off = verdict.flags_off()
        listed = ", ".join(off) if off else "none (all four were on)"
        seen = f"Flags off as of {_as_of(verdict.checked_at)}: {listed}. Turns on those still off for {target}."
    text = f"{seen} The current settings are saved first, so Undo restores them exactly."
    return ConfirmObject(
        title="Re-enable Block Public Access?",
        text=MarkdownTextObject(text=truncate(text, CONFIRM_TEXT)),
        confirm="Re-enable",
        deny="Cancel",
        style="danger",
    )


def buttons(alert: Alert, verdict: ExposureVerdict | None) -> list[ButtonElement]:
    """The buttons the status (and the kind of alert) still calls for; each value is the alert id only."""
    value = str(alert.id)
    out = []
    if alert.status == "open":
        out.append(ButtonElement(text="Acknowledge", action_id="ack", value=value, style="primary"))
    if alert.is_open and fixable(alert, verdict):
        out.append(
            ButtonElement(
                text=fix_label(alert),
                action_id="fix",
                value=value,
                style="danger",
                confirm=fix_confirm(alert, verdict),
            )
        )
    out.append(ButtonElement(text="Who changed this?", action_id="who_changed", value=value))
    if alert.is_open:
        out.append(ButtonElement(text="Mark as expected…", action_id="allow", value=value))
    return out


def fallback_text(alert: Alert, finding: Finding | None) -> str:
    """Notification text: names the bucket (or account) and the actor's user or session name."""
    who = (finding.actor.person or finding.actor.arn) if finding else alert.actor
    text = f"{alert.severity.upper()}: {alert.title} — {alert.label}, changed by {who or 'unknown'}"
    text += f" ({alert.status})"
    return truncate(escape(text), SECTION_TEXT)


def alert_card(
    alert: Alert,
    findings: Sequence[Finding],
    verdict: ExposureVerdict | None,
    *,
    console_region: str | None = None,
    account_alias: str | None = None,
    ask_line: str = "",
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of the one card per incident; `ask_line`: who was asked, what they said."""
    first = lead_finding(alert, findings)
    stale = changed_after_check(verdict, findings, alert) is not None
    region = console_region or alert.region
    emoji = SEVERITY_EMOJI.get(alert.severity, ":red_circle:")
    header = truncate_plain(
        emoji_plain(emoji) + plain(f"{alert.severity.upper()}: {alert.title}"), HEADER_TEXT
    )
    links = [
        link(s3_console_url(alert.bucket, region), "S3 console" if alert.bucket else "Account BPA settings")
    ]
    if alert.access_point:
        links = [link(access_point_console_url(alert.account, alert.access_point, region), "Access point")]
    if first is not None and first.event_id:
        links.append(link(cloudtrail_url(first.event_id, first.region or region), "CloudTrail event"))
    context = " · ".join(
        [*links, f"alert #{alert.id}", f"{len(findings)} finding{'s' if len(findings) != 1 else ''}"]
    )
    top = headline(alert, first, verdict, stale) + "\n" + status_line(alert) + (f"\n{ask_line}" if ask_line else "")
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=header, emoji=True)),
        SectionBlock(block_id=f"bw-status-{alert.id}", text=MarkdownTextObject(text=truncate(top, SECTION_TEXT))),
        SectionBlock(fields=_fields(alert, first, account_alias)),
        SectionBlock(text=MarkdownTextObject(text=changes_text(findings, verdict))),
        SectionBlock(text=MarkdownTextObject(text=verdict_text(verdict, findings, alert))),
        ContextBlock(
            elements=[MarkdownTextObject(text=truncate(t, SECTION_TEXT))
                      for t in [*_details(first), context]]
        ),
        DividerBlock(),
        ActionsBlock(block_id=f"bw-actions-{alert.id}", elements=buttons(alert, verdict)),
    ]
    return fallback_text(alert, first), fit_blocks(blocks)


def emoji_plain(emoji: str) -> str:
    return emoji + " " if emoji.startswith(":") else ""


def finding_reply(
    alert: Alert, finding: Finding, *, verdict: ExposureVerdict | None = None
) -> tuple[str, list[Block]]:
    """A later finding on the same incident, as a reply in the card's thread (with the live check when given)."""
    emoji = SEVERITY_EMOJI.get(finding.severity, ":red_circle:")
    body = [
        f"{emoji} *{escape(finding.title)}*",
        f"by {escape(finding.actor.display)} ({escape(finding.actor.kind)}, {_mfa(finding.actor.mfa)}) "
        f"from {code(finding.source_ip, empty='unknown')} using {escape(finding.agent_kind)} "
        f"{slack_date(finding.event_time)}",
    ]
    body += [f"• {code(c.what)}: {escape(c.before)} → {escape(c.after)}" for c in finding.changes[:10]]
    if verdict is not None:
        body.append(verdict_text(verdict, [finding]))  # says so when the check predates this change
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(body), SECTION_TEXT)))
    ]
    if finding.user_agent:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=truncate(
                            "User agent: " + code(truncate_plain(finding.user_agent, _AGENT_SHOWN)),
                            SECTION_TEXT,
                        )
                    )
                ]
            )
        )
    if finding.event_id:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=link(
                            cloudtrail_url(finding.event_id, finding.region or alert.region),
                            "CloudTrail event",
                        )
                    )
                ]
            )
        )
    who = finding.actor.person or finding.actor.arn or "unknown"
    text = escape(f"Another change on {alert.label}: {finding.title} — by {who}")
    return truncate(text, SECTION_TEXT), fit_blocks(blocks)


def quiet_line(message: str, fallback: str) -> tuple[str, list[Block]]:
    """A line that asks nothing of anyone: one context block, no buttons (a change the bucket's tag accepted)."""
    line = ContextBlock(elements=[MarkdownTextObject(text=truncate(message, SECTION_TEXT))])
    return truncate(fallback, SECTION_TEXT), [line]


def thread_note(message: str, *, context: str = "") -> tuple[str, list[Block]]:
    """A short line for the thread; `message` is mrkdwn whose caller-chosen parts are already escaped."""
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate(message, SECTION_TEXT)))]
    if context:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(context, SECTION_TEXT))]))
    return truncate(message, SECTION_TEXT), blocks


