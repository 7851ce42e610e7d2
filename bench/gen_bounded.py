"""Inputs that used to cost too much (issue 8, "Unbounded input"), for measuring peak memory.

    python bench/gen_bounded.py [OUT_DIR]

- `spaces.json.gz`: a log file whose last record holds 1 GiB of spaces (about 1 MB of gzip);
- `array.json`: a 600 MB JSON array of EventBridge envelopes (real records cloned, one exposure per 10,000);
- `bom.json`: a log file that starts with a UTF-8 byte-order mark;
- `single-line.json.gz`: one 200 MB line, `{"Records":[…]}` with keys in reverse order.

Then: `/usr/bin/time -v python -m bot scan FILE` and read "Maximum resident set size".
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import gen_independent
import gen_trail
import orjson
from isal import igzip

OUT = Path(__file__).resolve().parent / "out" / "bounded"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=OUT, help=f"where the files go (default {OUT})")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    gen_trail._init()
    account = gen_trail.ACCOUNTS[0]
    templates = gen_trail.BACKGROUND[account]
    maker = gen_trail.FileMaker(9, account, "us-east-1", datetime(2025, 3, 3, tzinfo=UTC))
    exposure = maker.exposure("bucket_bpa_deleted", False)
    body = orjson.dumps({"Records": [maker.clone(templates[0]), exposure]})
    with igzip.open(out / "spaces.json.gz", "wb", compresslevel=1) as fh:
        fh.write(body[:-3])
        block = b" " * (1 << 20)
        for _ in range(1024):
            fh.write(block)
        fh.write(body[-3:])
    envelope = {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "account": account}
    with open(out / "array.json", "wb") as fh:
        fh.write(b"[")
        written, n = 0, 0
        while written < 600_000_000:
            detail = exposure if n % 10_000 == 0 else maker.clone(templates[n % len(templates)])
            item = (b"," if n else b"") + orjson.dumps({**envelope, "detail": detail})
            fh.write(item)
            written += len(item)
            n += 1
        fh.write(b"]")
    (out / "bom.json").write_bytes(b"\xef\xbb\xbf" + body)
    records = [gen_independent.reorder(maker.clone(templates[n % len(templates)]), "reversed", None)  # type: ignore[arg-type]
               for n in range(160_000)] + [gen_independent.reorder(exposure, "reversed", None)]  # type: ignore[arg-type]
    (out / "single-line.json.gz").write_bytes(igzip.compress(orjson.dumps({"Records": records}), 1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
