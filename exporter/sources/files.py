"""Tail log files: saved positions, rotation by rename, rename + gzip and copytruncate, and damage control.

Every poll stats the file and checks that the saved position (inode + first bytes, see
:mod:`exporter.sources.position`) still names it. If it does, reading continues at the offset. If not,
the file was rotated: the old file is looked for under the rotated names (by inode, or by its first
bytes, which also finds a gzipped or copied file), its rest is read, then the new file from 0.

Rules (docs/config.md, "Log files: positions and rotation"):

* whole-line batches: a line still being written waits for the next poll, except the last line of a
  rotated-away file (it will never be finished);
* each batch is counted once, then its position saved atomically (also when counting it raised, so a
  bug cannot make a batch count again and again); if the save fails (full disk,
  read-only state dir) the position is kept in memory, the batch is not read again, the source reports
  ``state_write`` and is down until a save succeeds (a restart meanwhile would repeat what was unsaved,
  shown by ``mailpulse_log_unsaved_bytes``);
* a rotated file that cannot be found is counted in ``mailpulse_log_lost_bytes_total``: the bytes the
  last saved position knew to exist and had not read (a lower bound);
* a corrupt state file is reported (``state_corrupt`` and one log line saying what may be skipped or
  repeated) and replaced: reading resumes as on a first start (``start_at``), or at the end of the file
  when the state pointed beyond the end of an otherwise intact file.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import gzip
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import IO, cast

import structlog

from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.sources.lines import split_lines
from mailpulse.exporter.sources.position import CorruptState, Position, load_position, read_head, save_position

log = structlog.get_logger(__name__)

_D8 = "[0-9]" * 8
# Where logrotate, savelog, Python's TimedRotatingFileHandler and `postfix logrotate` put a rotated file,
# `%s` being the file's name. The `.gz` forms are rename + immediate compression (no `delaycompress`).
DEFAULT_ROTATED_PATTERNS = (
    "%s.0",  # savelog
    "%s.1",
    "%s.1.gz",
    f"%s-{_D8}",  # logrotate dateext
    f"%s-{_D8}.gz",
    f"%s-{_D8}-{'[0-9]' * 10}",  # dateformat -%Y%m%d-%s
    f"%s-{_D8}-{'[0-9]' * 10}.gz",
    "%s.[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]",  # TimedRotatingFileHandler
    f"%s.{_D8}-{'[0-9]' * 6}",  # postfix logrotate: mail.log.YYYYMMDD-HHMMSS
    f"%s.{_D8}-{'[0-9]' * 6}.gz",
)
BATCH_BYTES = 1 << 20  # lines per batch ~ 5,000: one lock and one offset write per batch
MAX_CANDIDATES = 8  # rotated files examined, newest first: the file just rotated is among the newest
_READ_ERRORS = (OSError, EOFError, zlib.error)  # EOFError, zlib.error: a damaged or unfinished .gz

# Positions that could not be saved, by state file: a source rebuilt by a config reload continues from
# here instead of the stale file, so a reload does not count the unsaved batches a second time.
_UNSAVED: dict[str, Position] = {}


@dataclass(frozen=True, slots=True)
class _Target:
    path: str
    pos: Position
    rotated: bool  # a rotated-away file: read to its end, then continue with the current file


class _Reader:
    """Whole-line batches from one file, from an offset.

    The unfinished tail of a read is read again after a seek in a plain file (no copy), and kept in memory
    for a .gz (seeking back in a gzip stream decompresses it again from its start).
    """

    def __init__(self, path: str, offset: int, final: bool) -> None:
        self._gz = path.endswith(".gz")
        opener = gzip.open if self._gz else open
        self.fh = cast(IO[bytes], opener(path, "rb"))
        self.fh.seek(offset)
        self.offset = offset  # of the first byte not yet returned
        self.final = final
        self._carry = b""

    def batch(self, max_bytes: int) -> bytes | None:
        """Complete lines joined by newlines (without the last one), or None when none is complete."""
        while True:
            chunk = self.fh.read(max(max_bytes - len(self._carry), 1))
            data = self._carry + chunk if self._carry else chunk
            cut = data.rfind(b"\n")
            if cut >= 0:
                self.offset += cut + 1
                if self._gz:
                    self._carry = data[cut + 1 :]
                else:
                    self._carry = b""
                    if cut + 1 < len(data):
                        self.fh.seek(self.offset)
                return data[:cut]
            if data and (len(data) >= max_bytes or (self.final and not chunk)):
                # an over-long line, or the unfinished last line of a rotated-away file
                self._carry = b""
                self.offset += len(data)
                return data
            self._carry = data
            if not chunk:
                return None

    def close(self) -> None:
        self.fh.close()


class FileSource:
    """Follow one log file and feed complete lines to ``sink``."""

    def __init__(
        self,
        stats: SourceStats,
        path: str,
        offset_path: str,
        sink: Callable[[Sequence[str]], None],
        *,
        start_at_end: bool = True,
        rotated_patterns: Sequence[str] = DEFAULT_ROTATED_PATTERNS,
        poll_interval: float = 1.0,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self.stats = stats
        self.path = path
        self.offset_path = offset_path
        self.sink = sink
        self.start_at_end = start_at_end
        self.rotated_patterns = list(dict.fromkeys(rotated_patterns))
        self.poll_interval = poll_interval
        self.batch_bytes = batch_bytes
        self._state = "new"  # new | up | missing | unreadable | ...: log a line only on changes
        self._pos: Position | None = _UNSAVED.get(offset_path)
        self._saved = offset_path not in _UNSAVED
        self._draining: str | None = None  # the rotated file being read to its end

    #: Poll in a worker thread (the default); False polls on the event loop (for measuring the difference).
    offload = True

    # -- polling -------------------------------------------------------------------------------------
    def poll(self, max_batches: int = 20) -> bool:
        """Read what is there (up to ``max_batches``); True if more data is probably waiting."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._down("vanished" if self._state == "up" else "missing")
            return False
        except OSError as exc:
            self._down("unreadable", exc)
            return False
        try:
            more = self._read(st, max_batches)
        except PermissionError as exc:
            self._down("unreadable", exc)
            return False
        except FileNotFoundError:
            self._down("vanished")
            return False
        except _READ_ERRORS as exc:
            self._down("read_error", exc)
            return False
        if not self._saved and self._pos is not None:
            self._save(self._pos, 0)  # retry: a freed disk or a remounted state dir ends the condition
        self._up()
        return more

    def _read(self, st: os.stat_result, max_batches: int) -> bool:
        target = self._locate(st)
        reader = _Reader(target.path, target.pos.offset, target.rotated)
        try:
            for _ in range(max_batches):
                data = reader.batch(self.batch_bytes)
                if data is None:
                    if not target.rotated:
                        return False
                    # the rotated file is exhausted: continue with the current one, from its start
                    reader.close()
                    self._draining = None
                    target = _Target(self.path, _fresh(self.path, 0), False)
                    self._save(target.pos, 0)
                    reader = _Reader(self.path, 0, False)
                    continue
                consumed = reader.offset - target.pos.offset
                self.stats.bytes_read += consumed
                pos = target.pos
                target = replace(target, pos=replace(pos, offset=reader.offset, size=max(pos.size, reader.offset)))
                try:
                    self.sink(split_lines(data))
                finally:
                    # a batch whose handling raised (a bug) is not read again: re-reading it would count
                    # its first lines again at every retry, forever
                    self._save(target.pos, consumed)
            return True
        finally:
            reader.close()

    # -- where to read -------------------------------------------------------------------------------
    def _locate(self, st: os.stat_result) -> _Target:
        """Decide which file to read from which offset, handling first starts, rotation and bad state."""
        pos = self._pos if self._pos is not None else self._load(st)
        head = read_head(self.path)
        if pos.inode == st.st_ino and pos.same_head(head):
            if st.st_size >= pos.offset:
                self._draining = None
                return _Target(self.path, replace(pos, size=max(pos.size, st.st_size), head=head), False)
            if pos.head is not None:
                # the file starts as it did, so it was not replaced: the offset is what is wrong
                self._corrupt(f"offset {pos.offset} beyond the end of the file ({st.st_size})", "end", st.st_size)
                return self._start(st, head, st.st_size)
        return self._rotated(pos, st, head)

    def _load(self, st: os.stat_result) -> Position:
        try:
            saved = load_position(self.offset_path)
        except CorruptState as exc:
            resync = "end" if self.start_at_end else "beginning"
            self._corrupt(str(exc), resync, st.st_size)
            saved = None
        if saved is not None:
            return saved
        # a first start (or a discarded state): remember at once where reading begins
        return self._start(st, read_head(self.path), st.st_size if self.start_at_end else 0).pos

    def _start(self, st: os.stat_result, head: bytes, offset: int) -> _Target:
        pos = Position(st.st_ino, offset, st.st_size, head)
        self._save(pos, 0)
        return _Target(self.path, pos, False)

    def _rotated(self, pos: Position, st: os.stat_result, head: bytes) -> _Target:
        """The saved position is not in the file at ``path`` any more: find where it went."""
        found = self._find_rotated(pos)
        same_inode = pos.inode == st.st_ino
        if found is not None:
            path, rst = found
            if path != self._draining:
                kind = "truncate" if same_inode else "rename_gzip" if path.endswith(".gz") else "rename"
                self.stats.rotated(kind)
                log.info("log rotated", source=self.stats.name, kind=kind, rest_from=path)
                self._draining = path
            rpos = Position(rst.st_ino, pos.offset, pos.size, pos.head if pos.head is not None else read_head(path))
            return _Target(path, rpos, True)
        self._draining = None
        kind = "truncate" if same_inode else "replaced"
        lost = max(0, pos.size - pos.offset)
        self.stats.rotated(kind)
        self.stats.lost_bytes += lost
        log.warning("log rotated, the old file was not found: reading the new one from its start",
                    source=self.stats.name, kind=kind, path=self.path, lost_bytes=lost)  # fmt: skip
        return self._start(st, head, 0)

    def _find_rotated(self, pos: Position) -> tuple[str, os.stat_result] | None:
        """The rotated file holding ``pos``: same inode (not compressed), or, given a fingerprint, same first bytes."""
        for path in self._candidates():
            try:
                rst = os.stat(path)
                by_inode = rst.st_ino == pos.inode and not path.endswith(".gz")
                if (by_inode or pos.head) and pos.same_head(read_head(path)):
                    return path, rst
            except _READ_ERRORS:
                continue  # vanished meanwhile, unreadable, or a .gz still being written
        return None

    def _candidates(self) -> list[str]:
        directory, name = os.path.split(self.path)
        found: set[str] = set()
        for pattern in self.rotated_patterns:
            # replace, not %: a pattern with another % (a date format) must not raise at every poll
            found.update(glob.glob(os.path.join(directory, pattern.replace("%s", glob.escape(name)))))
        found.discard(self.path)

        def mtime(path: str) -> float:
            try:
                return os.stat(path).st_mtime
            except OSError:
                return 0.0

        return sorted(found, key=mtime, reverse=True)[:MAX_CANDIDATES]

    # -- state and health ----------------------------------------------------------------------------
    def _save(self, pos: Position, consumed: int) -> None:
        """Keep ``pos`` (the batch is counted: it will not be read again) and try to persist it."""
        self._pos = pos
        try:
            save_position(self.offset_path, pos)
        except OSError as exc:
            _UNSAVED[self.offset_path] = pos
            self.stats.unsaved_bytes += consumed
            if self._saved:
                self._saved = False
                self.stats.error("state_write")
                log.warning("cannot save the log position: lines are counted once, a restart would read "
                            "the unsaved ones again", source=self.stats.name, path=self.offset_path,
                            error=exc.strerror or str(exc))  # fmt: skip
            return
        _UNSAVED.pop(self.offset_path, None)
        self.stats.unsaved_bytes = 0
        if not self._saved:
            self._saved = True
            log.info("log position saved again", source=self.stats.name, path=self.offset_path)

    def _corrupt(self, problem: str, resync: str, size: int) -> None:
        self.stats.error("state_corrupt")
        skip, repeat = (size, 0) if resync == "end" else (0, size)
        log.warning("log position file is corrupt, re-synchronised", source=self.stats.name,
                    path=self.offset_path, problem=problem, resync=resync, may_skip_bytes=skip,
                    may_repeat_bytes=repeat)  # fmt: skip

    def _up(self) -> None:
        if self._state != "up":
            log.info("log source readable", source=self.stats.name, path=self.path)
            self._state = "up"
        self.stats.up = 1 if self._saved else 0
        try:
            size = os.stat(self.path).st_size
        except OSError:
            size = 0
        pos = self._pos
        # still in the rotated file: all of the current file is yet to come
        behind = size if self._draining or pos is None else size - pos.offset
        self.stats.lag_bytes = max(0, behind)

    def _down(self, kind: str, exc: BaseException | None = None) -> None:
        self.stats.up = 0
        if self._state != kind:
            self.stats.error(kind)
            log.warning("log source not readable, will retry", source=self.stats.name, path=self.path,
                        problem=kind, error=str(exc) if exc else None)  # fmt: skip
            self._state = kind

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a full poll is followed at once by another, to catch up.

        Each poll (reading and parsing up to ``max_batches`` batches) runs in a worker thread: a backlog
        of a million lines must not hold the event loop, where probes take their timestamps. The thread
        updates numbers under the pipeline's lock, as the loop did; one poll of a source runs at a time."""
        while not stop.is_set():
            more = await asyncio.to_thread(self.poll) if self.offload else self.poll()
            if more:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)


def _fresh(path: str, offset: int) -> Position:
    st = os.stat(path)
    return Position(st.st_ino, offset, st.st_size, read_head(path))
