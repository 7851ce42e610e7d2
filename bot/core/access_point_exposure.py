"""Whether an access point is public now: its policy (AWS's IsPublic) against the three guards that stop it.

S3 evaluates Block Public Access at the access point, its bucket and the account: a public access-point
policy grants nothing when RestrictPublicBuckets is on at any of the three. An access point's card judges
that (bot.aws.exposure reads it); the account's own verdict would talk about buckets it never checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.bpa import Config
from bot.core.exposure import ExposureVerdict, Missing

GUARD = "RestrictPublicBuckets"


@dataclass(frozen=True)
class AccessPointState:
    """What the live reads found for one access point."""

    account: str
    name: str
    checked_at: datetime
    policy_public: bool | Missing  # its policy judged by AWS's rule (bot.core.policy); ABSENT: no policy
    point_bpa: Config | Missing  # the access point's own Block Public Access (fixed at creation)
    bucket: str | None
    bucket_bpa: Config | Missing
    account_bpa: Config | Missing
    denied: tuple[str, ...] = ()
    gone: bool = False


def judge_access_point(state: AccessPointState) -> ExposureVerdict:
    """Public now when its policy is public and no level restricts public policies; said in one line."""
    name, denied = state.name, list(state.denied)

    def verdict(public_now: bool | None, line: str, holding: list[str] | None = None) -> ExposureVerdict:
        account_bpa = state.account_bpa if isinstance(state.account_bpa, dict) else None
        return ExposureVerdict(public_now, line, holding=holding or [], denied=denied, account=state.account,
                               account_bpa=account_bpa, bucket_bpa_state="n/a", checked_at=state.checked_at,
                               account_bpa_state=_state(state.account_bpa))

    if state.gone:
        return verdict(False, f"Not public now: access point {name} no longer exists.")
    if state.policy_public is Missing.ABSENT or state.policy_public is False:
        return verdict(False, f"Not public now: access point {name}'s policy is not public.")
    levels = (("the access point", state.point_bpa), (f"bucket {state.bucket}", state.bucket_bpa),
              ("the account", state.account_bpa))
    holding = [f"{GUARD} is on at {where}, so its public policy grants nothing" for where, flags in levels
               if isinstance(flags, dict) and flags.get(GUARD)]
    if state.policy_public is Missing.REFUSED:
        return verdict(None, f"Could not tell: {' and '.join(denied)} denied.", holding)
    if holding:
        return verdict(False, f"Not public now: access point {name}'s policy is public, but {holding[0]}.", holding)
    unread = [where for where, flags in levels if flags is Missing.REFUSED]
    if unread:
        was = "was" if len(denied) == 1 else "were"
        return verdict(None, f"Could not tell: access point {name}'s policy is public and {' and '.join(denied)}"
                             f" {was} denied, so {', '.join(unread)} may restrict it.")
    return verdict(True, f"Public now: access point {name}'s policy is public and {GUARD} is off"
                         " at the access point, its bucket and the account.")


def _state(flags: Config | Missing) -> str:
    return "denied" if flags is Missing.REFUSED else "absent" if flags is Missing.ABSENT else "present"
