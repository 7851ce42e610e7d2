"""Many processes, one database (issue 8, defect 9): four started at once on a fresh DB_PATH, ten times."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bot.store.database import MIGRATIONS, Store

ROOT = Path(__file__).resolve().parents[1]
# What a process does at start (`run`, `poll --once`, a replica): open the store (WAL + migrations),
# then write at once: an outbox item, a seen event and an audit row, each a writer racing the others.
OPENER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.001)
    from bot.store.database import Store
    store = Store(sys.argv[1])
    for n in range(5):
        with store.atomic() as db:
            db.execute("INSERT INTO audit (at, user, action, outcome) VALUES (?, ?, 'start', 'ok')",
                       [str(time.time()), sys.argv[3]])
        store.db.table("seen_events").insert({"event_id": f"{sys.argv[3]}-{n}", "seen_at": "now"})
        store.db.execute("UPDATE outbox SET attempts = attempts + 1").connection.commit()
    print("ok")
    """
)


def test_four_processes_on_a_fresh_database_ten_times_none_fails(tmp_path: Path) -> None:
    failures: list[str] = []
    for round_ in range(10):
        db = tmp_path / f"round{round_}" / "bucketwatch.db"
        go = tmp_path / f"go{round_}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPENER, str(db), str(go), f"p{n}"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for n in range(4)
        ]
        time.sleep(0.5)  # every interpreter imported and spinning on the start line
        go.touch()
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            if proc.returncode != 0 or out.strip() != "ok":
                failures.append(err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}")
        store = Store(db)
        applied = [m.name for m in MIGRATIONS.applied(store.db)]
        assert applied == [m.name for m in MIGRATIONS._migrations], f"round {round_}: {applied}"
        assert store.db.table("audit").count == 4 * 5
        assert store.db.table("seen_events").count == 4 * 5
        store.close()
    assert failures == []
