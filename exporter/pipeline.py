"""Lines → parser → events → aggregators: the one-way path every source feeds.

A source hands over batches of decoded lines; :class:`LinePipeline` parses each line with the
source's format(s), counts the result (parsed / unparsed / foreign / error) and gives the event to the
aggregator's handler for that event type. One lock per batch (not per line) keeps scrapes from reading
half-updated numbers.

No line may stop a source. A line whose parsing or counting raises (a bug in mailpulse that the line
exposed) is counted as ``error``, by rule, and skipped; the rest of the batch is counted once, as usual,
and :meth:`LinePipeline.feed` returns normally, so the source saves its offset and never reads the batch
again. Each rule's exception is logged with its traceback, at most once a minute per rule
(:class:`ErrorLog`). Counts the failing line had already made before it raised are kept, not undone.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import structlog

from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.parsers.results import PARSERS_PACKAGE, Foreign, RuleError, Unparsed, rule_name
from mailpulse.parsers.syslog import TimestampParser

log = structlog.get_logger(__name__)
# the packages whose frames name a failing rule (their import names: "mailpulse.parsers." when installed)
_OUR_PACKAGES = (PARSERS_PACKAGE + ".", __name__.rpartition(".")[0] + ".")

# How many unparsed lines per batch reach the debug log: enough to see a new shape, never a flood.
_DEBUG_UNPARSED_PER_BATCH = 5
# A failing rule's exception is logged at most once per this many seconds (per rule and source).
ERROR_LOG_INTERVAL = 60.0
_LOGGED_LINE_CHARS = 200  # of the line that exposed the bug, escaped: enough to reproduce, never a flood

EventHandlers = Mapping[type, Callable[[object], None]]


@dataclass(frozen=True)
class Format:
    """A log format wired to its aggregator.

    ``parse_line`` and ``parse_fields`` are bound methods (calling a bound method is cheaper than
    calling an object with ``__call__`` in CPython 3.11); ``handlers`` maps each event type to the
    aggregator method that counts it (an event type without a handler is parsed and ignored);
    ``end_batch``, when set, is called at the end of every batch, under the same lock: an aggregator that
    queues events to count them together (rspamd's verdicts) counts them there, so a scrape, which takes
    the lock between batches, finds everything counted and changes nothing.
    """

    name: str
    parse_line: Callable[[str], object]
    parse_fields: Callable[[str, str, str], object]
    handlers: EventHandlers
    timestamp_of: Callable[[str], str | None]
    end_batch: Callable[[], None] | None = None
    # called once when a scan has read all its input (under the lock): count what waits for more lines
    end_of_input: Callable[[], None] | None = None


class ErrorLog:
    """Log a failing rule's exception at most once per ``interval`` seconds, saying how many were not logged.

    Keys are rule names (bounded: they come from mailpulse's code), so the table stays small.
    """

    def __init__(
        self, source: str, interval: float = ERROR_LOG_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.source = source
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, fmt: str, rule: str, exc: BaseException, line: str) -> None:
        now = self._clock()
        last = self._last.get(rule)
        if last is not None and now - last < self.interval:
            self._suppressed[rule] = self._suppressed.get(rule, 0) + 1
            return
        self._last[rule] = now
        # an exception that cannot even be printed must not stop the counting
        with contextlib.suppress(Exception):
            log.error(
                "a line made a rule fail; line counted as error and skipped (a bug: please report it)",
                source=self.source, format=fmt, rule=rule, error=f"{type(exc).__name__}: {exc}"[:300],
                line=ascii(line[:_LOGGED_LINE_CHARS]), not_logged_since_last=self._suppressed.pop(rule, 0),
                exc_info=exc,
            )  # fmt: skip


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
        self.error_log = ErrorLog(stats.name)
        self._batch_ends = tuple((f.name, f.end_batch) for f in self.formats if f.end_batch is not None)

    def feed(self, lines: Sequence[str]) -> None:
        """Parse a batch of lines (without line endings)."""
        if not lines:
            return
        with self.lock:
            if len(self.formats) == 1:
                self._feed_single(lines)
            else:
                self._feed_multi(lines)
            self._end_batch()
            self.stats.last_read = self._now()
            try:
                self._note_timestamp(lines[-1])
            except Exception as exc:  # a bug the last line exposed: its counts stand, only lag is skipped
                self._failed("timestamp", exc, lines[-1])

    def feed_fields(self, ts: str, program: str, message: str) -> None:
        """One journald entry: fields instead of a syslog line."""
        with self.lock:
            try:
                self._count_one(message, (ts, program))
            except Exception as exc:
                self.stats.error_lines += 1
                self._failed(self.formats[0].name, exc, message)
            self._end_batch()
            self.stats.last_read = self._now()
            try:
                epoch = self.timestamps(ts)
                if epoch is not None:
                    self._set_last(epoch)
            except Exception as exc:  # the entry is counted; only its lag is skipped
                self._failed("timestamp", exc, ts)

    def _feed_single(self, lines: Sequence[str]) -> None:
        # The per-line loop of the whole program: locals only, one parse call, one handler call. Errors are
        # rare: one try around the loop (free in CPython 3.11 until something raises) and, when a line
        # raises, the loop resumes on the same iterator, after that line.
        fmt = self.formats[0]
        parse, handlers = fmt.parse_line, fmt.handlers
        parsed = unparsed = foreign = errors = 0
        shown = 0
        remaining = iter(lines)
        line = ""
        while True:
            try:
                for line in remaining:
                    event = parse(line)
                    cls = type(event)
                    if cls is Foreign:
                        foreign += 1
                        continue
                    handler = handlers.get(cls)
                    if handler is not None:
                        handler(event)
                    # counted after the handler: a line whose handler raises is an error, not also parsed
                    if cls is Unparsed:
                        unparsed += 1
                        if self._debug_unparsed and shown < _DEBUG_UNPARSED_PER_BATCH:
                            shown += 1
                            log.debug("unparsed line", source=self.stats.name, format=fmt.name, line=line[:500])
                    elif cls is RuleError:
                        errors += 1
                        self._rule_failed(fmt.name, event, line)
                    else:
                        parsed += 1
                break
            except Exception as exc:
                errors += 1
                self._failed(fmt.name, exc, line)
        s = self.stats
        s.parsed += parsed
        s.unparsed += unparsed
        s.foreign += foreign
        s.error_lines += errors

    def _feed_multi(self, lines: Sequence[str]) -> None:
        """A source with several formats (rare): each line through :meth:`_count_one`, errors as above."""
        remaining: Iterator[str] = iter(lines)
        line = ""
        while True:
            try:
                for line in remaining:
                    self._count_one(line, None)
                return
            except Exception as exc:
                self.stats.error_lines += 1
                self._failed("", exc, line)

    def _end_batch(self) -> None:
        for name, end in self._batch_ends:
            try:
                end()
            except Exception as exc:  # a bug in the batch counting: counted by rule, the source goes on
                self._failed(name, exc, "")

    def _count_one(self, text: str, fields: tuple[str, str] | None) -> None:
        """Try each format in order; the first that does not call the line foreign owns it."""
        s = self.stats
        for fmt in self.formats:
            event = fmt.parse_line(text) if fields is None else fmt.parse_fields(fields[0], fields[1], text)
            cls = type(event)
            if cls is Foreign:
                continue
            handler = fmt.handlers.get(cls)
            if handler is not None:
                handler(event)
            if cls is Unparsed:
                s.unparsed += 1
                if self._debug_unparsed:
                    log.debug("unparsed line", source=s.name, format=fmt.name, line=text[:500])
            elif cls is RuleError:
                s.error_lines += 1
                self._rule_failed(fmt.name, event, text)
            else:
                s.parsed += 1
            return
        s.foreign += 1

    def _rule_failed(self, fmt: str, error: object, line: str) -> None:
        """A parser rule raised and the parser said so (a :class:`RuleError`): count it by rule, log it."""
        assert isinstance(error, RuleError)
        self.stats.rule_error(error.rule)
        self.error_log(fmt, error.rule, error.error, line)

    def _failed(self, fmt: str, exc: Exception, line: str) -> None:
        """Something raised out of a parser or an aggregator's handler: count it by rule, log it."""
        rule = rule_name(exc.__traceback__, _OUR_PACKAGES)
        self.stats.rule_error(rule)
        self.error_log(fmt, rule, exc, line)

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
