"""pytest plugin: the real mail lab as session fixtures (loaded by tests/conftest.py).

- `mail_lab`: a lab brought up once per session in a fresh temp dir on a free port base (never the
  developer's lab at 20000), taken down at the end, also after failures. Its value is a `LabEnv`
  (lab.env with attributes: `mail_lab.submission_port`, `mail_lab["LAB_SENDER"]`, `mail_lab.dir`).
- `lab_traffic`: the traffic driver's report (lab/traffic), run once per session on `mail_lab`.

Tests using them should carry `@pytest.mark.lab`. They skip, saying why, only where the lab cannot
run at all: not root, or the Debian packages are missing and cannot be installed.
Set MAILPULSE_LAB_KEEP=1 to keep the lab directory (logs) after the session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.envfile import LabEnv

REPO = Path(__file__).resolve().parents[1]
MAIL_LAB = REPO / "lab" / "mail-lab"
INSTALL_TIMEOUT_S = 900  # a cold apt install of every package; normally 0 (installed)
UP_TIMEOUT_S = 180  # includes rspamd's one-time hyperscan compile (~15 s) on a new machine
DOWN_TIMEOUT_S = 60


def mail_lab_cmd(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `lab/mail-lab ARGS` (system python3, as a user would); output captured."""
    return subprocess.run(
        [str(MAIL_LAB), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
    )


def lab_unavailable_reason() -> str | None:
    """Why the lab cannot run here at all (None if it can); installs missing packages first."""
    if os.geteuid() != 0:
        return "the mail lab needs root (Postfix with a scratch config dir, Dovecot, rspamd)"
    if shutil.which("apt-get") is None and shutil.which("postfix") is None:
        return "the mail lab needs Debian packages and there is no apt-get here"
    proc = mail_lab_cmd("install", timeout=INSTALL_TIMEOUT_S)
    if proc.returncode != 0:
        return f"mail lab packages not installable: {proc.stderr.strip()[-500:]}"
    return None


class LabHandle:
    """One lab directory started by the tests; `down()` is safe to call more than once."""

    def __init__(self, root: Path, port_base: int) -> None:
        self.root = root
        self.port_base = port_base
        self.up_report: dict[str, Any] = {}

    def up(self, *extra: str) -> dict[str, Any]:
        proc = mail_lab_cmd(
            "up",
            "--dir",
            str(self.root),
            "--port-base",
            str(self.port_base),
            "--json",
            "--no-install",
            *extra,
            timeout=UP_TIMEOUT_S,
        )
        if proc.returncode != 0:
            log = self.root / "daemons.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"mail-lab up failed:\n{proc.stderr}\n--- daemons.log ---\n{tail}")
        self.up_report = json.loads(proc.stdout.strip().splitlines()[-1])
        return self.up_report

    def down(self) -> None:
        proc = mail_lab_cmd("down", "--dir", str(self.root), timeout=DOWN_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"mail-lab down failed: {proc.stderr}")

    @property
    def env(self) -> LabEnv:
        return LabEnv.load(self.root / "lab.env")


def new_lab_dir() -> Path:
    # short path: Dovecot and Postfix put unix sockets below it (108-byte limit)
    root = Path(tempfile.mkdtemp(prefix="mplab-", dir="/tmp"))
    root.chmod(0o755)
    return root


@pytest.fixture(scope="session")
def lab_factory() -> Iterator[Any]:
    """Start extra labs (each on its own free port base); all are taken down at session end."""
    from lab.portpick import free_port_base, reap_stale, release

    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    reap_stale(log=lambda _msg: None)  # labs of sessions that were killed before their teardown
    handles: list[LabHandle] = []

    def make(*extra: str) -> LabHandle:
        root = new_lab_dir()
        handle = LabHandle(root, free_port_base(owner=root))
        handles.append(handle)
        handle.up(*extra)
        return handle

    try:
        yield make
    finally:
        errors = []
        for handle in handles:
            try:
                handle.down()
            except Exception as exc:  # keep tearing down the others
                errors.append(exc)
            release(handle.port_base)
            if not os.environ.get("MAILPULSE_LAB_KEEP"):
                shutil.rmtree(handle.root, ignore_errors=True)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def mail_lab_handle(lab_factory: Any) -> LabHandle:
    """The session lab writes every Postfix instance to one central file (LAB_POSTFIX_LOG), so tests read
    one log with every host's lines; the per-host mode (the default) has its own lab, `per_host_lab`."""
    handle: LabHandle = lab_factory("--log-mode", "central")
    return handle


@pytest.fixture(scope="session")
def per_host_lab(lab_factory: Any) -> LabEnv:
    """A second lab in the default log mode: one maillog per Postfix instance (LAB_POSTFIX_<NAME>_LOG)."""
    handle: LabHandle = lab_factory("--log-mode", "per-host")
    return handle.env


@pytest.fixture(scope="session")
def mail_lab(mail_lab_handle: LabHandle) -> LabEnv:
    """The session's mail lab, as a view of its lab.env."""
    return mail_lab_handle.env


@pytest.fixture(scope="session")
def lab_traffic(mail_lab: LabEnv) -> dict[str, Any]:
    """The traffic driver's JSON report for one run against the session lab (about 10 s)."""
    from lab.traffic import run

    report: dict[str, Any] = run(mail_lab.dir / "lab.env")
    return report
