"""``mailpulse scan``: read log files to the end and print the metrics (or a pflogsumm-style summary).

Scan and run share one code path (parsers, pipeline, aggregators, collector); scan only swaps the
tailer for a plain read to EOF, so a scan's output is what the daemon would export for the same lines.
"""

from __future__ import annotations

import gzip
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TextIO, cast

from prometheus_client.exposition import generate_latest

from mailpulse.exporter import __version__
from mailpulse.exporter.feature import AnyFeature, Summary
from mailpulse.exporter.metrics.collector import MailpulseCollector, Part, SelfMetrics, make_registry
from mailpulse.exporter.metrics.sources import SourcesAggregator
from mailpulse.exporter.pipeline import Format, LinePipeline
from mailpulse.exporter.sources.lines import split_lines

CHUNK = 64 << 10  # larger chunks cost more RSS and were not faster


def open_log(path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")


def read_lines(fh: IO[bytes], feed: Callable[[Sequence[str]], None], progress: Callable[[int], None]) -> None:
    """Feed whole lines in large batches; the tail of each chunk waits for the next one.

    Lines are split exactly as the tailer splits them (a trailing ``\\r`` of CRLF logs is dropped).
    """
    rest = b""
    while True:
        chunk = fh.read(CHUNK)
        if not chunk:
            break
        progress(len(chunk))
        data = rest + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        rest = data[cut + 1 :]
        feed(split_lines(data[:cut]))
    if rest:
        feed(split_lines(rest))


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last > 0.2:
            self._last = now
            pct = min(100.0, 100.0 * self.done / self.total)
            bar = "#" * int(pct / 2.5)
            rate = self.done / max(now - self._start, 1e-6) / 1e6
            self.stream.write(f"\r[{bar:<40}] {pct:5.1f}% {rate:6.1f} MB/s")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()


def scan(
    jobs: Sequence[tuple[str, str]],
    features: Sequence[AnyFeature],
    sections: Mapping[str, object] | None = None,
    *,
    summary: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Read each ``(format, path)`` job to its end with the features' parsers; print the exposition, or
    with ``summary`` the report of the first feature that has one.

    ``sections`` are the features' config sections by feature name (from a config file); a feature
    without one uses its ``absent()`` defaults."""
    out = out or sys.stdout
    err = err or sys.stderr
    lock = threading.Lock()
    sources = SourcesAggregator()
    formats: dict[str, Format] = {}
    parts: list[Part] = []
    for feature in features:
        section = sections[feature.name] if sections and feature.name in sections else feature.absent()
        formats.update((fmt.name, fmt) for fmt in feature.formats(section))
        if feature.format_names:
            parts.extend(feature.parts())
    report = next((r for r in (f.summary() for f in features) if r is not None), None) if summary else None
    if report is not None:
        formats = {name: _tee(fmt, report) for name, fmt in formats.items()}

    total = sum(_size(p) for _, p in jobs)
    bar = Progress(total, err, progress)
    for fmt_name, path in jobs:
        stats = sources.stats(fmt_name)
        pipeline = LinePipeline(stats, [formats[fmt_name]], lock)
        try:
            mtime = os.stat(path).st_mtime if path != "-" else time.time()
            # BSD timestamps have no year: the file's mtime is the latest moment its lines can be from
            pipeline.timestamps.set_reference(mtime)
            before = bar.done
            with open_log(path) as fh:
                stats.up = 1
                read_lines(fh, pipeline.feed, bar)
            # per source, not the running total of every file scanned
            stats.bytes_read += bar.done - before
        except OSError as exc:
            bar.finish()
            err.write(f"mailpulse scan: {path}: {exc.strerror or exc}\n")
            return 1
    bar.finish()
    with lock:
        for fmt in formats.values():
            if fmt.end_of_input is not None:
                fmt.end_of_input()

    if report is not None:
        out.write(report.report(sources))
        return 0
    collector = MailpulseCollector(lock, SelfMetrics(__version__), [*parts, sources])
    out.write(generate_latest(make_registry(collector, process_metrics=False)).decode())
    return 0


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _tee(fmt: Format, summary: Summary) -> Format:
    """The same format, with every event also given to the summary."""
    extra = summary.handler(fmt.name)
    handlers = {}
    for cls in set(fmt.handlers) | set(summary.event_types(fmt.name)):
        handle = fmt.handlers.get(cls)

        def both(event: object, handle: Callable[[object], None] | None = handle) -> None:
            if handle is not None:
                handle(event)
            extra(event)

        handlers[cls] = both
    return Format(
        fmt.name, fmt.parse_line, fmt.parse_fields, handlers, fmt.timestamp_of, fmt.end_batch, fmt.end_of_input
    )
