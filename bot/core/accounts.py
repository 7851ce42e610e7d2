"""AWS_ACCOUNTS as data: the accounts named one by one, and the `org:<role>` entry (the whole organisation).

Kept apart from the settings table (bot.core.config), which reads AWS_ACCOUNTS with these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.readers import ConfigError, split

_ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,512}$")  # a name, with its path if it has one


@dataclass(frozen=True)
class Account:
    """One AWS account to watch: bare id uses ambient credentials, else AssumeRole."""

    account_id: str
    role_arn: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Organization:
    """`AWS_ACCOUNTS=org:<role-name>[:external-id]`: every active account of the AWS Organization."""

    role_name: str
    external_id: str | None = None

    def account(self, account_id: str) -> Account:
        """The account read through `role_name` in it (the roles template's read-only role)."""
        return Account(account_id, f"arn:aws:iam::{account_id}:role/{self.role_name}", self.external_id)

    def __str__(self) -> str:
        return f"org:{self.role_name}"


def parse_organization(text: str) -> Organization | None:
    """The `org:` entry of AWS_ACCOUNTS, if any (at most one)."""
    entries = [raw for raw in split(text) if raw.startswith("org:")]
    if not entries:
        return None
    if len(entries) > 1:
        raise ConfigError("AWS_ACCOUNTS: at most one org:<role-name> entry")
    role, _, external_id = entries[0][len("org:") :].partition(":")
    role = role.removeprefix("role/")
    if not _ROLE_NAME.match(role) or role.startswith("arn"):
        raise ConfigError(f"AWS_ACCOUNTS: {entries[0]!r}: after org: comes a role name (org:bucketwatch-readonly)")
    return Organization(role, external_id or None)


def parse_accounts(text: str) -> tuple[Account, ...]:
    """Parse `AWS_ACCOUNTS`: `id` or `id:arn:aws:iam::id:role/name[:external-id]` (the `org:` entry is apart)."""
    accounts = []
    for raw in split(text):
        if raw.startswith("org:"):
            continue
        account_id, _, rest = raw.partition(":")
        if not (account_id.isdigit() and len(account_id) == 12):
            raise ConfigError(f"AWS_ACCOUNTS: {raw!r} does not start with a 12-digit account id")
        role_arn = external_id = None
        if rest:
            if not rest.startswith("arn:"):
                raise ConfigError(f"AWS_ACCOUNTS: {raw!r}: after the id comes a role ARN")
            # An ARN holds five colons (arn:partition:iam::account:role/name); what follows is the external id.
            parts = rest.split(":")
            role_arn = ":".join(parts[:6])
            external_id = ":".join(parts[6:]) or None
        accounts.append(Account(account_id, role_arn, external_id))
    return tuple(accounts)
