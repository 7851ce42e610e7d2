"""Many processes, one database (issue 8, defect 9): four started at once on a fresh DB_PATH, ten times."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from bot.store.database import MIGRATIONS, Store

ROOT = Path(__file__).resolve().parents[1]
# What a process does at start (`run`, `poll --once`, a replica): open the store (WAL + migrations),
# then write at once: an outbox item, a seen event and an audit row, each a writer racing the others.
# The same four processes serve every round: each imports once, then blocks on its stdin until the
# round's fresh DB_PATH arrives, so the four open it within microseconds of each other (re-importing
# for every round cost ~0.25 s of CPU a process and raced less tightly).
OPENER = textwrap.dedent(
    """
    import sys, time, traceback
    from bot.store.database import Store
    print("ready", flush=True)
    for line in sys.stdin:
        path, name = line.split()
        try:
            store = Store(path)
            for n in range(5):
                with store.atomic() as db:
                    db.execute("INSERT INTO audit (at, user, action, outcome) VALUES (?, ?, 'start', 'ok')",
                               [str(time.time()), name])
                store.db.table("seen_events").insert({"event_id": f"{name}-{n}", "seen_at": "now"})
                store.db.execute("UPDATE outbox SET attempts = attempts + 1").connection.commit()
            store.close()
            print("ok", flush=True)
        except Exception as error:
            print("failed: " + traceback.format_exception_only(error)[-1].strip(), flush=True)
    """
)


def test_four_processes_on_a_fresh_database_ten_times_none_fails(tmp_path: Path) -> None:
    failures: list[str] = []
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:  # every interpreter imported and waiting on the start line
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for round_ in range(10):
            db = tmp_path / f"round{round_}" / "bucketwatch.db"
            for n, proc in enumerate(procs):
                assert proc.stdin is not None
                proc.stdin.write(f"{db} p{n}\n")
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.flush()
            for proc in procs:
                assert proc.stdout is not None
                answer = proc.stdout.readline().strip()
                if answer != "ok":
                    failures.append(f"round {round_}: {answer or 'exit ' + str(proc.poll())}")
            store = Store(db)
            applied = [m.name for m in MIGRATIONS.applied(store.db)]
            assert applied == [m.name for m in MIGRATIONS._migrations], f"round {round_}: {applied}"
            assert store.db.table("audit").count == 4 * 5
            assert store.db.table("seen_events").count == 4 * 5
            store.close()
    finally:
        for proc in procs:
            _, err = proc.communicate(timeout=60)  # closes stdin: each process ends its loop
            if proc.returncode != 0:
                failures.append(err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}")
    assert failures == []
