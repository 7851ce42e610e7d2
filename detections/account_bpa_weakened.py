"""Account Block Public Access weakened: PutAccountPublicAccessBlock with any flag false."""

from bot.core.record import Record
from detections.base import Change, Detection, bpa_config, bpa_flags


def _off(record: Record) -> list[str]:
    config = bpa_config(record)
    if config is None:
        return []
    return [flag for flag, on in bpa_flags(config).items() if not on]


def rule(record: Record) -> bool:
    return bool(_off(record))


def title(record: Record) -> str:
    return f"Account-wide Block Public Access weakened in {record.account or '?'}: {', '.join(_off(record))} off"


def changes(record: Record) -> list[Change]:
    return [Change(f"account {flag}", "?", "false") for flag in _off(record)]


DETECTION = Detection(
    id="account_bpa_weakened",
    name="Account Block Public Access weakened",
    severity="critical",
    runbook=(
        "Every bucket in the account now depends on its own settings. Confirm with the actor; re-enable "
        "the account-level flags unless a reviewed exception exists, then review buckets with public policies."
    ),
    event_names=frozenset({"PutAccountPublicAccessBlock"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
)
