"""Pick a port base nobody uses, for test sessions and fixture captures next to a developer's lab.

A claim file per base (O_EXCL, holding the claimer's pid) keeps two concurrent pytest sessions
from picking the same base between the check and the lab's start.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from lab.layout import PORT_SPAN
from lab.procs import alive
from lab.ready import ports_in_use

CLAIMS = Path("/tmp/mailpulse-lab-ports")
# Above the default base (20000), below Linux's ephemeral range (32768+), where an outgoing
# connection's local port could otherwise make a daemon's bind fail.
CANDIDATES = range(20100, 32700, PORT_SPAN)


def _claim(base: int) -> bool:
    CLAIMS.mkdir(mode=0o755, exist_ok=True)
    path = CLAIMS / str(base)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            holder = int(path.read_text().strip() or 0)
        except (OSError, ValueError):
            holder = 0
        if alive(holder):
            return False
        path.unlink(missing_ok=True)  # stale claim of a dead process
        return _claim(base)
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    return True


def release(base: int) -> None:
    (CLAIMS / str(base)).unlink(missing_ok=True)


def free_port_base(rng: random.Random | None = None) -> int:
    """A base whose 100 ports are all unused right now, claimed for this process."""
    candidates = list(CANDIDATES)
    (rng or random.Random()).shuffle(candidates)
    for base in candidates:
        if not ports_in_use(set(range(base, base + PORT_SPAN))) and _claim(base):
            return base
    raise RuntimeError(f"no free port base in {CANDIDATES.start}..{CANDIDATES.stop}")
