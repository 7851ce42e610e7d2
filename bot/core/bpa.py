"""S3 Block Public Access as data: the four flags, a configuration, and plain words about it.

No AWS call here (bot.aws.bpa reads and writes it): detections, the live verdict and the cards share these.
"""

from __future__ import annotations

# The four flags, in the order the S3 console and API documentation list them.
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


Config = dict[str, bool]


def changes_needed(current: Config | None) -> tuple[str, ...]:
    """Flags a fix turns on: the false ones, or all four when the configuration is absent."""
    return FLAGS if current is None else tuple(f for f in FLAGS if not current.get(f, False))


def target_label(account: str, bucket: str | None) -> str:
    return f"bucket {bucket} (account {account})" if bucket else f"account {account} (account-level)"


def describe_config(config: Config | None) -> str:
    """Say "all four flags on", "on: A, B; off: C, D" or "no configuration (all off)"."""
    if config is None:
        return "no configuration (all off)"
    off = [f for f in FLAGS if not config.get(f)]
    if not off:
        return "all four flags on"
    return f"on: {', '.join(f for f in FLAGS if config.get(f)) or 'none'}; off: {', '.join(off)}"
