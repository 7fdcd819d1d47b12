"""Tail log files with pygtail: persisted offsets, rotation by rename and by copytruncate.

pygtail supplies the hard part: an offset file holding (inode, offset), and on start-up the search for
the rotated file when the inode changed or the file shrank, so the remainder of the old file is read
before the new one. mailpulse builds a fresh pygtail reader on every poll, so every poll re-checks for
rotation, and adds what a daemon needs on top:

* binary reads: offsets are byte offsets, undecodable bytes become U+FFFD instead of an exception;
* whole-line batches: a line still being written is left for the next poll, except at the end of a
  file that was rotated away (its last line will never be completed);
* the offset is saved after each batch is processed, atomically, so a restart neither loses nor
  repeats lines;
* a missing, unreadable or vanished file is a metric and one log line per change, never an exception.

Rotation caveats (documented for users): with rename rotation, compressing the old file immediately
(no ``delaycompress``) can lose its last unread lines; with copytruncate, lines written between the
copy and the truncation are lost by every tailer, including this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import os
from collections.abc import Callable, Sequence
from typing import IO, cast

import structlog
from pygtail import Pygtail

from exporter.metrics.sources import SourceStats

log = structlog.get_logger(__name__)

# Rotated names besides pygtail's own (.1, .1.gz, -YYYYMMDD, ...): `postfix logrotate` writes
# mail.log.YYYYMMDD-HHMMSS.
DEFAULT_ROTATED_PATTERNS = ("%s.[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9][0-9][0-9]",)
BATCH_BYTES = 1 << 20  # lines per batch ~ 5,000: one lock and one offset write per batch


class _Tail(Pygtail):  # type: ignore[misc]
    """pygtail reading bytes, in whole-line batches, with atomic offset files."""

    # pygtail's own attributes, typed for mypy
    fh: IO[bytes] | None
    rotated_logfile: str | None
    offset: int
    offset_file: str
    offset_file_inode: int

    def __del__(self) -> None:
        # pygtail's own __del__ opens the file just to close it, raising on a missing file
        if self.fh is not None:
            self.fh.close()

    def _filehandle(self) -> IO[bytes]:
        if not self.fh or self._is_closed():
            self._counter += 1
            filename = self.rotated_logfile or self.filename
            fh = cast(IO[bytes], gzip.open(filename, "rb") if filename.endswith(".gz") else open(filename, "rb"))  # noqa: SIM115
            if self.read_from_end and not os.path.exists(self.offset_file):
                fh.seek(0, os.SEEK_END)
            else:
                fh.seek(self.offset)
            self.fh = fh
        return self.fh

    def update_offset_file(self) -> None:
        fh = self._filehandle()
        self.offset = fh.tell()
        inode = os.fstat(fh.fileno()).st_ino
        tmp = f"{self.offset_file}.tmp"
        with open(tmp, "w") as out:
            out.write(f"{inode}\n{self.offset}\n")
        os.replace(tmp, self.offset_file)
        self.since_update = 0

    def read_batch(self, max_bytes: int) -> bytes | None:
        """Return complete lines (joined, without the final newline), or None at the end of data."""
        fh = self._filehandle()
        data = fh.read(max_bytes)
        if not data:
            if self._is_new_file():
                # the file we read was rotated away and is exhausted: continue with the current one
                self.rotated_logfile = None
                fh.close()
                self.offset = 0
                fh = self._filehandle()
                data = fh.read(max_bytes)
            if not data:
                return None
        cut = data.rfind(b"\n")
        if cut == len(data) - 1:
            return data[:-1]
        if cut >= 0:
            fh.seek(cut + 1 - len(data), os.SEEK_CUR)
            return data[:cut]
        if len(data) >= max_bytes or self.rotated_logfile or self._is_new_file():
            return data  # an over-long line, or the unfinished last line of a rotated-away file
        fh.seek(-len(data), os.SEEK_CUR)
        return None

    def current_offset(self) -> int:
        return int(self._filehandle().tell())


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
        self.rotated_patterns = list(rotated_patterns)
        self.poll_interval = poll_interval
        self.batch_bytes = batch_bytes
        self._state = "new"  # new | up | missing | unreadable | error: log a line only on changes

    def poll(self, max_batches: int = 20) -> bool:
        """Read what is there (up to ``max_batches``); True if more data is probably waiting."""
        try:
            os.stat(self.path)
        except FileNotFoundError:
            self._down("vanished" if self._state == "up" else "missing")
            return False
        except OSError as exc:
            self._down("unreadable", exc)
            return False
        try:
            return self._read(max_batches)
        except PermissionError as exc:
            self._down("unreadable", exc)
        except FileNotFoundError:
            self._down("vanished")
        except OSError as exc:
            self._down("read_error", exc)
        return False

    def _read(self, max_batches: int) -> bool:
        tail = self._open()
        try:
            if not os.path.exists(self.offset_path):
                tail.update_offset_file()  # remember where a first start at the end began
            more = True
            for _ in range(max_batches):
                data = tail.read_batch(self.batch_bytes)
                if data is None:
                    more = False
                    break
                self.stats.bytes_read += len(data) + 1
                self.sink(data.decode("utf-8", "replace").split("\n"))
                tail.update_offset_file()
            self._up(tail)
            return more
        finally:
            if tail.fh is not None:
                tail.fh.close()

    def _open(self) -> _Tail:
        had_offsets = os.path.exists(self.offset_path)
        captured = io.StringIO()
        with contextlib.redirect_stderr(captured):  # pygtail reports rotation trouble on stderr
            tail = _Tail(
                self.path,
                offset_file=self.offset_path,
                read_from_end=self.start_at_end,
                copytruncate=True,
                log_patterns=self.rotated_patterns,
            )
        if captured.getvalue():
            log.warning("log rotated to an unknown place, reading from the start", source=self.stats.name,
                        path=self.path)  # fmt: skip
            self.stats.rotated("truncate")
        elif had_offsets and tail.rotated_logfile:
            same_inode = os.stat(self.path).st_ino == tail.offset_file_inode
            kind = "truncate" if same_inode else "rename"
            self.stats.rotated(kind)
            log.info("log rotated", source=self.stats.name, kind=kind, rest_from=tail.rotated_logfile)
        return tail

    def _up(self, tail: _Tail) -> None:
        if self._state != "up":
            log.info("log source readable", source=self.stats.name, path=self.path)
            self._state = "up"
        self.stats.up = 1
        try:
            size = os.stat(self.path).st_size
            # still in the rotated file: all of the current file is yet to come
            self.stats.lag_bytes = size if tail.rotated_logfile else max(0, size - tail.current_offset())
        except OSError:
            self.stats.lag_bytes = 0

    def _down(self, kind: str, exc: BaseException | None = None) -> None:
        self.stats.up = 0
        if self._state != kind:
            self.stats.error(kind)
            log.warning("log source not readable, will retry", source=self.stats.name, path=self.path,
                        problem=kind, error=str(exc) if exc else None)  # fmt: skip
            self._state = kind

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a full poll is followed at once by another, to catch up."""
        while not stop.is_set():
            more = self.poll()
            if more:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)
