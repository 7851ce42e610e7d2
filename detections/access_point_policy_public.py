"""Public access-point policy: PutAccessPointPolicy, or CreateAccessPoint carrying a public policy."""

from bot.core.policy import Verdict, evaluate_policy
from bot.core.record import Record, text
from detections.base import Change, Detection, find_key


def _policy(record: Record) -> object:
    return find_key(record.params, "Policy") or find_key(record.params, "policy")


def verdict(record: Record) -> Verdict:
    return evaluate_policy(_policy(record), owner_account=record.account or None, kind="access_point_policy")


def rule(record: Record) -> bool:
    return _policy(record) is not None and verdict(record).public


def access_point(record: Record) -> str:
    """The access point's name; the request names it plainly or by ARN (`…:accesspoint/<name>`)."""
    name = text(find_key(record.params, "name"))
    if ":accesspoint/" in name:
        name = name.split(":accesspoint/", 1)[1].split("/", 1)[0]
    return name or "?"


def title(record: Record) -> str:
    return f"Access point {access_point(record)} given a public policy"


def changes(record: Record) -> list[Change]:
    return [Change(f"access point {access_point(record)} policy", "?", r) for r in verdict(record).reasons]


DETECTION = Detection(
    id="access_point_policy_public",
    name="Public access-point policy",
    severity="high",
    runbook=(
        "An S3 access point's policy allows public access. Access points carry their own Block Public "
        "Access; check it, and remove the public statement or delete the access point."
    ),
    event_names=frozenset({"PutAccessPointPolicy", "CreateAccessPoint", "PutAccessPointPolicyForObjectLambda"}),
    rule=rule,
    title=title,
    changes=changes,
    module_file=__file__,
    access_point=access_point,
)
