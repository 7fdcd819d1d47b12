"""A directory of report files, read by the daemon: every ``interval``, the report files not read yet by
this process (by path, size and mtime) are counted. Files are left where they are; after a restart they are
all read again and count nothing (the de-duplication memory), so a directory another tool fills (a
maildir's attachments, an archive) can simply be pointed at."""

from __future__ import annotations

import asyncio
import contextlib
import os

import structlog

from mailpulse.probes.reports.config import DirectoryConfig
from mailpulse.probes.reports.files import report_files
from mailpulse.probes.reports.ingest import Ingestor

log = structlog.get_logger(__name__)
MAX_REMEMBERED = 200_000  # files remembered as read; beyond, older ones are read again (as duplicates)


class ReportDirectory:
    def __init__(self, config: DirectoryConfig, ingestor: Ingestor) -> None:
        self.config = config
        self.ingestor = ingestor
        self._read: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns)
        self.passes = 0
        self.error: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.poll)
            self.passes += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.interval)

    def poll(self) -> int:
        """Read the new files once; the number read."""
        read = 0
        try:
            paths = list(report_files([self.config.path]))
        except OSError as exc:
            self._fail(str(exc))
            return 0
        for path in paths:
            try:
                st = os.stat(path)
                key = (st.st_size, st.st_mtime_ns)
                if self._read.get(path) == key:
                    continue
                with open(path, "rb") as fh:
                    data = fh.read(self.ingestor.limits.max_input_bytes + 1)
            except OSError as exc:
                self._fail(f"{path}: {exc.strerror or exc}")
                continue
            self.ingestor.ingest_file(data)
            if len(self._read) >= MAX_REMEMBERED:
                del self._read[next(iter(self._read))]
            self._read[path] = key
            read += 1
        if read:
            self.ingestor.save()
        if not os.path.isdir(self.config.path):
            self._fail(f"{self.config.path}: not a directory")
        else:
            self.error = None
        return read

    def _fail(self, why: str) -> None:
        if why != self.error:
            log.warning("report directory unreadable", path=self.config.path, error=why)
        self.error = why
