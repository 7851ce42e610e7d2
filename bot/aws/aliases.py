"""Account aliases for the card (`111122223333 (acme-prod)`), read with iam:ListAccountAliases and cached.

An account has at most one alias and it rarely changes, so each account is asked once an hour; a
failed read (AccessDenied, an account outside AWS_ACCOUNTS, a network error) costs only the alias,
and is retried after a few minutes rather than on every card.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.clients import AwsError, error_message

log = logging.getLogger(__name__)

ALIAS_TTL = 3600.0
FAILURE_TTL = 300.0


class AccountAliases:
    """`aliases(account_id)` → the account's IAM alias or None; usable as AlertService's alias_fn."""

    def __init__(self, iam_for: Callable[[str], Any], *, ttl: float = ALIAS_TTL,
                 failure_ttl: float = FAILURE_TTL, clock: Callable[[], float] = time.monotonic):
        self.iam_for = iam_for
        self.ttl, self.failure_ttl, self.clock = ttl, failure_ttl, clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, account: str) -> str | None:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(account)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = self.iam_for(account).list_account_aliases()
        except (ClientError, BotoCoreError, AwsError) as exc:
            # The role may lack iam:ListAccountAliases (deploy/readonly-policy.json grants it): say so once.
            log.warning("account alias of %s not read: %s", account, error_message(exc))
            alias, expires = None, now + self.failure_ttl
        else:
            aliases = response.get("AccountAliases") or []
            alias, expires = (str(aliases[0]) if aliases else None), now + self.ttl
        with self._lock:
            self._cache[account] = (expires, alias)
        return alias
