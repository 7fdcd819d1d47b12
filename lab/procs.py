"""Processes of a lab: starting daemons detached, pid files, and finding strays by lab directory.

`down` stops daemons by pid file first. Leftovers are found by the exact lab directory, never by
process name: each daemon gets MAILPULSE_LAB_DIR=<lab dir> in its environment (Postfix and Dovecot
pass it on via import_environment); daemons that rewrite their process title (rspamd, redis,
Dovecot) clobber that memory, so a daemon binary whose working directory or an open file lies
below the lab directory counts too, and so do the descendants of anything found.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from lab.layout import MARKER_ENV


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip().split()
    except (FileNotFoundError, PermissionError):
        return None
    return int(text[0]) if text and text[0].isdigit() else None


def alive(pid: int | None) -> bool:
    """True if the process exists and is not a zombie (no real init reaps them quickly here)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def pid_from(path: Path) -> int | None:
    """The pid in `path` if that process is alive."""
    pid = read_pid(path)
    return pid if alive(pid) else None


# Binaries a lab runs; path evidence alone never selects anything else (e.g. a shell cd'ed into DIR).
DAEMON_EXE_PREFIXES = ("/usr/sbin/", "/usr/bin/rspamd", "/usr/bin/redis", "/usr/lib/postfix/", "/usr/lib/dovecot/")


def _under(link: str, root: Path) -> bool:
    return link == str(root) or link.startswith(f"{root}/")


def _path_evidence(proc: Path, root: Path) -> bool:
    try:
        if _under(os.readlink(proc / "cwd"), root):
            return True
        return any(_under(os.readlink(fd), root) for fd in (proc / "fd").iterdir())
    except OSError:
        return False


def lab_pids(root: Path) -> list[int]:
    """Every live process of the lab in `root`: marker, or daemon binary with path evidence, plus
    their descendants."""
    root = Path(root).absolute()
    needle = f"{MARKER_ENV}={root}".encode()
    me = os.getpid()
    parents: dict[int, int] = {}
    found: set[int] = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me or not alive(int(d.name)):
            continue
        pid = int(d.name)
        try:
            parents[pid] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            exe = os.readlink(d / "exe")
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") or (exe.startswith(DAEMON_EXE_PREFIXES) and _path_evidence(d, root)):
            found.add(pid)
    grew = True
    while grew:  # add descendants
        new = {pid for pid, ppid in parents.items() if ppid in found and pid not in found}
        found |= new
        grew = bool(new)
    return sorted(found)


def daemon_env(root: Path) -> dict[str, str]:
    """A small, predictable environment for daemons, with the lab marker."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        MARKER_ENV: str(root),
    }


def spawn(cmd: list[str], root: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a self-daemonizing command; its stdio goes to `log`, never to our caller's pipes
    (a daemon holding the caller's stdout makes `mail-lab up | tail` hang forever)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", env=daemon_env(root), start_new_session=True
        )


def signal_all(pids: Iterable[int], sig: int = signal.SIGTERM) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until every pid is gone; return those still alive after `timeout`."""
    left = [p for p in pids if alive(p)]
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def terminate(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """SIGTERM, wait, then SIGKILL what is left; return pids that survived even that."""
    pids = list(pids)
    signal_all(pids, signal.SIGTERM)
    left = wait_gone(pids, timeout)
    if left:
        signal_all(left, signal.SIGKILL)
        left = wait_gone(left, 2.0)
    return left
