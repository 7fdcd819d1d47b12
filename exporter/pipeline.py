"""Lines → parser → events → aggregators: the one-way path every source feeds.

A source hands over batches of decoded lines; :class:`LinePipeline` parses each line with the
source's format(s), counts the result (parsed / unparsed / foreign) and gives the event to the
aggregator's handler for that event type. One lock per batch (not per line) keeps scrapes from reading
half-updated numbers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from exporter.metrics.sources import SourceStats
from parsers.results import Foreign, Unparsed
from parsers.syslog import TimestampParser

log = structlog.get_logger(__name__)

# How many unparsed lines per batch reach the debug log: enough to see a new shape, never a flood.
_DEBUG_UNPARSED_PER_BATCH = 5

EventHandlers = Mapping[type, Callable[[object], None]]


@dataclass(frozen=True)
class Format:
    """A log format wired to its aggregator.

    ``parse_line`` and ``parse_fields`` are bound methods (calling a bound method is cheaper than
    calling an object with ``__call__`` in CPython 3.11); ``handlers`` maps each event type to the
    aggregator method that counts it (an event type without a handler is parsed and ignored).
    """

    name: str
    parse_line: Callable[[str], object]
    parse_fields: Callable[[str, str, str], object]
    handlers: EventHandlers
    timestamp_of: Callable[[str], str | None]


class LinePipeline:
    """Parse and count lines for one source."""

    def __init__(
        self,
        stats: SourceStats,
        formats: Sequence[Format],
        lock: threading.Lock,
        debug_unparsed: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not formats:
            raise ValueError("a pipeline needs at least one format")
        self.stats = stats
        self.formats = tuple(formats)
        self.lock = lock
        self.timestamps = TimestampParser()
        self._debug_unparsed = debug_unparsed
        self._now = now

    def feed(self, lines: Sequence[str]) -> None:
        """Parse a batch of lines (without line endings)."""
        if not lines:
            return
        with self.lock:
            if len(self.formats) == 1:
                self._feed_single(lines)
            else:
                for line in lines:
                    self._count_one(line, None)
            self.stats.last_read = self._now()
            self._note_timestamp(lines[-1])

    def feed_fields(self, ts: str, program: str, message: str) -> None:
        """One journald entry: fields instead of a syslog line."""
        with self.lock:
            self._count_one(message, (ts, program))
            self.stats.last_read = self._now()
            epoch = self.timestamps(ts)
            if epoch is not None:
                self._set_last(epoch)

    def _feed_single(self, lines: Sequence[str]) -> None:
        # The per-line loop of the whole program: locals only, one parse call, one handler call.
        fmt = self.formats[0]
        parse, handlers = fmt.parse_line, fmt.handlers
        parsed = unparsed = foreign = 0
        shown = 0
        for line in lines:
            event = parse(line)
            cls = type(event)
            if cls is Foreign:
                foreign += 1
                continue
            if cls is Unparsed:
                unparsed += 1
                if self._debug_unparsed and shown < _DEBUG_UNPARSED_PER_BATCH:
                    shown += 1
                    log.debug("unparsed line", source=self.stats.name, format=fmt.name, line=line[:500])
            else:
                parsed += 1
            handler = handlers.get(cls)
            if handler is not None:
                handler(event)
        s = self.stats
        s.parsed += parsed
        s.unparsed += unparsed
        s.foreign += foreign

    def _count_one(self, text: str, fields: tuple[str, str] | None) -> None:
        """Try each format in order; the first that does not call the line foreign owns it."""
        s = self.stats
        for fmt in self.formats:
            event = fmt.parse_line(text) if fields is None else fmt.parse_fields(fields[0], fields[1], text)
            cls = type(event)
            if cls is Foreign:
                continue
            if cls is Unparsed:
                s.unparsed += 1
                if self._debug_unparsed:
                    log.debug("unparsed line", source=s.name, format=fmt.name, line=text[:500])
            else:
                s.parsed += 1
            handler = fmt.handlers.get(cls)
            if handler is not None:
                handler(event)
            return
        s.foreign += 1

    def _note_timestamp(self, last_line: str) -> None:
        for fmt in self.formats:
            raw = fmt.timestamp_of(last_line)
            if raw is not None:
                epoch = self.timestamps(raw)
                if epoch is not None:
                    self._set_last(epoch)
                return

    def _set_last(self, epoch: float) -> None:
        self.stats.last_line_ts = epoch
        self.stats.lag_seconds = max(0.0, self.stats.last_read - epoch)
