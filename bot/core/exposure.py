"""The live exposure verdict as data: is the bucket reachable by the public now, and through which path?"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from bot.core.bpa import FLAGS
from bot.core.clock import iso, parse_iso


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
