"""AWS access per account: ambient credentials or AssumeRole with self-refreshing credentials.

An `AWS_ACCOUNTS` entry that is a bare id uses the ambient credentials (environment, instance or
task role); `id:role-arn[:external-id]` assumes the role through botocore's own
`AssumeRoleCredentialFetcher` + `DeferredRefreshableCredentials`, which call STS on first use and
again before expiry. Clients retry in botocore's "adaptive" mode. No endpoint URL is passed, so
boto3's own `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables keep working.

Writes (remediation) never reuse an account's read-only role: with `REMEDIATION_ROLE` set they
assume that role in the target account (passing the account's external id, if any) from the ambient
credentials; without it, bare-id accounts write with the ambient credentials and role-based accounts
refuse (`NoWriteAccess`) rather than fall back to the read role.

Write sessions are per presser: `client(..., write=True, actor=<Slack user id>)` assumes the remediation
role with `SourceIdentity=<user id>` and `RoleSessionName=bucketwatch-<user id>`, so the watched account's
own CloudTrail names the human behind every fix and undo (AWS carries SourceIdentity through any later
role chaining and it cannot be changed within the session; docs.aws.amazon.com/IAM/latest/UserGuide/
id_credentials_temp_control-access_monitor.html). deploy/roles.cfn.yaml requires it.

The accounts and regions to watch are AWS_ACCOUNTS × AWS_REGIONS as given, plus what discovery adds
at run time (`set_fleet`: AWS_ACCOUNTS=org:<role>, AWS_REGIONS=all; see bot.sources.fleet). An account
listed by id wins over the same account discovered through the organisation.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from bot.core.config import Account, Settings
from bot.core.shapes import arn_account

log = logging.getLogger(__name__)

READ_SESSION_NAME = "bucketwatch-read"
WRITE_SESSION_NAME = "bucketwatch-remediate"  # a write session that names no presser
SESSION_PREFIX = "bucketwatch-"
# STS: RoleSessionName and SourceIdentity are 2-64 characters of [\w+=,.@-].
_STS_UNSAFE = re.compile(r"[^\w+=,.@-]")
# Per-presser write sessions kept at once (each holds a credential fetcher and its clients); the
# oldest is dropped past this, and built again on its presser's next press.
MAX_WRITE_SESSIONS = 256

SessionKey = tuple[str, bool, str]  # (account id or "" for ambient, write, actor)


class AwsError(Exception):
    """AWS access could not be set up for an account."""


class UnknownAccount(AwsError):
    """The account id is not in AWS_ACCOUNTS."""


class NoWriteAccess(AwsError):
    """No credentials may write to this account (role-based account and no REMEDIATION_ROLE)."""


class NoCredentials(AwsError):
    """There are no ambient credentials to call AWS (or to assume a role with)."""


# What an AWS call may raise: the service refused, the SDK failed, or the account cannot be reached at
# all (unknown account, no remediation role configured).
AWS_ERRORS = (ClientError, BotoCoreError, AwsError)
# Error codes that mean "this principal may not": IAM and SCP denials (AccessDenied*), a bucket whose
# owner disabled all access, EC2-style UnauthorizedOperation, and bare HTTP 403s (HEAD requests and
# S3-compatible endpoints carry no error body, so botocore names the code after the status).
DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "UnauthorizedOperation", "Forbidden", "403"}
)


SessionFactory = Callable[[], botocore.session.Session]
ClientFactory = Callable[[boto3.Session, str, str, Config], Any]


def _default_client(session: boto3.Session, service: str, region: str, config: Config) -> Any:
    client = session.client(service, region_name=region, config=config)
    if service == "s3control" and not client.meta.endpoint_url.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        client.meta.events.register("before-sign.s3-control.*", _unprefix_account_host)
    return client


def _unprefix_account_host(request: Any, **kwargs: Any) -> None:
    """Drop the `<account>.` that S3 Control's endpoint rules put in front of a custom endpoint's host.

    AWS resolves `<account>.s3-control.<region>.amazonaws.com`; an S3-compatible or stand-in endpoint
    set by AWS_ENDPOINT_URL(_S3_CONTROL) (often an IP address) has no such names, and botocore offers no
    switch for it (inject_host_prefix does not cover endpoint-rule prefixes).
    """
    parts = urlsplit(request.url)
    account, dot, rest = parts.netloc.partition(".")
    if dot and account.isdigit() and len(account) == 12:
        request.url = urlunsplit(parts._replace(netloc=rest))


class _RoleProvider(CredentialProvider):  # type: ignore[misc]  # botocore ships no type hints
    """Hands botocore the role's refreshing credentials as the session's only credential source."""

    METHOD = "assume-role"
    CANONICAL_NAME = "custom-bucketwatch-assume-role"

    def __init__(self, fetcher: AssumeRoleCredentialFetcher):
        super().__init__()
        self._fetcher = fetcher

    def load(self) -> DeferredRefreshableCredentials:
        # Deferred: STS is called on first use, and botocore refreshes before expiry (under its lock).
        return DeferredRefreshableCredentials(refresh_using=self._fetcher.fetch_credentials, method=self.METHOD)


def source_identity(actor: str) -> str | None:
    """The presser's Slack user id as STS accepts it for SourceIdentity, or None when there is none."""
    cleaned = _STS_UNSAFE.sub("-", actor.strip())[:64]
    return cleaned if len(cleaned) >= 2 else None


def write_session_name(actor: str) -> str:
    """`bucketwatch-<user id>`: the session name CloudTrail shows in the assumed-role ARN of a fix."""
    identity = source_identity(actor)
    return (SESSION_PREFIX + identity)[:64] if identity else WRITE_SESSION_NAME


def role_arn_for(role: str, account_id: str) -> str:
    """REMEDIATION_ROLE as an ARN: a role name (or path/name) becomes arn:aws:iam::<account>:role/<name>."""
    if role.startswith("arn:"):
        if arn_account(role) != account_id:  # settings_problems refuses this; never assume another account's role
            raise NoWriteAccess(f"REMEDIATION_ROLE {role} is a role of account {arn_account(role)}, not of"
                                f" {account_id}: give the role's name to fix in every account")
        return role
    return f"arn:aws:iam::{account_id}:role/{role.removeprefix('role/')}"


class AwsClients:
    """Cached boto3 clients per (service, account, region, read|write), built from Settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        session_factory: SessionFactory = botocore.session.get_session,
        client_factory: ClientFactory = _default_client,
        max_attempts: int = 8,
        sts_region: str | None = None,
    ):
        self.settings = settings
        self._accounts = {a.account_id: a for a in settings.accounts}
        self._regions: dict[str, tuple[str, ...]] = {}  # AWS_REGIONS=all: enabled regions per account
        self._session_factory = session_factory
        self._client_factory = client_factory
        self._sts_region = sts_region
        # botocore's `max_attempts` counts retries after the first attempt.
        self.config = Config(
            retries={"mode": "adaptive", "max_attempts": max_attempts},
            user_agent_extra="bucketwatch",
        )
        self._lock = threading.Lock()
        self._session_locks: dict[SessionKey, threading.Lock] = {}
        self._sessions: dict[SessionKey, boto3.Session] = {}
        self._clients: dict[tuple[str, str, str, bool, str], Any] = {}
        self._ambient: botocore.session.Session | None = None

    @property
    def accounts(self) -> tuple[Account, ...]:
        """AWS_ACCOUNTS as listed, then the accounts discovered in the organisation."""
        return tuple(self._accounts.values())

    def regions_for(self, account_id: str) -> tuple[str, ...]:
        """AWS_REGIONS, or with AWS_REGIONS=all the account's enabled regions (none until discovered)."""
        if not self.settings.all_regions:
            return self.settings.regions
        return self._regions.get(account_id, ())

    def targets(self) -> list[tuple[str, str]]:
        """Every (account, region) to watch, accounts in order."""
        return [(a.account_id, r) for a in self.accounts for r in self.regions_for(a.account_id)]

    def set_fleet(self, discovered: Iterable[Account], regions: Mapping[str, tuple[str, ...]]) -> None:
        """Replace what discovery found: the organisation's active accounts and each account's regions."""
        listed = {a.account_id: a for a in self.settings.accounts}
        merged = {a.account_id: a for a in discovered if a.account_id not in listed}
        # Swapped whole: readers on other threads see the old set or the new one, never half of each.
        self._accounts = {**listed, **merged}
        self._regions = dict(regions)

    def account(self, account_id: str) -> Account:
        try:
            return self._accounts[account_id]
        except KeyError:
            raise UnknownAccount(f"account {account_id} is not in AWS_ACCOUNTS") from None

    def client(self, service: str, account_id: str, region: str, *, write: bool = False, actor: str = "") -> Any:
        """A cached client for `service` in one account and region; `write=True` for changes.

        `actor`, the Slack user id of whoever pressed the button, names a write session through the
        remediation role (SourceIdentity and session name); reads ignore it.
        """
        # Ambient writes (a bare id, no REMEDIATION_ROLE) cannot name anyone: one client for all pressers.
        session_key = self._session_key(account_id, write, actor)
        key = (service, account_id, region, write, session_key[2])
        cached = self._clients.get(key)
        return cached if cached is not None else self._build(key, session_key)

    def ambient_client(self, service: str, region: str) -> Any:
        """A client with the ambient credentials, for resources outside AWS_ACCOUNTS (trail buckets)."""
        key = (service, "", region, False, "")
        cached = self._clients.get(key)
        return cached if cached is not None else self._build(key, ("", False, ""))

    def _build(self, key: tuple[str, str, str, bool, str], session_key: SessionKey) -> Any:
        with self._lock:
            lock = self._session_locks.setdefault(session_key, threading.Lock())
        # boto3 sessions are not thread-safe, clients are: build under a per-session lock so that
        # different accounts are set up in parallel.
        with lock:
            cached = self._clients.get(key)
            if cached is None:
                service, _, region, _, _ = key
                session = self._session(session_key)
                cached = self._clients[key] = self._client_factory(session, service, region, self.config)
        return cached

    def role_for(self, account_id: str, *, write: bool = False) -> tuple[str, str | None] | None:
        """(role ARN, external id) assumed for this account, or None for ambient credentials."""
        account = self.account(account_id)
        if write:
            if self.settings.remediation_role:
                return role_arn_for(self.settings.remediation_role, account_id), account.external_id
            if account.role_arn:
                raise NoWriteAccess(
                    f"account {account_id} is read through a role and no REMEDIATION_ROLE is set:"
                    " the read-only role never writes"
                )
            return None
        if account.role_arn:
            return account.role_arn, account.external_id
        return None

    def _session_key(self, account_id: str, write: bool, actor: str = "") -> SessionKey:
        role = self.role_for(account_id, write=write)
        # Every ambient-credential use shares one session; each assumed role gets its own, and each
        # presser their own write session (their SourceIdentity is fixed for the session's life).
        return ("", False, "") if role is None else (account_id, write, actor if write else "")

    def _session(self, session_key: SessionKey) -> boto3.Session:
        session = self._sessions.get(session_key)
        if session is not None:
            return session
        account_id, write, actor = session_key
        ambient = self._ambient_session()
        if not account_id:
            session = boto3.Session(botocore_session=ambient)
        elif write:
            role = self.role_for(account_id, write=True)
            assert role is not None
            identity, name = source_identity(actor), write_session_name(actor)
            log.info("account %s: writes by %s assume %s as session %s", account_id, actor or "the bot", role[0], name)
            session = self._role_session(ambient, role[0], role[1], name, source_identity=identity)
        else:
            role = self.role_for(account_id)
            assert role is not None
            session = self._role_session(ambient, role[0], role[1], READ_SESSION_NAME)
        with self._lock:
            self._sessions[session_key] = session
            if actor:
                self._forget_oldest_presser()
        return session

    def _forget_oldest_presser(self) -> None:
        """Keep at most MAX_WRITE_SESSIONS per-presser sessions (under self._lock)."""
        pressers = [k for k in self._sessions if k[2]]
        for stale in pressers[: max(0, len(pressers) - MAX_WRITE_SESSIONS)]:
            del self._sessions[stale]
            for key in [k for k in self._clients if (k[1], k[3], k[4]) == stale]:
                del self._clients[key]

    def _ambient_session(self) -> botocore.session.Session:
        with self._lock:
            if self._ambient is None:
                self._ambient = self._session_factory()
            return self._ambient

    def _role_session(
        self,
        ambient: botocore.session.Session,
        role_arn: str,
        external_id: str | None,
        session_name: str,
        *,
        source_identity: str | None = None,
    ) -> boto3.Session:
        source = ambient.get_credentials()
        if source is None:
            raise NoCredentials("no ambient AWS credentials to assume roles with")
        extra: dict[str, Any] = {"RoleSessionName": session_name}
        if external_id:
            extra["ExternalId"] = external_id
        if source_identity:
            # The trust policy must allow sts:SetSourceIdentity (deploy/roles.cfn.yaml does, and requires it).
            extra["SourceIdentity"] = source_identity
        region = self._sts_region or ambient.get_config_variable("region") or "us-east-1"
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=partial(ambient.create_client, region_name=region, config=self.config),
            source_credentials=source,
            role_arn=role_arn,
            extra_args=extra,
        )
        role_session = self._session_factory()
        # Loading service models is most of a session's cost: share the ambient session's loader.
        role_session.register_component("data_loader", ambient.get_component("data_loader"))
        role_session.register_component("credential_provider", CredentialResolver([_RoleProvider(fetcher)]))
        return boto3.Session(botocore_session=role_session)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError (`AccessDenied`), else the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__  # BotoCoreError subclasses name themselves: EndpointConnectionError …


def error_message(exc: BaseException) -> str:
    """`Code: message`, short, for poller_state and the digest (never holds credentials)."""
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message") or "")
        return f"{error_code(exc)}: {message}"[:300] if message else error_code(exc)
    return f"{error_code(exc)}: {exc}"[:300]


def request_id(exc_or_response: Any) -> str:
    """The AWS request id of a ClientError or a response dict ('' when absent)."""
    response = exc_or_response.response if isinstance(exc_or_response, ClientError) else exc_or_response
    if not isinstance(response, dict):
        return ""
    meta = response.get("ResponseMetadata") or {}
    headers = meta.get("HTTPHeaders") or {}
    # S3 names the header x-amz-request-id; most other services x-amzn-requestid.
    return str(meta.get("RequestId") or headers.get("x-amz-request-id") or headers.get("x-amzn-requestid") or "")


def ambiguous(exc: Exception) -> bool:
    """True when a failed write may still have been applied: no answer (timeout, dropped connection) or
    a server error. A refusal (AccessDenied, NoSuchBucket, throttling) means AWS did not change."""
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) >= 500
    return isinstance(exc, BotoCoreError)
