"""Pick a port base nobody uses, for test sessions and fixture captures next to a developer's lab.

A claim file per base (O_EXCL, holding the claimer's pid and lab directory) keeps two concurrent
pytest sessions from picking the same base between the check and the lab's start, and lets a later
session take down the lab of a session that was killed before its teardown.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from lab.layout import PORT_SPAN
from lab.procs import alive
from lab.ready import ports_in_use

CLAIMS = Path("/tmp/mailpulse-lab-ports")
STALE_DIR_PREFIX = "mplab-"  # only lab dirs made by tests/captures are deleted when reaped
# Above the default base (20000), below Linux's ephemeral range (32768+), where an outgoing
# connection's local port could otherwise make a daemon's bind fail.
CANDIDATES = range(20100, 32700, PORT_SPAN)


def _read_claim(path: Path) -> tuple[int, Path | None]:
    try:
        pid, _, root = path.read_text().partition("\n")
        return int(pid.strip() or 0), Path(root.strip()) if root.strip() else None
    except (OSError, ValueError):
        return 0, None


def _claim(base: int, owner: Path | None) -> bool:
    CLAIMS.mkdir(mode=0o755, exist_ok=True)
    path = CLAIMS / str(base)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False  # held, or stale: reap_stale() cleans those up first
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n{owner or ''}\n")
    return True


def reap_stale(log: Callable[[str], None] = print) -> list[Path]:
    """Take down the labs of claimers that died (e.g. a killed pytest); return their directories."""
    from lab.lifecycle import down

    reaped = []
    for path in sorted(CLAIMS.glob("*")) if CLAIMS.is_dir() else []:
        pid, root = _read_claim(path)
        if alive(pid):
            continue
        if root is not None and root.is_dir():
            log(f"taking down the stale test lab {root} (claimer {pid} is gone)")
            down(root, log=log)
            if root.name.startswith(STALE_DIR_PREFIX):
                shutil.rmtree(root, ignore_errors=True)
            reaped.append(root)
        path.unlink(missing_ok=True)
    return reaped


def release(base: int) -> None:
    (CLAIMS / str(base)).unlink(missing_ok=True)


def free_port_base(owner: Path | None = None, rng: random.Random | None = None) -> int:
    """A base whose 100 ports are all unused right now, claimed for this process (and `owner`,
    the lab directory that will use it)."""
    candidates = list(CANDIDATES)
    (rng or random.Random()).shuffle(candidates)
    for base in candidates:
        if not ports_in_use(set(range(base, base + PORT_SPAN))) and _claim(base, owner):
            return base
    raise RuntimeError(f"no free port base in {CANDIDATES.start}..{CANDIDATES.stop}")
