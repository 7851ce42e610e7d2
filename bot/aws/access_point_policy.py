"""An access point's policy as a fix target: the fix removes its public statements, Undo puts it back.

An access point's alert is about that access point only (issue 8, defect 3): its fix must not turn on
Block Public Access for the whole account, which would also cut off every other public access point
and bucket the account may serve on purpose. So the fix takes out exactly the Allow statements AWS's
rule judges public (bot.core.policy) and keeps the rest; with nothing left, it deletes the policy.
The policy text is the snapshot, so Undo restores it byte for byte.

State: {"Policy": <the policy's JSON text>} or {"Policy": None} when the access point has none.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.clients import error_code, request_id
from bot.aws.fix_action import FixAction, State, register
from bot.core.policy import ACCESS_POINT_POLICY, Verdict, evaluate_policy, load_policy

ABSENT_CODE = "NoSuchAccessPointPolicy"


def _text(state: State) -> str | None:
    policy = (state or {}).get("Policy")
    return policy if isinstance(policy, str) and policy.strip() else None


@register("remove-access-point-public-policy")
class AccessPointPolicy(FixAction):
    service = "s3control"
    read_permission = "s3:GetAccessPointPolicy"
    # DeleteAccessPointPolicy has its own permission; both are needed (a fix may delete, an undo puts).
    write_permission = "s3:PutAccessPointPolicy"
    permissions = (read_permission, write_permission, "s3:DeleteAccessPointPolicy")
    verb = "removed the access point's public policy statements"

    @property
    def label(self) -> str:
        return f"access point {self.access_point} (account {self.account})"

    @property
    def resource(self) -> str:
        return f"access point {self.access_point} in account {self.account}"

    def _params(self) -> dict[str, str]:
        return {"AccountId": self.account, "Name": self.access_point or ""}

    def read(self) -> State:
        try:
            return {"Policy": self.client.get_access_point_policy(**self._params()).get("Policy") or None}
        except ClientError as exc:
            if error_code(exc) == ABSENT_CODE:
                return {"Policy": None}
            raise

    def put(self, state: State) -> str:
        policy = _text(state)
        if policy is None:
            return request_id(self.client.delete_access_point_policy(**self._params()))
        return request_id(self.client.put_access_point_policy(**self._params(), Policy=policy))

    def _verdict(self, state: State) -> Verdict | None:
        policy = _text(state)
        if policy is None:
            return None
        return evaluate_policy(policy, owner_account=self.account, kind=ACCESS_POINT_POLICY)

    def needed(self, state: State) -> tuple[str, ...]:
        verdict = self._verdict(state)
        if verdict is None or not verdict.public:
            return ()
        return tuple(verdict.reasons) or ("a public statement",)

    def desired(self, state: State) -> State:
        verdict = self._verdict(state)
        if verdict is None or not verdict.public:
            return state
        doc = load_policy(_text(state))
        if not isinstance(doc, dict):
            return {"Policy": None}
        statements = doc.get("Statement")
        kept: list[Any] = [s for s in (statements if isinstance(statements, list) else [statements])
                           if s not in verdict.public_statements]
        if not any(isinstance(s, dict) and str(s.get("Effect", "")).lower() == "allow" for s in kept):
            return {"Policy": None}  # nothing left that grants anything: no policy at all
        trimmed = json.dumps({**doc, "Statement": kept})
        if evaluate_policy(trimmed, owner_account=self.account, kind=ACCESS_POINT_POLICY).public:
            return {"Policy": None}  # public by some interplay the statements show only together
        return {"Policy": trimmed}

    def same(self, a: State, b: State) -> bool:
        # AWS may hand back the policy re-serialised: compare what it says, not its whitespace.
        return load_policy(_text(a)) == load_policy(_text(b))

    def describe(self, state: State) -> str:
        verdict = self._verdict(state)
        if verdict is None:
            return "no access point policy"
        doc = load_policy(_text(state))
        statements = doc.get("Statement") if isinstance(doc, dict) else None
        count = len(statements) if isinstance(statements, list) else 1
        return f"a policy of {count} statement(s), {'public' if verdict.public else 'not public'}"

    def nothing_to_do(self) -> str:
        return f"The policy of {self.label} is not public; nothing to change."

    def done(self, changes: tuple[str, ...]) -> str:
        return (f"Removed the public statements from the policy of {self.label} ({len(changes)} found)."
                " Read back: not public. Account-wide Block Public Access was not touched.")

    def would(self, changes: tuple[str, ...]) -> str:
        if not changes:
            return f"Dry run: the policy of {self.label} is not public; nothing would change."
        return f"Dry run: would remove {len(changes)} public statement(s) from the policy of {self.label}."

    def note(self, changes: tuple[str, ...]) -> str:
        return f"removed {len(changes)} public statement(s) from the access point's policy"

    def plan_summary(self, current: State, changes: tuple[str, ...]) -> str:
        if not changes:
            return self.nothing_to_do()
        after = self.describe(self.desired(current))
        return (f"Remove the public statement(s) from the policy of {self.label}; it becomes {after}."
                " Account-wide Block Public Access is not changed.")
