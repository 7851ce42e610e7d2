"""AWS's own "is this public?" rule for bucket policies, access-point policies and ACLs.

Source: Amazon S3 user guide, "Blocking public access" → "The meaning of public". A policy is
assumed public; an Allow statement is non-public only when its principal is a fixed value, or when
one of its (ANDed) conditions pins a listed key to fixed values with a non-negated operator.

Hand-written rather than policyuniverse because policyuniverse answers a different question
("is it internet accessible?"): it takes Federated and CanonicalUser "*" principals for private,
ignores the /8 and /32 CIDR limits and the aws:userid, s3:DataAccessPointAccount and KMS-key
conditions, and gets 3 of the corpus's 41 labelled policies wrong (this rule: 0). Speed is not the
reason: it costs ~1.5× this rule per policy (5.7 vs 3.7 µs) plus a ~70 ms import (docs/benchmarks.md).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
PUBLIC_GROUPS = {ALL_USERS: "AllUsers", AUTHENTICATED_USERS: "AuthenticatedUsers"}
PUBLIC_CANNED_ACLS = {
    "public-read": "anyone on the internet can read",
    "public-read-write": "anyone on the internet can read and write",
    "authenticated-read": "any AWS account can read",
}
GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
# Write and ACP permissions are worse than read: they let strangers plant data or take over the ACL.
SEVERE_PERMISSIONS = {"WRITE", "WRITE_ACP", "FULL_CONTROL"}

# Condition keys that, pinned to fixed values, make a statement non-public (lower-cased).
RESTRICTING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceIp",
        "aws:SourceArn",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceOwner",
        "aws:SourceAccount",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:userid",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:DataAccessPointArn",
        "s3:DataAccessPointAccount",
    )
)
# Operators that pin a key to the listed values; negated ones (…Not…) never restrict.
RESTRICTING_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "ipaddress"}
)
_PRIVATE_V4 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


@dataclass
class Verdict:
    """The outcome of the rule, with the pieces that decided it, in a responder's words."""

    public: bool
    kind: str
    reasons: list[str] = field(default_factory=list)
    public_statements: list[Any] = field(default_factory=list)
    public_grants: list[dict[str, str]] = field(default_factory=list)
    cross_account_principals: list[str] = field(default_factory=list)
    readable: bool = True
    severe: bool = False  # public write / ACP / full control

    def as_dict(self) -> dict[str, Any]:
        return {
            "public": self.public,
            "kind": self.kind,
            "reasons": self.reasons,
            "public_statements": self.public_statements,
            "public_grants": self.public_grants,
            "cross_account_principals": self.cross_account_principals,
            "readable": self.readable,
        }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value or "${" in value


def load_policy(policy: Any) -> dict[str, Any] | None:
    """A policy as a dict, from an object or JSON text; None when it is neither."""
    if isinstance(policy, list) and len(policy) == 1:
        policy = policy[0]
    if isinstance(policy, str | bytes):
        try:
            policy = json.loads(policy)
        except ValueError:
            return None
    return policy if isinstance(policy, dict) else None


def _principal_values(principal: Any) -> list[tuple[str, str]]:
    """(type, value) pairs; `"*"` counts as ("AWS", "*")."""
    if isinstance(principal, str):
        return [("AWS", principal)]
    if isinstance(principal, dict):
        return [(str(kind), str(v)) for kind, values in principal.items() for v in _as_list(values)]
    return [("AWS", "*")] if principal is None else [("?", json.dumps(principal, default=repr))]


def _principal_is_fixed(kind: str, value: str) -> bool:
    if _has_wildcard(value):
        return False
    # Web-identity/SAML federation admits whole populations of outside users (AWS counts it public).
    return kind.lower() in ("aws", "service", "canonicaluser")


def _account_of(value: str) -> str | None:
    if value.isdigit() and len(value) == 12:
        return value
    parts = value.split(":")
    if len(parts) >= 5 and parts[0] == "arn" and parts[4].isdigit():
        return parts[4]
    return None


def _value_is_fixed(key: str, operator: str, value: Any) -> bool:
    if not isinstance(value, str) or not value or _has_wildcard(value):
        return False
    if key == "aws:sourceip":
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return False
        if network.version == 4:
            if any(network.subnet_of(p) for p in _PRIVATE_V4):  # type: ignore[arg-type]
                return False
            return network.prefixlen >= 8
        return network.prefixlen >= 32
    if key == "aws:userid":
        return not value.endswith(":*")
    return True


def _restricting_conditions(condition: Any) -> list[str]:
    """Human-readable list of the conditions that pin the statement to fixed values."""
    found: list[str] = []
    if not isinstance(condition, dict):
        return found
    for operator, block in condition.items():
        op = str(operator).lower().split(":")[-1]  # ForAnyValue:StringEquals → stringequals
        # ForAllValues:… is true when the request lacks the key (empty set), so it pins nothing (IAM docs,
        # "Multivalued context keys").
        if str(operator).lower().startswith("forallvalues:"):
            continue
        if op not in RESTRICTING_OPERATORS or not isinstance(block, dict):
            continue
        for key, values in block.items():
            k = str(key).lower()
            vals = _as_list(values)
            if k in RESTRICTING_KEYS and vals and all(_value_is_fixed(k, op, v) for v in vals):
                found.append(f"{key} = {', '.join(map(str, vals))}")
    return found


def evaluate_policy(policy: Any, *, owner_account: str | None = None, kind: str = "bucket_policy") -> Verdict:
    """Apply AWS's rule to a bucket or access-point policy (object or JSON text)."""
    doc = load_policy(policy)
    if doc is None:
        return Verdict(False, kind, ["The policy is not valid JSON, so S3 would have rejected it."], readable=False)
    verdict = Verdict(False, kind)
    cross: set[str] = set()
    for index, statement in enumerate(_as_list(doc.get("Statement"))):
        if not isinstance(statement, dict):
            continue
        if str(statement.get("Effect", "")).lower() != "allow":
            continue  # Only Allow statements can grant access.
        sid = statement.get("Sid") or f"#{index + 1}"
        if "NotPrincipal" in statement:
            verdict.public = True
            verdict.public_statements.append(statement)
            verdict.reasons.append(f"Statement {sid} allows everyone except the NotPrincipal list.")
            continue
        pairs = _principal_values(statement.get("Principal"))
        loose = [f"{k}:{v}" if k != "AWS" or v != "*" else "*" for k, v in pairs if not _principal_is_fixed(k, v)]
        if not loose:
            for k, v in pairs:
                account = _account_of(v) if k.lower() == "aws" else None
                if account and account != owner_account:
                    cross.add(v)
            continue
        pinned = _restricting_conditions(statement.get("Condition"))
        if pinned:
            continue
        verdict.public = True
        verdict.public_statements.append(statement)
        actions = ", ".join(map(str, _as_list(statement.get("Action")))) or "its actions"
        why = "no condition" if not statement.get("Condition") else "no condition that pins it to fixed values"
        verdict.reasons.append(f"Statement {sid} allows {' '.join(loose)} to {actions} with {why}.")
    verdict.cross_account_principals = sorted(cross)
    if not verdict.public:
        if cross:
            verdict.reasons.append(
                "Not public, but other accounts are granted access: "
                + ", ".join(verdict.cross_account_principals)
                + "."
            )
        else:
            verdict.reasons.append("Every Allow statement names fixed principals or fixed conditions.")
    return verdict


def public_grants(grants: Any) -> list[dict[str, str]]:
    """Grants to AllUsers/AuthenticatedUsers from an ACL's Grant list (or single-object Grant)."""
    found = []
    for grant in _as_list(grants):
        if not isinstance(grant, dict):
            continue
        grantee = grant.get("Grantee")
        uri = str(grantee.get("URI", "")) if isinstance(grantee, dict) else ""
        group = PUBLIC_GROUPS.get(uri.strip())
        if group:
            found.append({"grantee": group, "permission": str(grant.get("Permission", "?"))})
    return found


def grants_from_headers(headers: dict[str, Any]) -> list[dict[str, str]]:
    """Public grants carried by `x-amz-grant-*` headers (`uri="…/AllUsers", id="…"`)."""
    found = []
    for header, permission in GRANT_HEADERS.items():
        value = headers.get(header)
        for item in _as_list(value):
            for uri, group in PUBLIC_GROUPS.items():
                if isinstance(item, str) and uri in item:
                    found.append({"grantee": group, "permission": permission})
    return found


def evaluate_acl(acl: Any) -> Verdict:
    """Apply the rule to `GetBucketAcl` output, an `AccessControlPolicy`, or `{"x-amz-acl": …}`."""
    if not isinstance(acl, dict):
        return Verdict(False, "acl", ["Not an ACL document."], readable=False)
    verdict = Verdict(False, "acl")
    canned = acl.get("x-amz-acl")
    canned = canned[0] if isinstance(canned, list) and canned else canned
    if isinstance(canned, str) and canned in PUBLIC_CANNED_ACLS:
        verdict.public = True
        verdict.reasons.append(f"Canned ACL {canned}: {PUBLIC_CANNED_ACLS[canned]}.")
        grantee = "AuthenticatedUsers" if canned == "authenticated-read" else "AllUsers"
        verdict.public_grants.append({"grantee": grantee, "permission": "READ"})
        if canned == "public-read-write":
            verdict.public_grants.append({"grantee": "AllUsers", "permission": "WRITE"})
    grants = acl.get("Grants")
    if grants is None:
        grants = (acl.get("AccessControlList") or {}).get("Grant") if isinstance(
            acl.get("AccessControlList"), dict
        ) else None
    for grant in public_grants(grants) + grants_from_headers(acl):
        verdict.public = True
        verdict.public_grants.append(grant)
        who = "anyone on the internet" if grant["grantee"] == "AllUsers" else "any AWS account"
        verdict.reasons.append(f"The ACL grants {grant['permission']} to {grant['grantee']} ({who}).")
    verdict.severe = any(g["permission"] in SEVERE_PERMISSIONS for g in verdict.public_grants)
    if not verdict.public:
        verdict.reasons.append("No grant to AllUsers or AuthenticatedUsers.")
    return verdict


def evaluate_document(document: Any, *, owner_account: str | None = None) -> Verdict:
    """Pick the rule by shape: ACL (`Grants`/`x-amz-acl`/`AccessControlList`) or policy."""
    doc = load_policy(document) if not isinstance(document, dict) else document
    acl_keys = ("Grants", "x-amz-acl", "AccessControlList", *GRANT_HEADERS)
    if isinstance(doc, dict) and any(key in doc for key in acl_keys):
        return evaluate_acl(doc)
    if isinstance(doc, dict) and isinstance(doc.get("Policy"), str):
        doc = load_policy(doc["Policy"])  # GetBucketPolicy / GetAccessPointPolicy output
    kind = "bucket_policy"
    if isinstance(doc, dict) and ":accesspoint/" in json.dumps(doc.get("Statement", ""), default=repr):
        kind = "access_point_policy"
    return evaluate_policy(doc if doc is not None else document, owner_account=owner_account, kind=kind)
