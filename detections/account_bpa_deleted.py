"""Account Block Public Access deleted: DeleteAccountPublicAccessBlock removes the account-wide guard."""

from bot.core.bpa import FLAGS
from bot.core.record import Record
from detections.base import Change, Detection


def rule(record: Record) -> bool:
    return True


def title(record: Record) -> str:
    return f"Account-wide Block Public Access removed in {record.account or '?'}"


def changes(record: Record) -> list[Change]:
    return [Change(f"account {flag}", "?", "deleted (false)") for flag in FLAGS]


DETECTION = Detection(
    id="account_bpa_deleted",
    name="Account Block Public Access deleted",
    severity="critical",
    runbook=(
        "The account-wide guard is gone: any bucket policy or ACL can now make data public. Re-enable it "
        "and review which buckets became reachable (the live verdict lists the paths)."
    ),
    event_names=frozenset({"DeleteAccountPublicAccessBlock"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
)
