"""`mailpulse run` as a real process: serves /metrics, reloads on SIGHUP, stops cleanly on SIGTERM, and
after a restart counts exactly the lines written while it was down."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, scrape, value, wait_for

ROOT = Path(__file__).resolve().parents[2]


def lines(prefix: str, n: int) -> str:
    return "".join(f"Nov 24 16:58:17 mail postfix/qmgr[1]: {prefix}{i:06d}: removed\n" for i in range(n))


class Daemon:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(self.config)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip

    def stop(self) -> tuple[int, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, out.decode(errors="replace")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Daemon, Path, Path, int]]:
    port = free_port()
    log = tmp_path / "mail.log"
    log.write_text(lines("OLD", 3))
    config = tmp_path / "mailpulse.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nhttp: {{listen: '127.0.0.1:{port}'}}\n"
        f"log: {{format: json}}\nsources:\n  - {{name: mail, path: {log}, poll_interval: 0.2s}}\n"
    )
    daemon = Daemon(config)
    yield daemon, config, log, port
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.proc.kill()
        daemon.proc.wait()


def test_run_reload_stop_restart(setup: tuple[Daemon, Path, Path, int]) -> None:
    """The whole lifecycle of the daemon, with exact line accounting."""
    daemon, config, log, port = setup
    daemon.start()
    wait_for(lambda: value(scrape(port), "mailpulse_log_source_up", source="mail") == 1)
    # default start_at: end -- the three old lines are history, not counted
    with log.open("a") as fh:
        fh.write(lines("A", 10))
    wait_for(lambda: value(scrape(port), "postfix_qmgr_messages_removed_total") == 10)

    # a broken config on SIGHUP: kept running with the old one, and it says so
    good = config.read_text()
    config.write_text(good + "bogus_key: 1\n")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: value(scrape(port), "mailpulse_config_last_reload_successful") == 0)
    with log.open("a") as fh:
        fh.write(lines("B", 5))
    wait_for(lambda: value(scrape(port), "postfix_qmgr_messages_removed_total") == 15)

    # a fixed config on SIGHUP: reloaded, counters kept
    config.write_text(good)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: value(scrape(port), "mailpulse_config_last_reload_successful") == 1)
    assert 15 == value(scrape(port), "postfix_qmgr_messages_removed_total")

    code, output = daemon.stop()
    assert 0 == code, output
    assert '"event": "mailpulse stopped"' in output

    # while down: 7 lines; after the restart exactly those 7 are counted
    with log.open("a") as fh:
        fh.write(lines("C", 7))
    daemon.start()
    wait_for(lambda: value(scrape(port), "postfix_qmgr_messages_removed_total") == 7)
    time.sleep(1.0)
    assert 7 == value(scrape(port), "postfix_qmgr_messages_removed_total")
    assert 22 + 3 == len(log.read_text().splitlines())
    code, _ = daemon.stop()
    assert 0 == code


def test_bad_config_exits_78_with_the_key_path(tmp_path: Path) -> None:
    """`mailpulse run` refuses a bad config before doing anything."""
    config = tmp_path / "bad.yaml"
    config.write_text("sources:\n  - name: x\n    type: file\n")
    proc = subprocess.run([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert 78 == proc.returncode
    assert "sources[0].path: required key is missing" in proc.stderr


def test_port_in_use_is_a_clean_error(tmp_path: Path) -> None:
    """A listen address that is taken gives a log line and exit status 1, not a traceback."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text(f"state_dir: {tmp_path}\nhttp: {{listen: '127.0.0.1:{port}'}}\n"
                          f"sources: [{{name: m, path: {tmp_path / 'x.log'}}}]\n")  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False, env={**os.environ})  # fmt: skip
    assert 1 == proc.returncode
    assert "cannot listen" in proc.stdout + proc.stderr
