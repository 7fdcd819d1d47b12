"""Follow the systemd journal through a ``journalctl -f -o json`` subprocess.

Each entry's ``__CURSOR`` is saved (atomically, after the entry is processed) so a restart continues
with ``--after-cursor`` and loses nothing. Entries carry ``SYSLOG_IDENTIFIER`` (``postfix/smtpd``),
``MESSAGE`` and ``__REALTIME_TIMESTAMP``, which the parsers take directly (no syslog prefix to split).

If journalctl exits, the source is marked down, the exit is counted, and it is restarted with a backoff.

The state rules match the file source's: a cursor that cannot be saved (full disk, read-only state dir)
is kept in memory, so nothing is counted twice, and reported as ``state_write`` with the source down
until a save succeeds; a cursor file that is not a journald cursor is reported as ``state_corrupt`` and
ignored (``start_at`` decides where to begin, as on a first start), instead of making journalctl fail
at every restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.sources.position import write_atomic

log = structlog.get_logger(__name__)

# s=739ad463348b4ceca5a9e69c95a3c93f;i=4ece7;b=6c7c6013a8ee4e33ad8ed5f0de0a5bdf;m=...;t=...;x=...
_CURSOR_RE = re.compile(r"[a-z]=[0-9a-f]{1,64}(?:;[a-z]=[0-9a-f]{1,64}){0,15}")

# Cursors that could not be saved, by cursor file: a source rebuilt by a config reload continues from
# here instead of the stale file, so a reload does not count the unsaved entries a second time.
_UNSAVED: dict[str, str] = {}

FieldsSink = Callable[[str, str, str], None]
"""``sink(timestamp_rfc3339, program, message)``"""


class JournalSource:
    def __init__(
        self,
        stats: SourceStats,
        cursor_path: str,
        sink: FieldsSink,
        *,
        units: Sequence[str] = (),
        matches: Sequence[str] = (),
        journal_files: Sequence[str] = (),
        journal_directory: str | None = None,
        journalctl: str = "journalctl",
        start_at_end: bool = True,
        save_every: int = 200,
    ) -> None:
        self.stats = stats
        self.cursor_path = cursor_path
        self.sink = sink
        self.units = list(units)
        self.matches = list(matches)
        self.journal_files = list(journal_files)
        self.journal_directory = journal_directory
        self.journalctl = journalctl
        self.start_at_end = start_at_end
        self.save_every = save_every
        self._saved = cursor_path not in _UNSAVED
        self._since_save = 0  # bytes of entries read since the cursor was last saved
        self._cursor: str | None = _UNSAVED.get(cursor_path) or self._load_cursor()

    def command(self) -> list[str]:
        cmd = [self.journalctl, "--follow", "--output=json", "--no-pager", "--quiet"]
        for path in self.journal_files:
            cmd.append(f"--file={path}")
        if self.journal_directory:
            cmd.append(f"--directory={self.journal_directory}")
        if self._cursor:
            cmd.append(f"--after-cursor={self._cursor}")
        elif self.start_at_end:
            cmd.append("--lines=0")
        else:
            cmd.append("--lines=all")
        for unit in self.units:
            cmd.append(f"--unit={unit}")
        cmd.extend(self.matches)
        return cmd

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                await self._follow(stop)
                backoff = 1.0
            except (OSError, ValueError) as exc:
                self.stats.error("journal_exited")
                log.warning("journalctl failed, will retry", source=self.stats.name, error=str(exc))
            self.stats.up = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 60.0)

    async def _follow(self, stop: asyncio.Event) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 22,
        )
        assert proc.stdout is not None
        self.stats.up = 1 if self._saved else 0
        stopper = asyncio.create_task(stop.wait())
        reader: asyncio.Task[bytes] | None = None
        unsaved = 0
        try:
            while True:
                if reader is None:
                    reader = asyncio.create_task(proc.stdout.readline())
                done, _ = await asyncio.wait({reader, stopper}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                if not done:  # quiet for a second: a good moment to persist the cursor
                    if unsaved:
                        self._save_cursor()
                        unsaved = 0
                    continue
                if reader not in done:
                    reader.cancel()
                    break
                raw = reader.result()
                reader = None
                if not raw:
                    err = (await proc.stderr.read()).decode(errors="replace").strip() if proc.stderr else ""
                    self.stats.error("journal_exited")
                    log.warning("journalctl exited", source=self.stats.name, returncode=await proc.wait(),
                                stderr=err[:500])  # fmt: skip
                    break
                self.stats.bytes_read += len(raw)
                self._since_save += len(raw)
                if not self._saved:
                    self.stats.unsaved_bytes = self._since_save
                self._entry(raw)
                unsaved += 1
                if unsaved >= self.save_every:
                    self._save_cursor()
                    unsaved = 0
        finally:
            stopper.cancel()
            self._save_cursor()
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 5)
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    def _entry(self, raw: bytes) -> None:
        try:
            entry = json.loads(raw)
        except ValueError:
            self.stats.unparsed += 1
            return
        if not isinstance(entry, dict):
            self.stats.unparsed += 1
            return
        cursor = entry.get("__CURSOR")
        message = _text(entry.get("MESSAGE"))
        program = _text(entry.get("SYSLOG_IDENTIFIER")) or _text(entry.get("_COMM"))
        ts = _timestamp(entry.get("__REALTIME_TIMESTAMP"))
        if isinstance(cursor, str):
            # before the sink: an entry whose handling raises (a bug) is not read again after the restart
            self._cursor = cursor
        self.sink(ts, program, message)

    def _load_cursor(self) -> str | None:
        try:
            with open(self.cursor_path, "rb") as fh:
                raw = fh.read(4097)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._corrupt(f"cannot read: {exc.strerror or exc}")
            return None
        text = raw.decode("ascii", "replace").strip()
        if len(raw) <= 4096 and _CURSOR_RE.fullmatch(text):
            return text
        self._corrupt(f"not a journald cursor: {text[:40]!r}" if text else "empty")
        return None

    def _corrupt(self, problem: str) -> None:
        self.stats.error("state_corrupt")
        log.warning("journal cursor file is corrupt, re-synchronised", source=self.stats.name, path=self.cursor_path,
                    problem=problem, resync="end" if self.start_at_end else "beginning",
                    may_skip="entries since the last good save" if self.start_at_end else "none",
                    may_repeat="none" if self.start_at_end else "the whole journal")  # fmt: skip

    def _save_cursor(self) -> None:
        if not self._cursor:
            return
        try:
            write_atomic(self.cursor_path, self._cursor)
        except OSError as exc:
            _UNSAVED[self.cursor_path] = self._cursor
            self.stats.up = 0
            self.stats.unsaved_bytes = self._since_save
            if self._saved:
                self._saved = False
                self.stats.error("state_write")
                log.warning("cannot save the journal cursor: entries are counted once, a restart would read the "
                            "unsaved ones again", source=self.stats.name, path=self.cursor_path,
                            error=exc.strerror or str(exc))  # fmt: skip
            return
        _UNSAVED.pop(self.cursor_path, None)
        self._since_save = self.stats.unsaved_bytes = 0
        if not self._saved:
            self._saved = True
            self.stats.up = 1
            log.info("journal cursor saved again", source=self.stats.name, path=self.cursor_path)


def _text(value: object) -> str:
    # journald exports non-UTF-8 fields as arrays of byte values
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        try:
            return bytes(value).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return ""
    return ""


def _timestamp(value: object) -> str:
    try:
        micros = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return ""
    return datetime.fromtimestamp(micros / 1e6, tz=UTC).isoformat()
