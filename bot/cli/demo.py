"""`python -m bot demo`: the offline story, which ships with the source tree, not the installed package."""

from __future__ import annotations

import argparse
import importlib
import sys

NOT_INSTALLED = (
    "bucketwatch demo: the demo ships with the source tree, not the installed package (a production install\n"
    "carries no stand-ins and no moto). To run it: clone the repository and run `make demo` in it."
)


def cli_demo(args: argparse.Namespace) -> int:
    """Run the `demo` package's story when it is importable (a clone), else say how to get it."""
    try:
        story = importlib.import_module("demo.story")
    except ModuleNotFoundError as exc:
        if exc.name not in ("demo", "demo.story", "moto", "standins"):
            raise
        print(NOT_INSTALLED, file=sys.stderr)
        return 2
    return int(story.main(quiet=bool(getattr(args, "quiet", False))))
