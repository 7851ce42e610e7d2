"""AWS's own "is this public?" rule for bucket policies and access-point policies (ACLs: bot.core.acl).

Source: Amazon S3 user guide, "Blocking public access" → "The meaning of public". A policy is
assumed public; an Allow statement is non-public only when its principal is a fixed value, or when
one of its (ANDed) conditions pins a listed key to fixed values with a non-negated operator.
Two refinements the guide spells out: an `aws:SourceIp` range is fixed however private it is
(RFC 1918 included) as long as it is no wider than /8 (IPv4) or /32 (IPv6); and in a *bucket*
policy, `s3:DataAccessPointArn` naming every access point (`…:accesspoint/*`) of one fixed account
is delegation to that account's access points, so fixed, while in an *access-point* policy it is not.

Every verdict carries its reasons in a responder's words: which statement lets whom do what, and
why each condition on it does or does not limit who.

Hand-written rather than policyuniverse because policyuniverse answers a different question
("is it internet accessible?"): it takes Federated and CanonicalUser "*" principals for private,
ignores the /8 and /32 CIDR limits and the aws:userid, s3:DataAccessPointAccount and KMS-key
conditions, and gets 3 of the corpus's 41 labelled policies wrong (this rule: 0). Speed is not the
reason: both judge a policy in a few microseconds (this rule, with its reasons in words, about as fast
as policyuniverse), and policyuniverse adds a ~70 ms import (docs/benchmarks.md).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from bot.core.acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    CANNED_ACLS,
    GRANT_HEADERS,
    PUBLIC_CANNED_ACLS,
    PUBLIC_GROUPS,
    SEVERE_PERMISSIONS,
    Verdict,
    acl_parts,
    evaluate_acl,
    grants_from_headers,
    key_name,
    public_grants,
)

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
BUCKET_POLICY, ACCESS_POINT_POLICY = "bucket_policy", "access_point_policy"

__all__ = [
    "ALL_USERS",
    "AUTHENTICATED_USERS",
    "GRANT_HEADERS",
    "PUBLIC_CANNED_ACLS",
    "PUBLIC_GROUPS",
    "SEVERE_PERMISSIONS",
    "NotAPolicy",
    "Verdict",
    "acl_parts",
    "evaluate_acl",
    "evaluate_document",
    "evaluate_policy",
    "grants_from_headers",
    "public_grants",
    "read_document",
]


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


def _who(kind: str, value: str) -> str:
    """A loose principal in words: `anyone`, `any user signed in through accounts.google.com`."""
    if value == "*" and kind.lower() in ("aws", "canonicaluser", "?"):
        return 'anyone (Principal "*")'
    if kind.lower() == "federated":
        return f"any user signed in through {value}"
    return f"any principal matching {kind} {value}"


def _account_of(value: str) -> str | None:
    if value.isdigit() and len(value) == 12:
        return value
    parts = value.split(":")
    if len(parts) >= 5 and parts[0] == "arn" and parts[4].isdigit():
        return parts[4]
    return None


def _ip_problem(value: str) -> tuple[str | None, str]:
    """(why it is not fixed, or None; a note for the reader) for one aws:SourceIp value."""
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value} is not an IP address or range", ""
    if network.version == 4 and network.prefixlen < 8:
        return f"{value} is wider than a /8 (AWS counts that as public)", ""
    if network.version == 6 and network.prefixlen < 32:
        return f"{value} is wider than a /32 (AWS counts that as public)", ""
    private = network.version == 4 and any(network.subnet_of(p) for p in _PRIVATE_V4)  # type: ignore[arg-type]
    return None, " (a private network range: only callers inside your network)" if private else ""


def _access_point_arn_account(value: str) -> str | None:
    """The fixed account in an access-point ARN (`arn:aws:s3:<region>:<account>:accesspoint/<name>`)."""
    parts = value.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[4].isdigit() and len(parts[4]) == 12:
        return parts[4]
    return None


def _value_problem(key: str, value: Any, kind: str) -> tuple[str | None, str]:
    """(why this condition value does not pin the caller, or None; a note) — `key` lower-cased."""
    if not isinstance(value, str) or not value:
        return f"{key} value {json.dumps(value)} is not a fixed text value", ""
    if key == "aws:sourceip":
        return _ip_problem(value)
    if key == "s3:dataaccesspointarn" and _has_wildcard(value):
        account = _access_point_arn_account(value)
        if account is None:
            return f"{value} has a wildcard in the account", ""
        if kind == ACCESS_POINT_POLICY:
            return f"{value} names every access point (a wildcard); only a bucket policy may delegate that way", ""
        return None, f" (delegation to the access points of account {account})"
    if key == "aws:userid" and value.endswith(":*"):
        return f"{value} matches every session of a role", ""
    if _has_wildcard(value):
        return f"{value} has a wildcard or policy variable, so it is not a fixed value", ""
    return None, ""


def _conditions(condition: Any, kind: str) -> tuple[list[str], list[str]]:
    """(conditions that pin the caller to fixed values, why each other condition does not), in words."""
    pinned: list[str] = []
    loose: list[str] = []
    if not isinstance(condition, dict):
        return pinned, ["its Condition is not a set of operators"] if condition is not None else []
    for operator, block in condition.items():
        name = str(operator)
        op = name.lower().split(":")[-1]  # ForAnyValue:StringEquals → stringequals
        if not isinstance(block, dict):
            loose.append(f"{name} holds no keys")
            continue
        for key, values in block.items():
            k = str(key).lower()
            vals = _as_list(values)
            shown = ", ".join(map(str, vals))
            if k not in RESTRICTING_KEYS:
                loose.append(f"{key} does not limit who can call (not a key AWS counts; callers may set it)")
            elif name.lower().startswith("forallvalues:"):
                # True when the request lacks the key (an empty set): IAM docs, "Multivalued context keys".
                loose.append(f"{name} {key} is also true when a request has no {key}")
            elif "not" in op:
                loose.append(f"{name} {key} {shown} only excludes values; it does not name who may call")
            elif op.endswith("ifexists"):
                loose.append(f"{name} {key} is true when a request has no {key}")
            elif op not in RESTRICTING_OPERATORS:
                loose.append(f"{name} {key} does not pin {key} to fixed values")
            elif not vals:
                loose.append(f"{key} lists no values")
            else:
                checks = [_value_problem(k, v, kind) for v in vals]
                problems = [p for p, _ in checks if p]
                if problems:
                    loose.append(f"{key}: " + "; ".join(problems))
                else:
                    notes = "".join(dict.fromkeys(n for _, n in checks))
                    pinned.append(f"{key} = {shown}{notes}")
    return pinned, loose


def _actions(statement: dict[str, Any]) -> str:
    actions = [str(a) for a in _as_list(statement.get("Action"))]
    if not actions and statement.get("NotAction") is not None:
        return "call every action except " + ", ".join(map(str, _as_list(statement.get("NotAction"))))
    return "call " + (", ".join(actions) or "its actions")


def evaluate_policy(policy: Any, *, owner_account: str | None = None, kind: str = BUCKET_POLICY) -> Verdict:
    """Apply AWS's rule to a bucket or access-point policy (object or JSON text)."""
    doc = load_policy(policy)
    if doc is None:
        return Verdict(False, kind, ["The policy is not valid JSON, so S3 would have rejected it."],
                       readable=False, owner_account=owner_account)
    verdict = Verdict(False, kind, owner_account=owner_account)
    cross: set[str] = set()
    limited: list[str] = []
    allows = 0
    for index, statement in enumerate(_as_list(doc.get("Statement"))):
        if not isinstance(statement, dict):
            continue
        if str(statement.get("Effect", "")).lower() != "allow":
            continue  # Only Allow statements can grant access.
        allows += 1
        sid = statement.get("Sid") or f"#{index + 1}"
        if "NotPrincipal" in statement:
            verdict.public = True
            verdict.public_statements.append(statement)
            verdict.reasons.append(
                f"Statement {sid} lets everyone except the principals in its NotPrincipal list {_actions(statement)}."
            )
            continue
        pairs = _principal_values(statement.get("Principal"))
        loose = [(k, v) for k, v in pairs if not _principal_is_fixed(k, v)]
        if not loose:
            for k, v in pairs:
                account = _account_of(v) if k.lower() == "aws" else None
                if account and account != owner_account:
                    cross.add(v)
            continue
        who = " and ".join(dict.fromkeys(_who(k, v) for k, v in loose))
        pinned, why_not = _conditions(statement.get("Condition"), kind)
        if pinned:
            limited.append(f"Statement {sid} lets {who} {_actions(statement)}, but only where "
                           + " and ".join(pinned) + ".")
            continue
        verdict.public = True
        verdict.public_statements.append(statement)
        if why_not:
            tail = "; its conditions do not limit who: " + "; ".join(why_not)
        else:
            tail = ", with no condition that limits who"
        verdict.reasons.append(f"Statement {sid} lets {who} {_actions(statement)}{tail}.")
    verdict.cross_account_principals = sorted(cross)
    if not verdict.public:
        verdict.reasons += _not_public_reasons(verdict, allows, limited)
    return verdict


def _not_public_reasons(verdict: Verdict, allows: int, limited: list[str]) -> list[str]:
    if not allows:
        return ["Not public: no statement allows anything (Deny statements only take access away)."]
    named = ", ".join(verdict.cross_account_principals)
    if not named:
        head = "Not public: every Allow statement names specific principals or is limited to fixed values."
    elif verdict.owner_account:
        head = f"Not public, but accounts other than the owner ({verdict.owner_account}) are granted access: {named}."
    else:
        head = (f"Not public, but these accounts are granted access: {named} (the owner's account was not given,"
                " so the bucket's own account may be among them).")
    return [head, *limited]


def policy_kind(doc: Any) -> str:
    """`access_point_policy` when a statement's Resource is an access point, else `bucket_policy`."""
    if isinstance(doc, dict):
        for statement in _as_list(doc.get("Statement")):
            resources = _as_list(statement.get("Resource")) if isinstance(statement, dict) else []
            if any(isinstance(r, str) and ":accesspoint/" in r for r in resources):
                return ACCESS_POINT_POLICY
    return BUCKET_POLICY


def _resource_account(doc: dict[str, Any]) -> str | None:
    """The account an access-point policy's Resource ARNs name (the access point's owner)."""
    for statement in _as_list(doc.get("Statement")):
        for resource in _as_list(statement.get("Resource")) if isinstance(statement, dict) else []:
            account = _access_point_arn_account(resource) if isinstance(resource, str) else None
            if account:
                return account
    return None


def _is_acl(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    return acl_parts(doc).said or any(key_name(k) in ("grants", "accesscontrollist", "accesscontrolpolicy")
                                      for k in doc)


def evaluate_document(document: Any, *, owner_account: str | None = None) -> Verdict:
    """Pick the rule by shape: ACL (`Grants`/`x-amz-acl`/grant headers/`AccessControlList`) or policy."""
    doc = load_policy(document) if not isinstance(document, dict) else document
    if _is_acl(doc):
        return evaluate_acl(doc)
    if isinstance(doc, dict) and isinstance(doc.get("Policy"), str):
        doc = load_policy(doc["Policy"])  # GetBucketPolicy / GetAccessPointPolicy output
    kind = policy_kind(doc)
    if kind == ACCESS_POINT_POLICY and owner_account is None and isinstance(doc, dict):
        owner_account = _resource_account(doc)
    return evaluate_policy(doc if doc is not None else document, owner_account=owner_account, kind=kind)


class NotAPolicy(ValueError):
    """The input is not a policy, an ACL or a canned ACL; the message says what it is instead."""


def _describe(document: Any) -> str:
    """What a JSON document that is neither a policy nor an ACL is, in words."""
    if isinstance(document, list):
        return f"a JSON list of {len(document)} item(s), not a policy or an ACL"
    if not isinstance(document, dict):
        kind = {bool: "true/false", int: "number", float: "number", str: "string"}.get(type(document), "null")
        return f"a JSON {kind}, not a policy or an ACL"
    if not document:
        return "an empty JSON object: no Statement, Grants or x-amz-acl"
    status = document.get("PolicyStatus")
    if isinstance(status, dict):
        return ("get-bucket-policy-status output (AWS's own IsPublic "
                f"{json.dumps(status.get('IsPublic'))}), not the policy; give get-bucket-policy output instead")
    if "PublicAccessBlockConfiguration" in document or "BlockPublicAcls" in document:
        return "a Block Public Access configuration, not a policy or an ACL"
    if "Records" in document or "eventName" in document or "detail-type" in document:
        return "CloudTrail records, not a policy; use `bucketwatch scan`"
    keys = ", ".join(sorted(map(str, document))[:6])
    return f"a JSON object with keys {keys}, but no Statement, Grants or x-amz-acl"


def read_document(data: bytes, *, owner_account: str | None = None) -> Verdict:
    """The verdict on a file's bytes (policy, GetBucketPolicy/GetBucketAcl output, ACL, canned ACL name).

    Raises NotAPolicy, saying what the input is, for anything else (`{}`, a list, a status, a record).
    """
    text = data.decode("utf-8", "replace").strip()
    if text.strip('"') in CANNED_ACLS:
        return evaluate_acl({"x-amz-acl": text.strip('"')})
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise NotAPolicy("not JSON, and not a canned ACL name either") from exc
    if isinstance(document, str) and isinstance(load_policy(document), dict):
        document = load_policy(document)  # a policy as JSON text inside a JSON string
    if isinstance(document, dict) and isinstance(document.get("Policy"), str):
        inner = load_policy(document["Policy"])
        if inner is None:
            raise NotAPolicy("get-bucket-policy output whose Policy is not JSON")
        document = inner
    if isinstance(document, dict) and _is_acl(document):
        return evaluate_acl(document)
    if isinstance(document, dict) and "Statement" in document:
        return evaluate_document(document, owner_account=owner_account)
    raise NotAPolicy(_describe(document))
