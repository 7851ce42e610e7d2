"""A TCP port for a server a test starts in another process (`PORT=…`).

Binding port 0 and handing the number over is a race under pytest-xdist: the moment it is released, the
kernel may give the same number to any other worker's port-0 listener (the Slack stand-in, moto's
server), and the test then talks to the wrong server. Ports below the kernel's ephemeral range are never
handed out for port 0, so picking one there (at random, checked free) leaves only the far smaller chance
that two tests pick the same number at once, which a bound check makes a clear failure, not a wrong answer.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; macOS starts at 49152, so below 32768 is outside both


def unused_port() -> int:
    """A free port on 127.0.0.1 that no port-0 listener can be given while the caller's server starts."""
    low, high = 20000, max(20001, min(_ephemeral_start(), 32768) - 1)
    for _ in range(200):
        port = random.randint(low, high)  # spreading tests over ports, not a secret
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone holds it: try another
        return port
    raise RuntimeError(f"no free port between {low} and {high}")
