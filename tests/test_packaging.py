"""The production install carries no stand-ins, no demo and no moto, and says how to get the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_runtime_only_and_demo_says_where_it_is(tmp_path: Path) -> None:
    # With the venv's own setuptools (the dev extra pins it): no isolated build environment to fill.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("bucketwatch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if "/" in n and not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"bot", "handlers", "detections"}
    assert not [n for n in names if "standin" in n or n.startswith("demo/")]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert requires and not [r for r in requires if "moto" in r]

    # Installed from that wheel alone (no source tree on the path), `demo` explains instead of failing.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-m", "bot", "demo"], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=60)
    assert run.returncode == 2
    assert "ships with the source tree" in run.stderr and "make demo" in run.stderr
