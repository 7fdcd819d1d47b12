"""Tailing files: restart, rotation by rename and copytruncate, missing/unreadable/vanished files, bad bytes.

Every test accounts for lines exactly: what was written is what was read, once, in order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mailpulse.exporter.features import PostfixLogs
from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.pipeline import LinePipeline
from mailpulse.exporter.sources.files import FileSource


class Tail:
    """A FileSource on ``path`` whose sink collects lines, and a way to 'restart' it."""

    def __init__(self, path: Path, state: Path, start_at_end: bool = False) -> None:
        self.path, self.state, self.start_at_end = path, state, start_at_end
        self.lines: list[str] = []
        self.stats = SourceStats("test")
        self.source = self._make()

    def _make(self) -> FileSource:
        return FileSource(self.stats, str(self.path), str(self.state / "test.offset"), self.lines.extend,
                          start_at_end=self.start_at_end)  # fmt: skip

    def poll(self) -> list[str]:
        before = len(self.lines)
        while self.source.poll(max_batches=3):
            pass
        return self.lines[before:]

    def restart(self) -> None:
        self.source = self._make()


def write(path: Path, lines: list[str], mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)


def batch(prefix: str, n: int) -> list[str]:
    return [f"Nov 24 16:58:17 mail postfix/qmgr[1]: {prefix}{i:06d}: removed" for i in range(n)]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "mail.log"


@pytest.fixture
def tail(log: Path, tmp_path: Path) -> Tail:
    state = tmp_path / "state"
    state.mkdir()
    write(log, [], "w")
    return Tail(log, state)


def test_reads_new_lines_and_waits_for_a_line_to_be_finished(tail: Tail, log: Path) -> None:
    """Whole lines only: a line still being written is read once it ends."""
    write(log, batch("A", 3))
    assert batch("A", 3) == tail.poll()
    with log.open("a") as fh:
        fh.write("Nov 24 16:58:17 mail postfix/qmgr[1]: PART")
    assert [] == tail.poll()
    with log.open("a") as fh:
        fh.write("IAL: removed\n")
    assert ["Nov 24 16:58:17 mail postfix/qmgr[1]: PARTIAL: removed"] == tail.poll()
    assert tail.stats.up == 1
    assert tail.stats.lag_bytes == 0


def test_restart_reads_what_was_written_while_down_exactly_once(tail: Tail, log: Path) -> None:
    """Offsets persist: lines written while mailpulse was down are read after the restart, none twice."""
    write(log, batch("A", 100))
    assert 100 == len(tail.poll())
    write(log, batch("B", 50))
    tail.restart()
    assert batch("B", 50) == tail.poll()
    tail.restart()
    assert [] == tail.poll()
    assert batch("A", 100) + batch("B", 50) == tail.lines


@pytest.mark.parametrize("rotated_name", ["mail.log.1", "mail.log.20261124-165817"])
def test_rotation_by_rename(tail: Tail, log: Path, rotated_name: str) -> None:
    """logrotate's rename (and postfix logrotate's dated name): the old file's rest first, then the new file."""
    write(log, batch("A", 10))
    assert 10 == len(tail.poll())
    write(log, batch("B", 5))  # written, not yet read, when the file is rotated
    log.rename(log.parent / rotated_name)
    write(log, batch("C", 7), "w")
    assert batch("B", 5) + batch("C", 7) == tail.poll()
    assert {"rename": 1} == tail.stats.rotations
    write(log, batch("D", 2))
    assert batch("D", 2) == tail.poll()
    assert batch("A", 10) + batch("B", 5) + batch("C", 7) + batch("D", 2) == tail.lines


def test_rotation_by_rename_while_down(tail: Tail, log: Path) -> None:
    """Rotation during a restart loses nothing either."""
    write(log, batch("A", 4))
    tail.poll()
    write(log, batch("B", 3))
    log.rename(log.parent / "mail.log.1")
    write(log, batch("C", 2), "w")
    tail.restart()
    assert batch("B", 3) + batch("C", 2) == tail.poll()


def test_rotation_by_copytruncate(tail: Tail, log: Path) -> None:
    """copytruncate keeps the inode and shrinks the file: the copy's unread rest first, then the new lines."""
    write(log, batch("A", 10))
    assert 10 == len(tail.poll())
    write(log, batch("B", 3))
    shutil.copyfile(log, log.parent / "mail.log.1")
    with log.open("r+") as fh:
        fh.truncate(0)
    write(log, batch("C", 4))
    assert batch("B", 3) + batch("C", 4) == tail.poll()
    assert {"truncate": 1} == tail.stats.rotations


def test_unfinished_last_line_of_a_rotated_file_is_not_lost(tail: Tail, log: Path) -> None:
    """A file rotated away in the middle of a line: the fragment is read (it will never be finished)."""
    write(log, batch("A", 1))
    tail.poll()
    with log.open("a") as fh:
        fh.write("Nov 24 16:58:17 mail postfix/qmgr[1]: TRUNC")
    log.rename(log.parent / "mail.log.1")
    write(log, batch("C", 1), "w")
    assert ["Nov 24 16:58:17 mail postfix/qmgr[1]: TRUNC", *batch("C", 1)] == tail.poll()


def test_start_at_end_skips_history_but_not_what_follows(log: Path, tmp_path: Path) -> None:
    """A first start without offsets begins at the end of the file (the default for a daemon)."""
    write(log, batch("OLD", 5), "w")
    state = tmp_path / "s2"
    state.mkdir()
    t = Tail(log, state, start_at_end=True)
    assert [] == t.poll()
    write(log, batch("NEW", 2))
    assert batch("NEW", 2) == t.poll()


def test_missing_then_created(tmp_path: Path) -> None:
    """A missing file is a metric and a retry, not a crash; reading starts when it appears."""
    state = tmp_path / "s"
    state.mkdir()
    log = tmp_path / "later.log"
    t = Tail(log, state)
    assert [] == t.poll()
    assert t.stats.up == 0
    assert {"missing": 1} == t.stats.errors
    t.poll()
    assert {"missing": 1} == t.stats.errors  # one error per change of state, not per poll
    write(log, batch("A", 2), "w")
    assert batch("A", 2) == t.poll()
    assert t.stats.up == 1


def test_vanished_file(tail: Tail, log: Path) -> None:
    """A file that disappears after being read is 'vanished' until it comes back."""
    write(log, batch("A", 2))
    tail.poll()
    log.unlink()
    assert [] == tail.poll()
    assert tail.stats.up == 0
    assert {"vanished": 1} == tail.stats.errors
    write(log, batch("B", 1), "w")
    assert batch("B", 1) == tail.poll()


def test_a_directory_is_a_read_error(tmp_path: Path) -> None:
    """Any OS error while reading is contained in the source."""
    state = tmp_path / "s"
    state.mkdir()
    (tmp_path / "dir.log").mkdir()
    t = Tail(tmp_path / "dir.log", state)
    assert [] == t.poll()
    assert t.stats.up == 0
    assert {"read_error": 1} == t.stats.errors


UNREADABLE_CHILD = """
import json, sys
from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.sources.files import FileSource
stats = SourceStats("t")
lines = []
src = FileSource(stats, sys.argv[1], sys.argv[2], lines.extend, start_at_end=False)
src.poll()
print(json.dumps({"up": stats.up, "errors": stats.errors, "lines": len(lines)}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the reader as another user")
def test_unreadable_file(tmp_path: Path) -> None:
    """A file the daemon's user may not read (0600 root) is 'unreadable': checked as user nobody, for real."""
    log = tmp_path / "secret.log"
    write(log, batch("A", 1), "w")
    log.chmod(0o600)
    tmp_path.chmod(0o755)
    state = Path("/tmp") / f"mp-unreadable-{os.getpid()}"
    state.mkdir(exist_ok=True)
    state.chmod(0o777)
    try:
        proc = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c", UNREADABLE_CHILD,
             str(log), str(state / "t.offset")],
            capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2], check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    assert {"up": 0, "errors": {"unreadable": 1}, "lines": 0} == json.loads(proc.stdout.splitlines()[-1])


def test_bad_bytes_are_counted_as_unparsed_and_reading_goes_on(tail: Tail, log: Path) -> None:
    """Garbage, NUL bytes, invalid UTF-8, a 64 KB line and a truncated line: counted, nothing stops."""
    stats = SourceStats("bad")
    postfix = PostfixLogs()
    pipeline = LinePipeline(stats, list(postfix.formats(postfix.absent())), threading.Lock())
    source = FileSource(stats, str(log), str(log.parent / "bad.offset"), pipeline.feed, start_at_end=False)
    good = batch("G", 2)
    with log.open("ab") as fh:
        fh.write((good[0] + "\n").encode())
        fh.write(b"\x00\x01\x02\xff\xfe binary junk\n")
        fh.write(b"Nov 24 16:58:17 mail postfix/smtpd[1]: caf\xe9 invalid utf-8 \xc3\x28\n")
        fh.write(b"Nov 24 16:58:17 mail postfix/smtpd[1]: " + b"x" * 65536 + b"\n")
        fh.write(b"Nov 24 16:58:17 mail postfix/qmgr[1]: 3mPVKl0Mhjz7sXv: to=<56597@con\n")
        fh.write((good[1] + "\n").encode())
    while source.poll():
        pass
    assert 2 == stats.parsed
    assert 4 == stats.unparsed
    assert 0 == stats.foreign
    assert stats.bytes_read == log.stat().st_size
