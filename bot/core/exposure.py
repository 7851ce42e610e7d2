"""The live exposure verdict: judged from what was read, and said in a responder's words.

bot.aws.exposure reads the current configuration (`ExposureState`); `judge` applies how the four
Block Public Access flags interact (S3 user guide, "Blocking public access to your Amazon S3
storage"): IgnorePublicAcls makes S3 ignore public ACLs and RestrictPublicBuckets limits a public
policy to the owner account and AWS services, at bucket or account level; BlockPublicAcls and
BlockPublicPolicy only reject *new* public ACLs or policies and change nothing about what is there.
`phrase` turns the judgement into the one line a card shows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from bot.core.bpa import FLAGS, Config
from bot.core.clock import iso, parse_iso
from bot.core.policy import evaluate_acl, evaluate_policy


class Missing(Enum):
    """What a read returned instead of a value (not a str: a policy text or an ownership setting is one)."""

    ABSENT = "absent"  # not configured (no policy, no Block Public Access configuration, object gone)
    REFUSED = "refused"  # AccessDenied


Grants = list[dict[str, Any]]


@dataclass(frozen=True)
class ExposureState:
    """What the live reads found for one bucket (bucket None: the account guard only)."""

    account: str
    bucket: str | None
    checked_at: datetime
    account_bpa: Config | Missing
    bucket_bpa: Config | Missing = Missing.ABSENT
    policy_status: bool | Missing = Missing.ABSENT  # AWS's own IsPublic for the bucket policy
    policy: str | Missing = Missing.ABSENT
    grants: Grants | Missing = Missing.REFUSED
    object_grants: tuple[tuple[str, Grants | Missing], ...] = ()
    ownership: str | Missing = Missing.ABSENT
    denied: tuple[str, ...] = ()  # the permissions refused, in the order asked
    bucket_gone: bool = False


@dataclass(frozen=True)
class ExposureVerdict:
    """Current reachability of one bucket (or the account guard), in a responder's words."""

    public_now: bool | None  # None: could not tell
    line: str
    paths: list[str] = field(default_factory=list)
    holding: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    account: str = ""
    bucket: str | None = None
    bucket_bpa: dict[str, bool] | None = None  # None: no configuration (all off) or not read
    account_bpa: dict[str, bool] | None = None
    bucket_bpa_state: str = "absent"  # present | absent | denied | n/a
    account_bpa_state: str = "absent"
    ownership: str | None = None
    checked_at: datetime | None = None

    def flags_off(self, level: str | None = None) -> list[str]:
        """Flags a fix would turn on at `level` (bucket/account; default the alert's own level)."""
        level = level or ("bucket" if self.bucket else "account")
        state = self.bucket_bpa_state if level == "bucket" else self.account_bpa_state
        flags = self.bucket_bpa if level == "bucket" else self.account_bpa
        if state != "present" or flags is None:
            return list(FLAGS)
        return [f for f in FLAGS if not flags.get(f)]

    def to_json(self) -> str:
        data = asdict(self)
        data["checked_at"] = iso(self.checked_at)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> ExposureVerdict | None:
        """The stored verdict, or None when nothing (or something unreadable) is stored."""
        if not text:
            return None
        try:
            data = json.loads(text)
            data["checked_at"] = parse_iso(data.get("checked_at"))
            return cls(**data)
        except (ValueError, TypeError):
            return None


@dataclass
class _Judgement:
    """The verdict's pieces before they are put into words."""

    paths: list[str] = field(default_factory=list)  # how the public gets in now
    sentences: list[str] = field(default_factory=list)  # the same, as clauses of the line
    neutralised: list[str] = field(default_factory=list)  # public configuration that a guard holds back
    holding: list[str] = field(default_factory=list)  # the guards that hold
    unknown: bool = False  # a read was refused where it mattered


def _state(read: Config | Missing) -> str:
    return "denied" if read is Missing.REFUSED else "absent" if read is Missing.ABSENT else "present"


def _flag(flags: Config | Missing, name: str) -> bool | None:
    """One flag: True/False, None when the read was denied (absent configuration = off)."""
    if flags is Missing.REFUSED:
        return None
    if flags is Missing.ABSENT or not isinstance(flags, dict):
        return False
    return bool(flags.get(name))


def _either(bucket_flag: bool | None, account_flag: bool | None) -> tuple[bool | None, str]:
    """Whether a neutralising flag holds at either level, and which level holds it."""
    if bucket_flag and account_flag:
        return True, "bucket- and account-level Block Public Access"
    if bucket_flag:
        return True, "bucket-level Block Public Access"
    if account_flag:
        return True, "account-level Block Public Access"
    if bucket_flag is None or account_flag is None:
        return None, ""
    return False, ""


def _policy_access(statements: list[Any]) -> str:
    actions: list[str] = []
    for st in statements:
        raw = st.get("Action", "*") if isinstance(st, dict) else "*"
        actions += [str(a).lower() for a in (raw if isinstance(raw, list) else [raw])]
    writes = any(a in ("*", "s3:*") or a.startswith(("s3:put", "s3:delete")) or a.endswith(":*") for a in actions)
    reads = any(a in ("*", "s3:*") or a.startswith(("s3:get", "s3:list")) or a.endswith(":*") for a in actions)
    return "read and write" if reads and writes else "write" if writes else "read" if reads else "access"


_PERMISSION_ORDER = ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")


def _grant_words(grants: list[dict[str, str]]) -> str:
    """`AllUsers READ and WRITE`: every public permission, grouped by the group that holds it."""
    held: dict[str, set[str]] = {}
    for grant in grants:
        held.setdefault(grant["grantee"], set()).add(grant["permission"])
    rank = {p: n for n, p in enumerate(_PERMISSION_ORDER)}
    return ", ".join(
        f"{group} {' and '.join(sorted(perms, key=lambda p: (rank.get(p, len(rank)), p)))}"
        for group, perms in sorted(held.items())
    )


def _judge_policy(state: ExposureState, j: _Judgement) -> None:
    """The bucket policy: AWS's IsPublic when readable, else our evaluation of the text."""
    policy, status = state.policy, state.policy_status
    access = "access"
    policy_public: bool | None
    if isinstance(policy, str):
        judged = evaluate_policy(policy, owner_account=state.account)
        access = _policy_access(judged.public_statements)
        policy_public = judged.public if isinstance(status, Missing) else bool(status)
    elif policy is Missing.ABSENT or status is Missing.ABSENT:
        policy_public = False
    else:
        policy_public = status if isinstance(status, bool) else None
    restrict, restrict_by = _either(_flag(state.bucket_bpa, "RestrictPublicBuckets"),
                                    _flag(state.account_bpa, "RestrictPublicBuckets"))
    if policy_public is None:
        j.unknown = True
    elif policy_public:
        if restrict:
            j.neutralised.append(f"bucket policy lets anyone {access}")
            j.holding.append(f"{restrict_by} still restricts the public policy (RestrictPublicBuckets)")
        elif restrict is None:
            j.unknown = True
            j.neutralised.append(f"bucket policy lets anyone {access}")
        else:
            j.paths.append(f"{access} via bucket policy")
            j.sentences.append(f"anyone can {access} via the bucket policy")


def _judge_acls(state: ExposureState, j: _Judgement) -> None:
    """The bucket's ACL and those of the objects the alert names: public grants count unless ignored
    (IgnorePublicAcls) or ACLs are disabled (BucketOwnerEnforced)."""
    acls = [("ACL", "bucket ACL", state.grants)]
    acls += [(f"ACL of object {key}", f"ACL of object {key}", got) for key, got in state.object_grants
             if got is not Missing.ABSENT]
    ignore, ignore_by = _either(_flag(state.bucket_bpa, "IgnorePublicAcls"),
                                _flag(state.account_bpa, "IgnorePublicAcls"))
    for name, where, grants in acls:
        if isinstance(grants, Missing):
            j.unknown = True
            continue
        public = evaluate_acl({"Grants": grants}).public_grants
        if not public:
            continue
        words = _grant_words(public)
        if state.ownership == "BucketOwnerEnforced":
            j.neutralised.append(f"{name} grants {words}")
            j.holding.append("Object Ownership is BucketOwnerEnforced, so ACLs are disabled")
        elif ignore:
            j.neutralised.append(f"{name} grants {words}")
            j.holding.append(f"{ignore_by} still ignores public ACLs")
        elif ignore is None:
            j.unknown = True
            j.neutralised.append(f"{name} grants {words}")
        else:
            j.paths.append(f"{words} via {where}")
            j.sentences.append(f"the {where} grants {words}")


def judge(state: ExposureState) -> ExposureVerdict:
    """Whether the bucket (or the account guard) is open now, through which paths, and what holds."""
    if state.bucket is None:
        return _judge_account(state)
    if state.bucket_gone:
        return ExposureVerdict(False, f"Not public now: bucket {state.bucket} no longer exists.",
                               account=state.account, bucket=state.bucket, bucket_bpa_state="n/a",
                               checked_at=state.checked_at)
    j = _Judgement()
    _judge_policy(state, j)
    _judge_acls(state, j)
    j.holding = list(dict.fromkeys(j.holding))
    if not j.paths and not j.neutralised:
        # Nothing public is configured: say which guards still stand against a future public policy/ACL.
        j.holding += _standing_guards(state.bucket_bpa, state.account_bpa)
    public_now: bool | None = True if j.paths else (None if j.unknown else False)
    return ExposureVerdict(
        public_now, phrase(public_now, j, state), j.paths, j.holding, list(state.denied), state.account,
        state.bucket, state.bucket_bpa if isinstance(state.bucket_bpa, dict) else None,
        state.account_bpa if isinstance(state.account_bpa, dict) else None, _state(state.bucket_bpa),
        _state(state.account_bpa), state.ownership if isinstance(state.ownership, str) else None,
        state.checked_at,
    )


def phrase(public_now: bool | None, j: _Judgement, state: ExposureState) -> str:
    """The verdict's one line: public or not, through what, which layer holds, what could not be read."""
    denied = list(state.denied)
    denied_text = " and ".join(denied)
    if public_now:
        line = "Public now: " + "; ".join(j.sentences) + "."
        if j.holding:
            line = line[:-1] + "; " + "; ".join(j.holding) + "."
        if denied:
            line += f" ({denied_text} denied, so other paths are unknown.)"
        return line
    if public_now is None:
        line = f"Could not tell: {denied_text} {'was' if len(denied) == 1 else 'were'} denied."
        if j.neutralised:
            line = line[:-1] + f", and {' and '.join(j.neutralised)}."
        return line
    if j.neutralised:
        return "Not public now: " + " and ".join(j.neutralised) + ", but " + " and ".join(j.holding) + "."
    guard_off = _weak_guards(state.bucket_bpa, state.account_bpa)
    line = "Not public now: no bucket policy or ACL grants public access"
    return line + (f", though {guard_off}." if guard_off else ".")


def _weak_guards(bucket_bpa: Config | Missing, account_bpa: Config | Missing) -> str:
    """`… are off at both bucket and account level` for the flags that are off at both levels."""
    off = [f for f in FLAGS if _flag(bucket_bpa, f) is False and _flag(account_bpa, f) is False]
    if not off:
        return ""
    what = "all four Block Public Access flags are" if len(off) == 4 else ", ".join(off) + (
        " is" if len(off) == 1 else " are")
    return f"{what} off at both bucket and account level"


def _standing_guards(bucket_bpa: Config | Missing, account_bpa: Config | Missing) -> list[str]:
    out = []
    for flag, words in (("IgnorePublicAcls", "ignores public ACLs"),
                        ("RestrictPublicBuckets", "restricts public policies")):
        holds, by = _either(_flag(bucket_bpa, flag), _flag(account_bpa, flag))
        if holds:
            out.append(f"{by} still {words}")
    return out


def _judge_account(state: ExposureState) -> ExposureVerdict:
    """Account-level alerts: the verdict is about the account guard only (buckets are not listed)."""
    account_bpa = state.account_bpa
    common: dict[str, Any] = {
        "account": state.account, "bucket": None, "bucket_bpa_state": "n/a", "account_bpa_state": _state(account_bpa),
        "checked_at": state.checked_at, "account_bpa": account_bpa if isinstance(account_bpa, dict) else None,
    }
    if account_bpa is Missing.REFUSED:
        return ExposureVerdict(None, "Could not tell: s3:GetAccountPublicAccessBlock was denied.",
                               denied=list(state.denied), **common)
    off = [f for f in FLAGS if not _flag(account_bpa, f)]
    if not off:
        holding = ["account-level Block Public Access ignores public ACLs and restricts public policies"
                   " in every bucket"]
        return ExposureVerdict(False, "Not public now: account-level Block Public Access is fully on again.",
                               holding=holding, **common)
    holding = [f"account-level {f} is still on" for f in FLAGS if f not in off]
    what = "removed" if account_bpa is Missing.ABSENT else f"{', '.join(off)} off"
    line = (f"Account-level Block Public Access is {what}: each bucket's own settings now decide "
            "whether it is public (buckets not checked one by one).")
    return ExposureVerdict(None, line, holding=holding, **common)
