"""`policy FILE|-`: AWS's "public" rule on one policy or ACL, as JSON; `--fail-if-public` gates a CI job.

Exit status (also in `policy --help`): 0 verdict printed; 1 the verdict is public and
`--fail-if-public` was given; 2 the input could not be read, or is not a policy, an ACL or a canned
ACL name (the message says what it is: `{}`, a list, get-bucket-policy-status output, …).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import orjson

from bot.core.policy import NotAPolicy, read_document

EXIT_OK, EXIT_PUBLIC, EXIT_BAD_INPUT = 0, 1, 2


def cli_policy(args: argparse.Namespace) -> int:
    name = "stdin" if args.path == "-" else args.path
    if args.account is not None and not re.fullmatch(r"\d{12}", args.account):
        print(f"bucketwatch policy: --account {args.account!r} is not a 12-digit account id", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        data = sys.stdin.buffer.read() if args.path == "-" else Path(args.path).read_bytes()
    except OSError as exc:
        print(f"bucketwatch policy: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        verdict = read_document(data, owner_account=args.account)
    except NotAPolicy as exc:
        print(f"bucketwatch policy: {name} is {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(orjson.dumps(verdict.as_dict(), option=orjson.OPT_INDENT_2).decode())
    return EXIT_PUBLIC if args.fail_if_public and verdict.public else EXIT_OK
