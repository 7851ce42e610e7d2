"""`python -m bot scan` and `who-changed` as a user runs them: real files, real processes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.core.record import Record
from bot.sources.files import find_log_files
from detections import REGISTRY, evaluate

REPO = Path(__file__).resolve().parents[1]
ACCT = "111122223333"
FIELDS = {
    "event_id",
    "event_time",
    "event_name",
    "detection",
    "severity",
    "account",
    "region",
    "bucket",
    "actor",
    "source_ip",
    "user_agent",
    "title",
}


def _case_records() -> list[dict[str, Any]]:
    """Every record from the detections' own case files (true and false cases)."""
    out: list[dict[str, Any]] = []
    for detection in REGISTRY:
        out.extend(case["record"] for case in json.loads(detection.cases_path.read_text()))
    return out


RECORDS = _case_records()
EXPECTED = sorted((f.event_id, f.detection) for r in RECORDS for f in evaluate(Record(r)))
BACKGROUND = [
    {
        "eventVersion": "1.09",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "eventID": f"bg-{i}",
        "eventTime": "2025-03-04T10:00:00Z",
        "awsRegion": "us-east-1",
        "userAgent": 'aws-cli/2 "eventSource":"s3.amazonaws.com"',
        "recipientAccountId": ACCT,
    }
    for i in range(5)
]
PUBLIC_POLICY = next(
    r
    for r in RECORDS
    if r["eventName"] == "PutBucketPolicy"
    and evaluate(Record(r))
    and evaluate(Record(r))[0].detection == "bucket_policy_public"
)


def _run(*args: str, tmp: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), DB_PATH=str(tmp / "index.db"))
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        cwd=tmp,
        env=env,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def _findings(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _compact(records: list[dict[str, Any]]) -> bytes:
    """CloudTrail's own log-file bytes: compact, `eventVersion` first (the scanner's fast path)."""
    ordered = [{"eventVersion": r.get("eventVersion", "1.09"), **r} for r in records]
    return json.dumps({"Records": ordered}, separators=(",", ":")).encode()


def _trail_tree(root: Path, chunks: int = 4) -> Path:
    folder = root / "AWSLogs" / ACCT / "CloudTrail" / "us-east-1" / "2025" / "03" / "04"
    folder.mkdir(parents=True)
    everything = RECORDS + BACKGROUND
    for n in range(chunks):
        name = f"{ACCT}_CloudTrail_us-east-1_20250304T10{n:02d}Z_h1abc{n}.json.gz"
        (folder / name).write_bytes(gzip.compress(_compact(everything[n::chunks])))
    (folder / "README.txt").write_text("not a trail file: ignored by name")
    return root / "AWSLogs"


def test_trail_tree_jsonl(tmp_path: Path) -> None:
    tree = _trail_tree(tmp_path)
    done = _run("scan", str(tree), "--format", "jsonl", "--workers", "2", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    found = _findings(done.stdout)
    assert sorted((f["event_id"], f["detection"]) for f in found) == EXPECTED
    for finding in found:
        assert FIELDS <= set(finding)
        assert finding["account"] == ACCT and finding["title"] and finding["actor"]
        if finding["detection"].startswith("account_"):
            assert finding["bucket"] is None
        elif not finding["detection"].startswith("access_point_"):
            assert finding["bucket"]
    assert f"scanned 4 file(s), {len(RECORDS) + len(BACKGROUND)} record(s)" in done.stderr
    assert "malformed" not in done.stderr


def test_single_worker_and_pool_agree(tmp_path: Path) -> None:
    tree = _trail_tree(tmp_path, chunks=6)
    one = _run("scan", str(tree), "--format", "jsonl", "--workers", "1", tmp=tmp_path)
    many = _run("scan", str(tree), "--format", "jsonl", "--workers", "2", tmp=tmp_path)
    assert sorted(one.stdout.splitlines()) == sorted(many.stdout.splitlines())
    assert len(one.stdout.splitlines()) == len(EXPECTED)


def test_every_file_shape(tmp_path: Path) -> None:
    records = RECORDS[:]
    third = len(records) // 3
    spaced = tmp_path / "export.json"  # pretty-printed log file: not the fast path
    spaced.write_text(json.dumps({"Records": records[:third]}, indent=2))
    lines = tmp_path / "export.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in records[third : 2 * third]) + "\n")
    bridge = tmp_path / "eventbridge.json"
    bridge.write_text(
        json.dumps(
            [
                {
                    "version": "0",
                    "detail-type": "AWS API Call via CloudTrail",
                    "source": "aws.s3",
                    "detail": r,
                }
                for r in records[2 * third :]
            ]
        )
    )
    done = _run("scan", str(spaced), str(lines), str(bridge), "--format", "jsonl", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted((f["event_id"], f["detection"]) for f in _findings(done.stdout)) == EXPECTED


def test_single_eventbridge_event_and_bare_record(tmp_path: Path) -> None:
    event = {
        "version": "0",
        "id": "x",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": ACCT,
        "region": "us-east-1",
        "detail": PUBLIC_POLICY,
    }
    (tmp_path / "one.json").write_text(json.dumps(event))
    (tmp_path / "bare.json").write_text(json.dumps(PUBLIC_POLICY))
    done = _run(
        "scan", str(tmp_path / "one.json"), str(tmp_path / "bare.json"), "--format", "jsonl", tmp=tmp_path
    )
    assert [f["detection"] for f in _findings(done.stdout)] == ["bucket_policy_public"] * 2


@pytest.mark.parametrize("gzipped", [False, True])
def test_stdin(tmp_path: Path, gzipped: bool) -> None:
    blob = _compact(RECORDS + BACKGROUND)
    done = _run(
        "scan", "-", "--format", "jsonl", tmp=tmp_path, stdin=gzip.compress(blob) if gzipped else blob
    )
    assert done.returncode == 0, done.stderr
    assert sorted((f["event_id"], f["detection"]) for f in _findings(done.stdout)) == EXPECTED


def test_text_format_reads_like_a_card(tmp_path: Path) -> None:
    done = _run("scan", "-", tmp=tmp_path, stdin=json.dumps(PUBLIC_POLICY).encode())
    assert done.returncode == 0
    finding = evaluate(Record(PUBLIC_POLICY))[0]
    assert "[CRITICAL]" in done.stdout and finding.title in done.stdout
    assert finding.actor.display in done.stdout and finding.source_ip in done.stdout
    assert "scanned 1 file(s), 1 record(s): 1 finding(s)" in done.stderr


def test_malformed_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(PUBLIC_POLICY),
                "{not json",
                '{"no": "record"}',
                "",
                "[1, 2",
                json.dumps(BACKGROUND[0]),
            ]
        )
        + "\n"
    )
    done = _run("scan", str(path), "--format", "jsonl", tmp=tmp_path)
    assert done.returncode == 0
    assert [f["detection"] for f in _findings(done.stdout)] == ["bucket_policy_public"]
    assert "3 malformed input(s) skipped" in done.stderr
    assert "mixed.jsonl:2" in done.stderr and "Traceback" not in done.stderr


def test_a_log_file_with_no_records_is_empty_not_malformed(tmp_path: Path) -> None:
    (tmp_path / "quiet.json.gz").write_bytes(gzip.compress(b'{"Records":[]}'))
    (tmp_path / "none.json").write_text('{"Records": []}')
    (tmp_path / "odd.json").write_text('{"no": "record"}')
    done = _run("scan", str(tmp_path / "quiet.json.gz"), str(tmp_path / "none.json"), str(tmp_path / "odd.json"),
                tmp=tmp_path)
    assert done.returncode == 0
    assert "scanned 3 file(s), 0 record(s): 0 finding(s); 1 malformed input(s) skipped" in done.stderr
    assert "odd.json" in done.stderr and "quiet.json.gz" not in done.stderr and "none.json" not in done.stderr


def test_corrupt_gzip_in_a_tree_is_skipped_and_exits_1(tmp_path: Path) -> None:
    tree = _trail_tree(tmp_path, chunks=1)
    bad = next(tree.rglob("*.json.gz")).with_name("broken.json.gz")
    bad.write_bytes(gzip.compress(b'{"Records":[]}')[:15])
    done = _run("scan", str(tree), "--format", "jsonl", tmp=tmp_path)
    assert done.returncode == 1  # the rest is scanned; the exit says one file could not be read
    assert len(_findings(done.stdout)) == len(EXPECTED)
    assert "1 file(s) could not be read" in done.stderr and "malformed" not in done.stderr
    assert done.stderr.count("broken.json.gz") == 1  # the error is said once
    alone = _run("scan", str(bad), "--format", "jsonl", tmp=tmp_path)
    assert alone.returncode == done.returncode == 1  # the same exit alone as inside a directory
    assert alone.stderr.count("broken.json.gz") == 1 and "corrupt gzip" in alone.stderr
    piped = _run("scan", "-", tmp=tmp_path, stdin=bad.read_bytes())
    assert piped.returncode == 1 and piped.stderr.count("corrupt gzip") == 1


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    done = _run("scan", str(tmp_path / "no-such-trail"), tmp=tmp_path)
    assert done.returncode != 0
    assert "no-such-trail" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    mixed = _run("scan", "-", str(tmp_path / "no-such-trail"), tmp=tmp_path, stdin=b"")
    assert mixed.returncode == 2 and mixed.stderr == "bucketwatch scan: - (standard input) must be the only path\n"


def test_index_then_who_changed(tmp_path: Path) -> None:
    tree = _trail_tree(tmp_path, chunks=2)
    first = _run("scan", str(tree), "--index", "--format", "jsonl", tmp=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "index.db").exists()
    again = _run("scan", str(tree), "--index", "--format", "jsonl", tmp=tmp_path)
    assert ", 0 new event(s) indexed" in again.stderr  # idempotent by event id

    done = _run("who-changed", "h1-data-lake", "--days", "100000", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "h1-data-lake" in done.stdout and "PutBucketPolicy" in done.stdout
    assert "policy made public" in done.stdout
    assert "AccessDenied" not in done.stdout

    rows = _findings(
        _run("who-changed", "h1-data-lake", "--days", "100000", "--format", "jsonl", tmp=tmp_path).stdout
    )
    times = [r["event_time"] for r in rows]
    assert times == sorted(times, reverse=True) and len(rows) >= 5
    assert {r["event_name"] for r in rows} == {"PutBucketPolicy"}
    failed = {r["eventID"] for r in RECORDS if r.get("errorCode")}
    assert not failed & {r["event_id"] for r in rows}

    empty = _run("who-changed", "h1-never-seen", tmp=tmp_path)
    # AWS_ACCOUNTS is not set: say so before anything else, and do not pass for "no changes".
    assert empty.returncode == 2
    assert empty.stdout.splitlines()[:2] == [
        "Asked: the local index only (nothing there for this bucket).",
        "Not configured: AWS_ACCOUNTS is not set, so CloudTrail LookupEvents was not asked.",
    ]
    assert "No configuration changes" not in empty.stdout and "CloudTrail was not asked" in empty.stdout


def test_multi_member_gzip_file(tmp_path: Path) -> None:
    """`cat a.gz b.gz > c.gz` is valid gzip: every member's records are read."""
    half = len(RECORDS) // 2
    lines = [json.dumps(r).encode() + b"\n" for r in RECORDS]
    path = tmp_path / "joined.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(lines[:half])) + gzip.compress(b"".join(lines[half:])))
    done = _run("scan", str(path), "--format", "jsonl", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted((f["event_id"], f["detection"]) for f in _findings(done.stdout)) == EXPECTED


def test_a_named_file_that_cannot_be_read_fails_the_scan(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"Records": []}')
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    result = _run("scan", str(good), str(broken), tmp=tmp_path)
    assert result.returncode == 1
    assert "broken.json.gz" in result.stderr and "corrupt gzip" in result.stderr


def test_terminal_output_escapes_control_characters(tmp_path: Path) -> None:
    record = {
        "eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventName": "DeleteBucketPublicAccessBlock",
        "eventID": "ansi-1", "eventTime": "2026-11-01T00:00:00Z", "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333", "userAgent": "\x1b[2J\x1b[31mowned",
        "requestParameters": {"bucketName": "b1"}, "userIdentity": {"type": "IAMUser", "userName": "eve"},
    }
    path = tmp_path / "one.json"
    path.write_text(json.dumps(record))
    result = _run("scan", str(path), tmp=tmp_path)
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "[2J" in result.stdout and "owned" in result.stdout


def test_lookup_events_output_is_read(tmp_path: Path) -> None:
    """`aws cloudtrail lookup-events` prints Events[].CloudTrailEvent as JSON text: scan reads it."""
    events = [{"EventId": r.get("eventID"), "EventName": r.get("eventName"), "CloudTrailEvent": json.dumps(r)}
              for r in RECORDS]
    events.append({"EventId": "broken", "CloudTrailEvent": "{not json"})
    path = tmp_path / "lookup-events.json"
    path.write_text(json.dumps({"Events": events, "NextToken": "abc"}))
    done = _run("scan", str(path), "--format", "jsonl", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted((f["event_id"], f["detection"]) for f in _findings(done.stdout)) == EXPECTED
    assert "1 malformed input(s) skipped" in done.stderr
    piped = _run("scan", "-", "--format", "jsonl", tmp=tmp_path, stdin=gzip.compress(path.read_bytes()))
    assert sorted((f["event_id"], f["detection"]) for f in _findings(piped.stdout)) == EXPECTED


def test_digest_files_are_passed_over_and_counted_apart(tmp_path: Path) -> None:
    tree = _trail_tree(tmp_path, chunks=1)
    digest_dir = tree / ACCT / "CloudTrail-Digest" / "us-east-1" / "2025" / "03" / "04"
    digest_dir.mkdir(parents=True)
    digest = digest_dir / f"{ACCT}_CloudTrail-Digest_us-east-1_h1_us-east-1_20250304T110000Z.json.gz"
    body = {"awsAccountId": ACCT, "digestStartTime": "2025-03-04T10:00:00Z", "logFiles": []}
    digest.write_bytes(gzip.compress(json.dumps(body).encode()))
    done = _run("scan", str(tree), "--format", "jsonl", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "scanned 1 file(s)" in done.stderr and "1 CloudTrail-Digest file(s) passed over" in done.stderr
    assert "malformed" not in done.stderr
    only = _run("scan", str(digest_dir), tmp=tmp_path)
    assert only.returncode == 2 and "no CloudTrail log files in this directory" in only.stderr
    assert "1 CloudTrail-Digest file(s)" in only.stderr


def test_an_empty_directory_is_an_error_not_zero_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("no logs here")
    for folder in ("empty", "notes"):
        done = _run("scan", str(tmp_path / folder), tmp=tmp_path)
        assert done.returncode == 2 and "no CloudTrail log files" in done.stderr
        assert "scanned 0 file(s)" not in done.stderr and done.stdout == ""


def test_text_output_uses_the_cards_words(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"Records": RECORDS}))
    text = _run("scan", str(path), tmp=tmp_path).stdout
    assert "change BlockPublicAcls: unknown → off" in text or "change account BlockPublicAcls: unknown → off" in text
    assert "? →" not in text and "→ false" not in text


def _many_findings(tmp_path: Path) -> Path:
    template = next(r for r in RECORDS if r["eventName"] == "PutBucketPolicy" and evaluate(Record(r)))
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps({**template, "eventID": f"many-{n}"}) for n in range(3000)))
    return path


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_a_closed_pipe_ends_the_scan_quietly(tmp_path: Path, fmt: str) -> None:
    """`scan … | head -1`: far more output than a pipe buffers, the reader leaves after one line."""
    env = dict(os.environ, PYTHONPATH=str(REPO), DB_PATH=str(tmp_path / "index.db"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "scan", "--format", fmt, str(_many_findings(tmp_path))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141  # as a tool killed by SIGPIPE
    assert err == "", err


def test_a_closed_pipe_ends_policy_quietly(tmp_path: Path) -> None:
    statements = [{"Sid": f"S{n}", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                   "Resource": f"arn:aws:s3:::b/{n}/*"} for n in range(3000)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "bot", "policy", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(json.dumps({"Statement": statements}).encode())
    proc.stdin.close()
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141 and err == "", err


def test_a_trail_folder_made_of_links_is_followed_once_even_with_a_loop(tmp_path: Path) -> None:
    real = tmp_path / "real"
    _trail_tree(real, chunks=2)
    linked = tmp_path / "linked"
    (linked / "AWSLogs").mkdir(parents=True)
    (linked / "AWSLogs" / ACCT).symlink_to(real / "AWSLogs" / ACCT, target_is_directory=True)
    (real / "AWSLogs" / ACCT / "loop").symlink_to(real / "AWSLogs", target_is_directory=True)  # back up
    found = find_log_files([str(linked)])
    assert len(found.files) == 2 and found.unreadable == []
    done = _run("scan", str(linked), "--format", "jsonl", tmp=tmp_path)
    assert done.returncode == 0 and len(_findings(done.stdout)) == len(EXPECTED)


def test_a_folder_that_cannot_be_listed_is_said_and_fails_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, an unreadable day folder was skipped without a word (exit 0), and an unreadable trail
    folder ended in a PermissionError traceback. (Simulated: the suite may run as root, who reads all.)"""
    tree = _trail_tree(tmp_path, chunks=2)
    other_day = tree / ACCT / "CloudTrail" / "us-east-1" / "2025" / "03" / "05"
    other_day.mkdir()
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path) == str(other_day):
            raise PermissionError(13, "Permission denied", str(other_day))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setenv("DB_PATH", str(tmp_path / "index.db"))
    assert main(["scan", str(tmp_path), "--format", "jsonl", "--no-progress", "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "scanned 2 file(s)" in err and "1 file(s) could not be read" in err
    assert f"bucketwatch scan: {other_day}: cannot be read (Permission denied)" in err
