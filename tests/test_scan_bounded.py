"""Input that costs too much, as a user meets it: zip bombs, huge arrays, byte-order marks, a full disk."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from isal import isal_zlib

from bot.sources.files import scan_input
from bot.sources.inflate import file_opener
from tests.test_scan_cli import ACCT, BACKGROUND, EXPECTED, PUBLIC_POLICY, RECORDS, _findings, _trail_tree

REPO = Path(__file__).resolve().parents[1]


# Runs the CLI and then notes its own peak resident memory (VmHWM: this process image's high-water mark,
# not the test process' that it was started from).
_MEASURED = """
import os, runpy, sys
sys.argv = ["bucketwatch", *sys.argv[1:]]
try:
    runpy.run_module("bot", run_name="__main__")
finally:
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    open(os.environ["PEAK_FILE"], "w").write(peak.split()[1])
"""


def _scan(*args: str, tmp: Path) -> tuple[int, str, str, int]:
    """Exit code, stdout, stderr and peak RSS (MiB) of one `bucketwatch scan` process."""
    peak = tmp / "peak"
    env = dict(os.environ, PYTHONPATH=str(REPO), DB_PATH=str(tmp / "index.db"), PEAK_FILE=str(peak))
    done = subprocess.run([sys.executable, "-c", _MEASURED, "scan", "--format", "jsonl", *args],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    return done.returncode, done.stdout, done.stderr, int(peak.read_text()) // 1024


def _log(records: list[dict[str, object]], padding: int = 0) -> bytes:
    body = b",".join(json.dumps(r, separators=(",", ":")).encode() for r in records)
    return b'{"Records":[' + body[:-1] + b" " * padding + body[-1:] + b"]}"


def _gzip_padded(records: list[dict[str, object]], mib: int) -> bytes:
    """_log(records, padding=mib MiB) as one gzip member, compressed a MiB at a time: the same bytes
    without building them (compressing 384 MiB in one piece cost ~2 s of CPU)."""
    log = _log(records)
    deflate = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    spaces = b" " * (1 << 20)
    parts = [deflate.compress(log[:-3]), *(deflate.compress(spaces) for _ in range(mib)), deflate.compress(log[-3:])]
    return b"".join([*parts, deflate.flush()])


def test_a_small_gzip_that_inflates_to_hundreds_of_megabytes_is_read_in_little_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.json.gz"
    # 384 MiB of spaces inside the last record: about 400 KB of gzip.
    bomb.write_bytes(_gzip_padded([*BACKGROUND, PUBLIC_POLICY], mib=384))
    assert bomb.stat().st_size < 2 << 20
    code, out, err, peak = _scan(str(bomb), tmp=tmp_path)
    assert code == 0, err
    assert [f["detection"] for f in _findings(out)] == ["bucket_policy_public"]
    assert peak < 200, f"peak RSS {peak} MiB"


def test_past_the_per_file_cap_a_file_is_skipped_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "big.json.gz"
    path.write_bytes(gzip.compress(_log([PUBLIC_POLICY], padding=3 << 20)))
    result = scan_input(file_opener(path, cap=2 << 20), str(path))
    assert result.findings == [] and result.stats.malformed == 0  # unreadable, said once as such
    [(where, why)] = result.errors
    assert where == str(path) and "inflates past 2 MiB (the per-file cap): skipped" in why


def test_a_large_json_array_is_streamed(tmp_path: Path) -> None:
    envelope = {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "account": ACCT}
    items = [json.dumps({**envelope, "detail": {**r, "eventID": f"{r['eventID']}-{n}"}}) for n in range(400)
             for r in BACKGROUND]  # fmt: skip
    items.append(json.dumps({**envelope, "detail": PUBLIC_POLICY}))
    path = tmp_path / "events.json"
    path.write_text("[" + ",\n".join(items * 60) + "]")
    assert path.stat().st_size > 40 << 20
    code, out, err, peak = _scan(str(path), tmp=tmp_path)
    assert code == 0, err
    assert [f["event_id"] for f in _findings(out)] == [PUBLIC_POLICY["eventID"]] * 60
    assert f"{len(items) * 60} record(s)" in err
    assert peak < 200, f"peak RSS {peak} MiB"


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_byte_order_mark_is_tolerated(tmp_path: Path, gzipped: bool) -> None:
    blob = b"\xef\xbb\xbf" + json.dumps({"Records": RECORDS}).encode()
    path = tmp_path / ("bom.json.gz" if gzipped else "bom.json")
    path.write_bytes(gzip.compress(blob) if gzipped else blob)
    code, out, err, _ = _scan(str(path), tmp=tmp_path)
    assert code == 0, err
    assert sorted((f["event_id"], f["detection"]) for f in _findings(out)) == EXPECTED
    assert "malformed" not in err


def test_side_files_beside_the_trail_are_not_input(tmp_path: Path) -> None:
    _trail_tree(tmp_path, chunks=2)
    (tmp_path / "manifest.json").write_text(json.dumps({"planted": [PUBLIC_POLICY]}))
    (tmp_path / "truth.jsonl").write_text(json.dumps(PUBLIC_POLICY) + "\n")
    code, out, err, _ = _scan(str(tmp_path), tmp=tmp_path)
    assert code == 0, err
    assert sorted((f["event_id"], f["detection"]) for f in _findings(out)) == EXPECTED
    assert "2 side file(s) beside the trail not read (manifest.json, truth.jsonl)" in err
    assert "malformed" not in err


def _in_small_filesystem(script: str, tmp: Path, size: str = "192k") -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) in a private mount namespace where $SMALL is a tmpfs of `size`."""
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) to mount a small filesystem")
    small = tmp / "small"
    small.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), SMALL=str(small), PY=sys.executable, TREE=str(tmp / "AWSLogs"))
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=192k tmpfs "$SMALL"'],
                           capture_output=True, env=env, check=False)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode()[:200]}")
    full = f'mount -t tmpfs -o size={size} tmpfs "$SMALL" && cd "$SMALL" && ' + script
    return subprocess.run(["unshare", "-m", "sh", "-c", full], capture_output=True, text=True, env=env,
                          timeout=300, check=False)  # fmt: skip


def _problem_lines(stderr: str) -> list[str]:
    # Every command that opens the database first says where it is (bot.cli.common.open_store).
    return [line for line in stderr.strip().splitlines() if not line.startswith("bucketwatch: database ")]


def test_a_full_disk_gives_one_clear_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    tree = _trail_tree(tmp_path, chunks=4)
    (tree / "big.jsonl").write_text(
        "\n".join(json.dumps({**PUBLIC_POLICY, "eventID": f"fill-{n}", "userAgent": "x" * 2000}) for n in range(600))
    )
    done = _in_small_filesystem('DB_PATH="$SMALL/index.db" "$PY" -m bot scan --index "$TREE" >/dev/null', tmp_path)
    assert done.returncode == 3, done.stderr
    lines = _problem_lines(done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "cannot write the database" in lines[0] and "database or disk is full" in lines[0]


def test_a_read_only_database_gives_one_clear_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    tree = _trail_tree(tmp_path, chunks=2)
    script = (
        'DB_PATH="$SMALL/index.db" "$PY" -m bot scan --index "$TREE" >/dev/null 2>&1 && '
        'mount -o remount,ro "$SMALL" && DB_PATH="$SMALL/index.db" "$PY" -m bot scan --index "$TREE" >/dev/null'
    )
    assert tree.exists()
    done = _in_small_filesystem(script, tmp_path, size="8m")
    assert done.returncode == 3, done.stderr
    lines = _problem_lines(done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr and "cannot write the database" in lines[0]
