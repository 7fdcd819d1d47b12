"""The file source's saved position under damage: a state dir that cannot be written (issue 9 A1), files
truncated or replaced behind its back (A5), corrupt state files (A6), and CRLF line ends.

Full disks and read-only state dirs are real: a tmpfs of a few KB filled up, a read-only bind mount (both
need root; chmod does not stop root, so there is no unprivileged way to make these failures real).
"""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import io
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mailpulse.exporter.features import PostfixLogs
from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.pipeline import LinePipeline
from mailpulse.exporter.scan import read_lines
from mailpulse.exporter.sources.files import DEFAULT_ROTATED_PATTERNS, FileSource
from mailpulse.exporter.sources.lines import split_lines
from mailpulse.exporter.sources.position import HEAD_BYTES, Position, format_position, load_position

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs or a read-only bind mount")


def batch(prefix: str, n: int) -> list[str]:
    return [f"Nov 24 16:58:17 mail postfix/qmgr[1]: {prefix}{i:06d}: removed" for i in range(n)]


def write(path: Path, lines: list[str], mode: str = "a", end: str = "\n") -> None:
    with path.open(mode, encoding="utf-8", newline="") as fh:
        fh.writelines(line + end for line in lines)


class Counted:
    """A FileSource feeding the real Postfix pipeline, so counters (not just lines) can be checked."""

    def __init__(self, log: Path, offset: Path, start_at_end: bool = False, batch_bytes: int = 1 << 20) -> None:
        self.log, self.offset, self.start_at_end, self.batch_bytes = log, offset, start_at_end, batch_bytes
        self.stats = SourceStats("mail")
        self.postfix = PostfixLogs()
        formats = self.postfix.formats(self.postfix.absent())
        self.pipeline = LinePipeline(self.stats, list(formats), threading.Lock())
        self.lines: list[str] = []
        self.source = self.make()

    def make(self) -> FileSource:
        def sink(lines: list[str]) -> None:
            self.lines.extend(lines)
            self.pipeline.feed(lines)

        return FileSource(self.stats, str(self.log), str(self.offset), sink,  # type: ignore[arg-type]
                          start_at_end=self.start_at_end, batch_bytes=self.batch_bytes)  # fmt: skip

    def poll(self, max_batches: int = 3) -> list[str]:
        before = len(self.lines)
        while self.source.poll(max_batches=max_batches):
            pass
        return self.lines[before:]

    def removed(self) -> float:
        return self.postfix.aggregator.values["postfix_qmgr_messages_removed_total"].get((), 0)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "mail.log"
    path.write_text("")
    return path


# -- A1: the position cannot be saved ---------------------------------------------------------------------------
@contextlib.contextmanager
def mounted(target: Path, *args: str) -> Iterator[Path]:
    target.mkdir(exist_ok=True)
    proc = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


@contextlib.contextmanager
def full_disk(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A 64 KB tmpfs: (the state dir in it, a filler file that, while present, leaves no free byte)."""
    with mounted(tmp_path / "tiny", "-t", "tmpfs", "-o", "size=64k", "tmpfs") as mnt:
        filler = mnt / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"x" * 1024)
                fh.flush()
        yield mnt, filler


def test_full_disk_does_not_recount_and_degrades(log: Path, tmp_path: Path) -> None:
    """A full disk: every line is counted exactly once across many polls, the condition is `state_write`
    (not `unreadable`), the source is down (what /health reads), and it recovers when space is freed."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    with full_disk(tmp_path) as (state, filler):
        src = Counted(log, state / "mail.offset")
        written = 0
        for i in range(40):  # 40 polls, new lines before each: nothing may be counted twice
            write(log, batch(f"A{i:02d}", 25))
            written += 25
            src.poll()
            assert written == src.removed()
        assert written == len(src.lines) == src.stats.parsed
        assert {"state_write": 1} == src.stats.errors
        assert 0 == src.stats.up
        assert log.stat().st_size == src.stats.unsaved_bytes  # all of it: the state never got written
        assert not (state / "mail.offset").exists()
        assert not (state / "mail.offset.tmp").exists()

        filler.unlink()
        write(log, batch("B", 5))
        src.poll()
        assert written + 5 == src.removed()
        assert 1 == src.stats.up
        assert 0 == src.stats.unsaved_bytes
        saved = load_position(str(state / "mail.offset"))
        assert saved is not None
        assert log.stat().st_size == saved.offset
        src.source = src.make()  # a restart reads nothing again
        assert [] == src.poll()


@ROOT_ONLY
def test_read_only_state_dir_and_reload_do_not_recount(log: Path, tmp_path: Path) -> None:
    """A state dir remounted read-only after a good start: later batches are counted once, a source rebuilt
    on the same state file (a config reload) continues from memory, and a remount read-write recovers."""
    state = tmp_path / "state"
    state.mkdir()
    src = Counted(log, state / "mail.offset")
    write(log, batch("A", 10))
    src.poll()
    with mounted(state, "--bind", str(state)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(state)], check=True)
        for i in range(20):
            write(log, batch(f"B{i:02d}", 10))
            src.poll()
        assert 210 == src.removed()
        assert {"state_write": 1} == src.stats.errors
        assert 0 == src.stats.up
        src.source = src.make()  # SIGHUP rebuilds the source: it must not go back to the stale state file
        for _ in range(5):
            src.poll()
        assert 210 == src.removed()
        assert {"state_write": 1} == src.stats.errors  # the rebuilt source knows it is still unsaved
        subprocess.run(["mount", "-o", "remount,bind,rw", str(state)], check=True)
        src.poll()
        assert 1 == src.stats.up
        assert 0 == src.stats.unsaved_bytes
    saved = load_position(str(state / "mail.offset"))
    assert saved is not None
    assert log.stat().st_size == saved.offset
    assert 210 == src.removed() == len(src.lines)


def test_daemon_health_degrades_while_the_state_disk_is_full(tmp_path: Path) -> None:
    """The daemon with its state dir on a full disk: /health says 503, metrics say state_write, and the
    counter matches the lines written after many polls."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    from tests.helpers import free_port, scrape, value, wait_for
    from tests.unit.test_daemon import Daemon

    with full_disk(tmp_path) as (state, filler):
        filler.unlink()  # room to start (the offsets dir, the first position), then the disk fills
        port = free_port()
        log = tmp_path / "mail.log"
        log.write_text("")
        config = tmp_path / "mailpulse.yaml"
        config.write_text(f"state_dir: {state}\nhttp: {{listen: '127.0.0.1:{port}'}}\nlog: {{format: json}}\n"
                          f"sources:\n  - {{name: mail, path: {log}, poll_interval: 0.1s}}\n")  # fmt: skip
        daemon = Daemon(config)
        daemon.start()
        try:
            wait_for(lambda: value(scrape(port), "mailpulse_log_source_up", source="mail") == 1)
            with contextlib.suppress(OSError), filler.open("wb") as fh:
                while True:
                    fh.write(b"x" * 1024)
                    fh.flush()
            write(log, batch("A", 30))
            wait_for(lambda: value(scrape(port), "mailpulse_log_source_errors_total", kind="state_write") == 1)
            for _ in range(10):  # ~ 10 polls apart: the count stays exact
                write(log, batch("B", 3))
                wait_for(lambda: value(scrape(port), "mailpulse_log_lag_bytes", source="mail") == 0)
            wait_for(lambda: value(scrape(port), "postfix_qmgr_messages_removed_total") == 60)
            samples = scrape(port)
            assert 60 == value(samples, "postfix_qmgr_messages_removed_total")
            assert 0 == value(samples, "mailpulse_log_source_up", source="mail")
            assert 0 == value(samples, "mailpulse_log_source_errors_total", kind="unreadable")
            assert 0 < value(samples, "mailpulse_log_unsaved_bytes", source="mail")
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
            assert 503 == err.value.code
            filler.unlink()
            wait_for(lambda: value(scrape(port), "mailpulse_log_source_up", source="mail") == 1)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                assert 200 == resp.status
        finally:
            code, out = daemon.stop()
        assert 0 == code, out


# -- A5: truncated, replaced, compressed --------------------------------------------------------------------------
def test_copytruncate_while_down_and_regrown_past_the_offset(log: Path, tmp_path: Path) -> None:
    """copytruncate while mailpulse is down, and the new file already longer than the saved offset: the
    copy's unread rest is read, then the new file from 0; nothing lost, nothing twice."""
    src = Counted(log, tmp_path / "mail.offset")
    write(log, batch("A", 5))
    src.poll()
    write(log, batch("B", 3))  # unread when the file is copied and truncated
    shutil.copyfile(log, log.parent / "mail.log.1")
    with log.open("r+") as fh:
        fh.truncate(0)
    write(log, batch("C", 20))  # longer than the offset: size alone does not see the truncation
    assert log.stat().st_size > load_position(str(src.offset)).offset  # type: ignore[union-attr]
    src.source = src.make()
    assert batch("B", 3) + batch("C", 20) == src.poll()
    assert {"truncate": 1} == src.stats.rotations
    assert 0 == src.stats.lost_bytes
    assert 28 == src.removed()


def test_truncated_and_regrown_without_a_copy_counts_certain_loss(log: Path, tmp_path: Path) -> None:
    """Truncated (no copy anywhere) and regrown past the offset between two polls: the new content is read
    from 0, and the bytes the source knew were there but had not read are counted as lost."""
    src = Counted(log, tmp_path / "mail.offset", batch_bytes=200)
    write(log, batch("A", 10))
    src.source.poll(max_batches=2)  # reads some lines, knows the file is longer
    pos = load_position(str(src.offset))
    assert pos is not None
    assert pos.size > pos.offset
    with log.open("r+") as fh:
        fh.truncate(0)
    write(log, batch("C", 30))
    src.poll()
    assert src.lines[-30:] == batch("C", 30)
    assert pos.size - pos.offset == src.stats.lost_bytes
    assert {"truncate": 1} == src.stats.rotations


def test_replaced_in_place_is_detected_by_its_first_bytes(log: Path, tmp_path: Path) -> None:
    """Same inode, same or larger size, different content (what a delete + recreate that gets the inode back
    looks like): the first-bytes fingerprint sees it and the new content is read from 0."""
    src = Counted(log, tmp_path / "mail.offset")
    write(log, batch("A", 10))
    src.poll()
    inode = log.stat().st_ino
    with log.open("r+b") as fh:  # rewrite in place: same inode, new content, longer
        fh.write("".join(line + "\n" for line in batch("Z", 25)).encode())
    assert inode == log.stat().st_ino
    assert batch("Z", 25) == src.poll()
    assert {"truncate": 1} == src.stats.rotations


def test_delete_and_recreate_with_inode_reuse(log: Path, tmp_path: Path) -> None:
    """A real delete + recreate between polls that gets the old inode back (tried until the file system
    reuses it): detected, the new file read from 0."""
    src = Counted(log, tmp_path / "mail.offset")
    write(log, batch("A", 10))
    src.poll()
    old = log.stat().st_ino
    for attempt in range(50):
        log.unlink()
        write(log, batch(f"N{attempt:02d}", 12), "w")
        if log.stat().st_ino == old:
            break
    else:
        pytest.skip("this file system did not reuse the inode")
    assert batch(f"N{attempt:02d}", 12) == src.poll()
    assert 1 == sum(src.stats.rotations.values())
    assert 22 == src.removed()


@pytest.mark.parametrize("rotated", ["mail.log.1.gz", "mail.log-20261124.gz", "mail.log.20261124-165817.gz"])
def test_rename_and_immediate_gzip(log: Path, tmp_path: Path, rotated: str) -> None:
    """Rename + compression at once (no delaycompress): the unread rest is read from the .gz, labelled
    rename_gzip, nothing lost."""
    src = Counted(log, tmp_path / "mail.offset")
    write(log, batch("A", 10))
    src.poll()
    write(log, batch("B", 4))
    # logrotate's order: rename, create the new file, compress the renamed one, remove it
    renamed = log.rename(log.parent / "mail.log.rotating")
    write(log, batch("C", 3), "w")
    with renamed.open("rb") as plain, gzip.open(log.parent / rotated, "wb") as gz:
        shutil.copyfileobj(plain, gz)
    renamed.unlink()
    assert batch("B", 4) + batch("C", 3) == src.poll()
    assert {"rename_gzip": 1} == src.stats.rotations
    assert 0 == src.stats.lost_bytes


def test_old_file_gone_is_replaced_with_certain_loss(log: Path, tmp_path: Path) -> None:
    """Renamed to a name no pattern knows and a new file created: kind `replaced`, the known unread bytes lost."""
    src = Counted(log, tmp_path / "mail.offset", batch_bytes=200)
    write(log, batch("A", 10))
    src.source.poll(max_batches=1)
    pos = load_position(str(src.offset))
    assert pos is not None
    log.rename(log.parent / "elsewhere")
    write(log, batch("C", 2), "w")
    assert batch("C", 2) == src.poll()
    assert {"replaced": 1} == src.stats.rotations
    assert pos.size - pos.offset == src.stats.lost_bytes > 0


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gz"])
def test_a_long_rotated_file_is_one_rotation(log: Path, tmp_path: Path, compressed: bool) -> None:
    """A rotated file (plain or gzipped) read in small batches over many polls counts one rotation, keeps
    lines that span batches whole, and a restart in the middle resumes in it."""
    src = Counted(log, tmp_path / "mail.offset", batch_bytes=500)
    write(log, batch("A", 1))
    src.poll()
    write(log, batch("B", 60))
    renamed = log.rename(log.parent / "mail.log.1")
    write(log, batch("C", 2), "w")
    if compressed:
        with renamed.open("rb") as plain, gzip.open(log.parent / "mail.log.1.gz", "wb") as gz:
            shutil.copyfileobj(plain, gz)
        renamed.unlink()
    for _ in range(3):
        src.source.poll(max_batches=1)
    src.source = src.make()
    for _ in range(3):
        src.source.poll(max_batches=1)
    src.poll()
    assert batch("A", 1) + batch("B", 60) + batch("C", 2) == src.lines
    kind = "rename_gzip" if compressed else "rename"
    assert {kind: 2} == src.stats.rotations  # once, and once more by the restarted source
    assert 0 == src.stats.lost_bytes


def test_a_rotated_pattern_with_another_percent_sign(log: Path, tmp_path: Path) -> None:
    """A user pattern with a stray % (a date format) does not make every rotation raise."""
    lines: list[str] = []
    stats = SourceStats("mail")
    src = FileSource(stats, str(log), str(tmp_path / "o"), lines.extend, start_at_end=False,
                     rotated_patterns=["%s.%Y%m%d", *DEFAULT_ROTATED_PATTERNS])  # fmt: skip
    write(log, batch("A", 2))
    src.poll()
    write(log, batch("B", 1))
    log.rename(log.parent / "mail.log.1")
    write(log, batch("C", 1), "w")
    src.poll()
    assert batch("A", 2) + batch("B", 1) + batch("C", 1) == lines
    assert {"rename": 1} == stats.rotations


@pytest.mark.parametrize(
    "name",
    ["mail.log.0", "mail.log.1", "mail.log.1.gz", "mail.log-20261124", "mail.log-20261124.gz",
     "mail.log-20261124-1795535693", "mail.log-20261124-1795535693.gz", "mail.log.2026-11-24",
     "mail.log.20261124-165817", "mail.log.20261124-165817.gz"],
)  # fmt: skip
def test_builtin_rotated_patterns(name: str) -> None:
    """The built-in rotated names include the compressed forms (.1.gz, -YYYYMMDD.gz)."""
    assert any(fnmatch.fnmatchcase(name, p % "mail.log") for p in DEFAULT_ROTATED_PATTERNS)


def test_a_batch_whose_handling_raises_is_not_read_again(log: Path, tmp_path: Path) -> None:
    """A sink that raises (a bug downstream) is reported by the exception, but the batch is not read and
    counted again at the next poll (no re-counting crash loop)."""
    seen: list[list[str]] = []

    def sink(lines: list[str]) -> None:
        seen.append(list(lines))
        if len(seen) == 1:
            raise RuntimeError("bug")

    src = FileSource(SourceStats("mail"), str(log), str(tmp_path / "o"), sink, start_at_end=False)  # type: ignore[arg-type]
    write(log, batch("A", 3))
    with pytest.raises(RuntimeError):
        src.poll()
    write(log, batch("B", 2))
    src.poll()
    src.poll()
    assert [batch("A", 3), batch("B", 2)] == seen


# -- A6: corrupt state files -------------------------------------------------------------------------------------
CORRUPT = {
    "garbage": b"\x00\xff garbage \xfe\n\x01",
    "one line": b"1234567\n",
    "empty": b"",
    "negative": b"1234567\n-5\n",
    "superscript": b"1234567\n\xc2\xb2\n",
    "three lines": b"1\n2\n3\n",
    "v2 missing keys": b"mailpulse-offset 2\ninode 1\n",
    "v2 size below offset": b"mailpulse-offset 2\ninode 1\noffset 9\nsize 3\nhead \n",
    "huge": b"9" * 5000,
    "legacy huge offset": b"1234567\n" + b"9" * 400 + b"\n",
    "v2 offset past 2**63": b"mailpulse-offset 2\ninode 1\noffset 9223372036854775808\nsize 9223372036854775808\nhead \n",
}


@pytest.mark.parametrize("start_at_end", [True, False], ids=["start_at_end", "start_at_beginning"])
@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_corrupt_state_is_reported_and_resynchronised(log: Path, tmp_path: Path, content: bytes,
                                                      start_at_end: bool) -> None:  # fmt: skip
    """A corrupt state file: no exception, one `state_corrupt`, one log line with what may be skipped or
    repeated, reading resumes as on a first start (start_at), and the state file is valid again."""
    write(log, batch("OLD", 4))
    offset = tmp_path / "mail.offset"
    offset.write_bytes(content)
    src = Counted(log, offset, start_at_end=start_at_end)
    with capture_logs() as logs:
        got = src.poll()
        write(log, batch("NEW", 2))
        got += src.poll()
    assert (batch("NEW", 2) if start_at_end else batch("OLD", 4) + batch("NEW", 2)) == got
    assert {"state_corrupt": 1} == src.stats.errors
    assert 1 == src.stats.up
    [line] = [e for e in logs if e["log_level"] == "warning"]
    size = len("".join(s + "\n" for s in batch("OLD", 4)))
    expected = {"may_skip_bytes": size, "may_repeat_bytes": 0} if start_at_end else \
        {"may_skip_bytes": 0, "may_repeat_bytes": size}  # fmt: skip
    assert expected.items() <= line.items()
    assert load_position(str(offset)) is not None
    src.source = src.make()
    assert [] == src.poll()
    assert {"state_corrupt": 1} == src.stats.errors


def test_offset_beyond_the_end_of_an_intact_file(log: Path, tmp_path: Path) -> None:
    """A well-formed state whose offset is past the end of the same file (same inode, same first bytes): the
    offset is wrong, not the file; re-synchronised at the end, reported, nothing repeated."""
    write(log, batch("OLD", 4))
    st = log.stat()
    offset = tmp_path / "mail.offset"
    head = log.read_bytes()[:HEAD_BYTES]
    offset.write_text(format_position(Position(st.st_ino, st.st_size * 10, st.st_size * 10, head)))
    src = Counted(log, offset)
    assert [] == src.poll()
    write(log, batch("NEW", 1))
    assert batch("NEW", 1) == src.poll()
    assert {"state_corrupt": 1} == src.stats.errors
    assert {} == src.stats.rotations


def test_pygtail_state_files_still_work(log: Path, tmp_path: Path) -> None:
    """An offset file from before (pygtail's inode and offset lines) continues where it says."""
    write(log, batch("A", 3))
    size = log.stat().st_size
    write(log, batch("B", 2))
    offset = tmp_path / "mail.offset"
    offset.write_text(f"{log.stat().st_ino}\n{size}\n")
    src = Counted(log, offset)
    assert batch("B", 2) == src.poll()
    assert {} == src.stats.errors
    saved = load_position(str(offset))
    assert saved is not None
    assert saved.head is not None


# -- CRLF ------------------------------------------------------------------------------------------------------
def test_crlf_lines_are_read_like_lf_lines(log: Path, tmp_path: Path) -> None:
    """A log with CRLF line ends gives the same lines and counts as with LF, in the tailer and in scan."""
    lines = [*batch("A", 5), "Nov 24 16:58:17 mail postfix/smtpd[7]: connect from unknown[192.0.2.1]"]
    write(log, lines, end="\r\n")
    src = Counted(log, tmp_path / "mail.offset")
    assert lines == src.poll()
    assert (6, 0) == (src.stats.parsed, src.stats.unparsed)
    assert src.stats.bytes_read == log.stat().st_size

    scanned: list[str] = []
    read_lines(io.BytesIO(log.read_bytes()), scanned.extend, lambda n: None)
    assert lines == scanned
    unterminated: list[str] = []  # a last line without its newline keeps no \r either
    read_lines(io.BytesIO(b"a\r\nb\r"), unterminated.extend, lambda n: None)
    assert ["a", "b"] == unterminated


def test_split_lines_keeps_inner_carriage_returns() -> None:
    """Only a line-ending \\r goes; one inside a line is data."""
    assert ["a\rb", "c", "", "d"] == split_lines(b"a\rb\r\nc\r\n\r\nd\r")
    assert ["x", "y"] == split_lines(b"x\ny")
