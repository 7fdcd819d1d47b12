"""Readiness without touching the services under test: `ss` for listening sockets, rspamd's /ping.

A TCP connect to an SMTP or IMAP port would add "connect from/lost connection" and
"Disconnected (no auth attempts)" lines to the very logs the parsers are tested on.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

_PID_RE = re.compile(r"pid=(\d+)")


@dataclass(frozen=True)
class Listener:
    proto: str  # tcp | udp
    address: str
    port: int
    pids: tuple[int, ...]


def _split_addr(local: str) -> tuple[str, int]:
    addr, _, port = local.rpartition(":")
    return addr.strip("[]").split("%")[0], int(port) if port.isdigit() else 0


def listeners(with_pids: bool = False) -> list[Listener]:
    """Every listening TCP socket and bound UDP socket on this host."""
    flags = "-Hltun" + ("p" if with_pids else "")
    out = subprocess.run(["ss", flags], capture_output=True, text=True, check=False).stdout
    found = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 6:
            continue
        addr, port = _split_addr(cols[4])
        pids = tuple(int(p) for p in _PID_RE.findall(" ".join(cols[6:])))
        found.append(Listener(cols[0], addr, port, pids))
    return found


def tcp_ports() -> set[int]:
    return {lst.port for lst in listeners() if lst.proto == "tcp"}


def ports_in_use(ports: set[int]) -> set[int]:
    """Which of `ports` anything on this host listens on (any address, TCP or UDP)."""
    return {lst.port for lst in listeners() if lst.port in ports}


def rspamd_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=timeout) as resp:
            return bool(resp.read().strip() == b"pong")
    except OSError:
        return False


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Poll `check` until it is true; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
