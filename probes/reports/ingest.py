"""One path from bytes to numbers, shared by every source (a mail from IMAP, a file from ``scan``):
parse (outside the lock: it is the expensive part), de-duplicate, count (under the kernel's lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from mailpulse.parsers.reports import Limits, Rejected, parse_file, parse_message
from mailpulse.parsers.reports.top import Result
from mailpulse.probes.reports.dedup import SeenReports, report_key
from mailpulse.probes.reports.metrics import ReportMetrics

log = structlog.get_logger(__name__)
LOG_EVERY = 60.0


@dataclass(frozen=True)
class Outcome:
    """What one input gave: reports counted, already counted, and refused."""

    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """A mail is done (moved to the processed folder) when it held a report and none was refused."""
        return self.rejected == 0 and self.ingested + self.duplicates > 0


class Ingestor:
    def __init__(self, metrics: ReportMetrics, seen: SeenReports, lock: threading.Lock, limits: Limits,
                 now: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.metrics = metrics
        self.seen = seen
        self.lock = lock
        self.limits = limits
        self._now = now
        self._logged = -LOG_EVERY

    def ingest_file(self, data: bytes) -> Outcome:
        return self._count(self._parse(parse_file, data))

    def ingest_message(self, data: bytes) -> Outcome:
        return self._count(self._parse(parse_message, data))

    def _parse(self, parse: Callable[[bytes, float, Limits], list[Result]], data: bytes) -> list[Result]:
        try:
            return parse(data, self._now(), self.limits)
        except Exception:  # a bug the input exposed: counted, logged at most once a minute, never fatal
            now = time.monotonic()
            if now - self._logged >= LOG_EVERY:
                self._logged = now
                log.exception("a report parser raised; the input is counted as rejected (parser_error)")
            return [Rejected("unknown", "parser_error")]

    def _count(self, results: list[Result]) -> Outcome:
        ingested = duplicates = rejected = 0
        reasons: list[str] = []
        with self.lock:
            for result in results:
                if isinstance(result, Rejected):
                    rejected += 1
                    reasons.append(result.reason)
                    self.metrics.count(result)
                    continue
                key = report_key(result.kind, result.reporter, result.report_id)
                duplicate = self.seen.seen(key)
                if duplicate:
                    duplicates += 1
                else:
                    ingested += 1
                    self.seen.add(key)
                self.metrics.count(result, duplicate)
            self.metrics.seen_entries = len(self.seen)
        return Outcome(ingested, duplicates, rejected, tuple(reasons))

    def save(self) -> bool:
        """Save the de-duplication memory (if it changed); False (and counted) when it cannot be written."""
        with self.lock:  # the copy under the lock, the JSON and the write outside it (a scrape waits for neither)
            entries = self.seen.snapshot()
        if entries is None:
            return True
        try:
            self.seen.write(entries)
        except OSError as exc:
            with self.lock:
                self.seen.dirty = True  # tried again with the next batch
                self.metrics.state_write_failed()
            log.warning("cannot save the report de-duplication memory", path=self.seen.path, error=str(exc))
            return False
        return True
