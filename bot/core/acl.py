"""AWS's "is this ACL public?" rule: canned ACLs, explicit grants and `x-amz-grant-*` headers, wherever they sit.

An ACL is public when it grants any permission to the AllUsers or AuthenticatedUsers group (S3 user
guide, "The meaning of public"). CloudTrail carries an ACL in several shapes (../shared/corpus/README.md):
a canned `x-amz-acl` value; `AccessControlPolicy.AccessControlList.Grant` (a list, or one object);
grant headers (`x-amz-grant-read`, `-write`, `-read-acp`, `-write-acp`, `-full-control`) at the top
of `requestParameters` or inside an `accessControlList` / `AccessControlList` object, spelled with
`-` or (some pipelines) `_`, each holding `uri="…", id="…", emailAddress="…"` grantees.
`GetBucketAcl` output (`Grants`) is the same rule. Keys are matched without regard to case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
PUBLIC_GROUPS = {ALL_USERS: "AllUsers", AUTHENTICATED_USERS: "AuthenticatedUsers"}
GROUP_WORDS = {"AllUsers": "anyone on the internet", "AuthenticatedUsers": "anyone with any AWS account"}
PUBLIC_CANNED_ACLS = {
    "public-read": "anyone on the internet can read",
    "public-read-write": "anyone on the internet can read and write",
    "authenticated-read": "any AWS account can read",
}
# Every canned ACL S3 accepts: a bare name is an ACL too (`bucketwatch policy` reads one).
CANNED_ACLS = frozenset({*PUBLIC_CANNED_ACLS, "private", "aws-exec-read", "bucket-owner-read",
                         "bucket-owner-full-control", "log-delivery-write"})
GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
# What each permission lets the grantee do, in a responder's words.
PERMISSION_WORDS = {
    "READ": "read (list the bucket, or download the object)",
    "WRITE": "write (upload, overwrite and delete objects)",
    "READ_ACP": "read the ACL",
    "WRITE_ACP": "change the ACL (and so grant themselves anything)",
    "FULL_CONTROL": "do anything: read, write, and read and change the ACL",
}
# Write and ACP permissions are worse than read: they let strangers plant data or take over the ACL.
SEVERE_PERMISSIONS = {"WRITE", "WRITE_ACP", "FULL_CONTROL"}
# `uri="http://…/AllUsers"`, `id=abc`, `emailAddress="a@b.c"`: one grantee; several are comma-separated.
_GRANTEE = re.compile(r'^\s*([A-Za-z]+)\s*=\s*"?([^"]*?)"?\s*$')


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
    owner_account: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "public": self.public,
            "kind": self.kind,
            "reasons": self.reasons,
            "public_statements": self.public_statements,
            "public_grants": self.public_grants,
            "cross_account_principals": self.cross_account_principals,
            "owner_account": self.owner_account,
            "readable": self.readable,
        }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _first(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return None if isinstance(value, list) else value


def key_name(key: Any) -> str:
    """A header or parameter name as one spelling: lower case, `_` read as `-`."""
    return str(key).strip().lower().replace("_", "-")


def _get(mapping: Any, name: str) -> Any:
    """`mapping[name]` by `key_name` (case and `-`/`_` ignored); None when absent."""
    if not isinstance(mapping, dict):
        return None
    want = key_name(name)
    for key, value in mapping.items():
        if key_name(key) == want:
            return value
    return None


def acl_containers(document: Any) -> list[dict[str, Any]]:
    """The objects that may hold ACL parts: the document, its AccessControlList, AccessControlPolicy's."""
    found: list[dict[str, Any]] = []
    top = _first(document) if isinstance(document, list) else document
    if not isinstance(top, dict):
        return found
    found.append(top)
    for inner in (_get(top, "AccessControlList"), _get(_first(_get(top, "AccessControlPolicy")), "AccessControlList")):
        inner = _first(inner)
        if isinstance(inner, dict) and all(inner is not f for f in found):
            found.append(inner)
    return found


def header_grantees(value: Any) -> list[tuple[str, str]]:
    """(type, value) per grantee in a grant header: `uri="…", id="…"` → [("uri", "…"), ("id", "…")]."""
    out = []
    for item in _as_list(value):
        if not isinstance(item, str):
            continue
        for part in item.split(","):
            match = _GRANTEE.match(part)
            if match:
                out.append((match.group(1).lower(), match.group(2).strip()))
    return out


@dataclass(frozen=True)
class AclParts:
    """What an ACL document said: canned ACL names, explicit grants, grant headers (permission, value)."""

    canned: tuple[str, ...]
    grants: tuple[Any, ...]
    headers: tuple[tuple[str, Any], ...]
    explicit: bool = False  # an AccessControlPolicy / AccessControlList was given (even with no grants)

    @property
    def said(self) -> bool:
        """Whether the document states an ACL at all (a PutBucketAcl record may carry none)."""
        return bool(self.canned or self.grants or self.headers or self.explicit)


def acl_parts(document: Any) -> AclParts:
    """Every ACL part in `document`, wherever CloudTrail or GetBucketAcl put it."""
    canned: list[str] = []
    grants: list[Any] = []
    headers: list[tuple[str, Any]] = []
    for box in acl_containers(document):
        value = _first(_get(box, "x-amz-acl"))
        if isinstance(value, str) and value.strip():
            canned.append(value.strip())
        for name in ("Grants", "Grant"):
            grants += _as_list(_get(box, name))
        for key, value in box.items():
            permission = GRANT_HEADERS.get(key_name(key))
            if permission is not None and value is not None:
                headers.append((permission, value))
    explicit = isinstance(document, dict) and any(
        isinstance(_first(_get(document, name)), dict) for name in ("AccessControlPolicy", "AccessControlList")
    )
    return AclParts(tuple(dict.fromkeys(canned)), tuple(grants), tuple(headers), explicit)


def public_grants(grants: Any) -> list[dict[str, str]]:
    """Grants to AllUsers/AuthenticatedUsers from an ACL's Grant list (or single-object Grant)."""
    found = []
    for grant in _as_list(grants):
        if not isinstance(grant, dict):
            continue
        grantee = _get(grant, "Grantee")
        uri = _first(_get(grantee, "URI"))
        group = PUBLIC_GROUPS.get(uri.strip()) if isinstance(uri, str) else None
        if group:
            permission = _first(_get(grant, "Permission"))
            found.append({"grantee": group, "permission": str(permission or "?").strip().upper()})
    return found


def grants_from_headers(headers: Any) -> list[dict[str, str]]:
    """Public grants carried by `x-amz-grant-*` headers in `headers` (or its AccessControlList)."""
    found = []
    for permission, value in acl_parts(headers).headers:
        for kind, grantee in header_grantees(value):
            group = PUBLIC_GROUPS.get(grantee) if kind == "uri" else None
            if group:
                found.append({"grantee": group, "permission": permission})
    return found


def grant_reason(grant: dict[str, str]) -> str:
    """`The ACL grants WRITE to AllUsers: anyone on the internet can write (upload, …).`"""
    group, permission = grant["grantee"], grant["permission"]
    who = GROUP_WORDS.get(group, group)
    what = PERMISSION_WORDS.get(permission, permission)
    return f"The ACL grants {permission} to {group}: {who} can {what}."


def evaluate_acl(acl: Any) -> Verdict:
    """Apply the rule to `GetBucketAcl` output, an `AccessControlPolicy`, grant headers or `{"x-amz-acl": …}`."""
    if not isinstance(acl, dict):
        return Verdict(False, "acl", ["This is not an ACL document, so it grants nothing."], readable=False)
    verdict = Verdict(False, "acl")
    parts = acl_parts(acl)
    grants: list[dict[str, str]] = []
    for canned in parts.canned:
        if canned not in PUBLIC_CANNED_ACLS:
            continue
        verdict.reasons.append(f"Canned ACL {canned}: {PUBLIC_CANNED_ACLS[canned]}.")
        grantee = "AuthenticatedUsers" if canned == "authenticated-read" else "AllUsers"
        verdict.public_grants.append({"grantee": grantee, "permission": "READ"})
        if canned == "public-read-write":
            verdict.public_grants.append({"grantee": "AllUsers", "permission": "WRITE"})
    grants = public_grants(list(parts.grants)) + grants_from_headers(acl)
    for grant in grants:
        if grant in verdict.public_grants:
            continue
        verdict.public_grants.append(grant)
        verdict.reasons.append(grant_reason(grant))
    verdict.public = bool(verdict.public_grants)
    verdict.severe = any(g["permission"] in SEVERE_PERMISSIONS for g in verdict.public_grants)
    if not verdict.public:
        said = ", ".join(f"canned ACL {c}" for c in parts.canned)
        verdict.reasons.append(
            "Not public: no grant to AllUsers (anyone) or AuthenticatedUsers (any AWS account)"
            + (f"; it sets {said}." if said else ".")
        )
    return verdict
