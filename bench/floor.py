"""The floor a trail scan is measured against: inflate every file with isal, N processes, nothing else.

    python bench/floor.py TRAIL_DIR [--processes 2] [--parse]

`--parse` also runs `orjson.loads` on each whole inflated file (what a scanner that parses every record
costs at least). Files are split between the processes by size, largest first; each process inflates
as a stream in 1 MiB pieces (isal's streaming inflater, as bucketwatch does) and prints how many bytes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson
from isal import isal_zlib


def inflate(path: str, parse: bool) -> int:
    inflater = isal_zlib.decompressobj(31)
    total = 0
    pieces = []
    with open(path, "rb") as fh:
        while data := fh.read(1 << 20):
            while data:
                out = inflater.decompress(data, 1 << 20)
                total += len(out)
                if parse:
                    pieces.append(out)
                data = inflater.unconsumed_tail
    if parse:
        orjson.loads(b"".join(pieces))
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trail", type=Path)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--parse", action="store_true")
    args = parser.parse_args(argv)
    files = sorted((str(p) for p in (args.trail / "AWSLogs").rglob("*.json.gz")), key=os.path.getsize, reverse=True)
    shares: list[list[str]] = [[] for _ in range(args.processes)]
    sizes = [0] * args.processes
    for path in files:
        i = sizes.index(min(sizes))
        shares[i].append(path)
        sizes[i] += os.path.getsize(path)
    children = []
    for share in shares[1:]:
        pid = os.fork()
        if pid == 0:
            total = sum(inflate(p, args.parse) for p in share)
            os._exit(0 if total >= 0 else 1)
        children.append(pid)
    total = sum(inflate(p, args.parse) for p in shares[0])
    failed = 0
    for pid in children:
        failed |= os.waitpid(pid, 0)[1]
    print(f"{len(files)} files; this process inflated {total:,} bytes", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
