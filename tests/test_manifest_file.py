"""The committed slack-manifest.yaml is what `python -m bot manifest` prints for the defaults."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_committed_manifest_matches_the_generator(tmp_path: Path) -> None:
    committed = "\n".join(
        line for line in (ROOT / "slack-manifest.yaml").read_text().splitlines() if not line.startswith("#")
    )
    printed = subprocess.run(
        [sys.executable, "-m", "bot", "manifest"], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    ).stdout
    assert json.loads(committed) == json.loads(printed)
