"""Follow the systemd journal through a ``journalctl -f -o json`` subprocess.

Each entry's ``__CURSOR`` is saved (atomically, after the entry is processed) so a restart continues
with ``--after-cursor`` and loses nothing. Entries carry ``SYSLOG_IDENTIFIER`` (``postfix/smtpd``),
``MESSAGE`` and ``__REALTIME_TIMESTAMP``, which the parsers take directly (no syslog prefix to split).

If journalctl exits, the source is marked down, the exit is counted, and it is restarted with a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from exporter.metrics.sources import SourceStats

log = structlog.get_logger(__name__)

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
        self._cursor: str | None = self._load_cursor()

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
        self.stats.up = 1
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
        self.sink(ts, program, message)
        if isinstance(cursor, str):
            self._cursor = cursor

    def _load_cursor(self) -> str | None:
        try:
            with open(self.cursor_path) as fh:
                return fh.read().strip() or None
        except FileNotFoundError:
            return None

    def _save_cursor(self) -> None:
        if not self._cursor:
            return
        tmp = f"{self.cursor_path}.tmp"
        with open(tmp, "w") as fh:
            fh.write(self._cursor)
        os.replace(tmp, self.cursor_path)


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
