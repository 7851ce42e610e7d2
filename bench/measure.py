"""Shared helpers for the benchmarks: run a command while sampling its process tree, repeat, describe the machine."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Run:
    """One timed run: wall seconds, peak memory of the whole process tree, and what it printed."""

    wall: float
    peak_rss_sum: int  # bytes: the largest sum of RSS over the tree seen at one sample (counts shared pages twice)
    peak_rss_max: int  # bytes: the largest single process seen
    peak_pss_sum: int  # bytes: the same sum as proportional set size (shared pages split between sharers)
    stdout: bytes = b""
    stderr: bytes = b""
    returncode: int = 0
    cpu: float = 0.0  # user + system seconds of the whole tree (children count once their parent waited for them)


def _tree(root: int) -> list[int]:
    """`root` and its descendants, from the parent ids in /proc/*/stat (no /proc/…/children here)."""
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after its last ")" are fixed.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(kids.get(pid, ()))
    return pids


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def run_measured(cmd: list[str] | str, *, shell: bool = False, cwd: Path | None = None,
                 env: dict[str, str] | None = None, interval: float = 0.02) -> Run:  # fmt: skip
    """Run `cmd` to completion, sampling RSS and PSS of it and all its descendants every `interval` s."""
    peak = {"sum": 0, "max": 0, "pss": 0}
    done = threading.Event()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, shell=shell, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def sample() -> None:
        while not done.is_set():
            pids = _tree(proc.pid)
            rss = [_rss(p) for p in pids]
            peak["sum"] = max(peak["sum"], sum(rss))
            peak["max"] = max(peak["max"], max(rss, default=0))
            peak["pss"] = max(peak["pss"], sum(_pss(p) for p in pids))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - began
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, peak["sum"], peak["max"], peak["pss"], stdout, stderr, proc.returncode, cpu)


@dataclass
class Series:
    """Repeated measurements of one figure: best and median are what the docs report."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def best(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = os.sysconf("SC_PHYS_PAGES") * PAGE
    except (ValueError, OSError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_before": os.getloadavg()[0],
    }


def mb(n: float) -> str:
    return f"{n / 2**20:.0f} MB"
