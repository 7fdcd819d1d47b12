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
from typing import IO, TYPE_CHECKING, TextIO, cast

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest

from mailpulse.exporter import __version__
from mailpulse.exporter.feature import AnyFeature, Summary
from mailpulse.exporter.metrics.collector import MailpulseCollector, Part, SelfMetrics, make_registry
from mailpulse.exporter.metrics.sources import SourcesAggregator
from mailpulse.exporter.pipeline import Format, LinePipeline
from mailpulse.exporter.sources.lines import read_batches

if TYPE_CHECKING:  # loaded only by --openmetrics
    from mailpulse.exporter.backfill import Snapshots, SteppedFeed


def open_log(path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")


def read_lines(fh: IO[bytes], feed: Callable[[Sequence[str]], None], progress: Callable[[int], None]) -> None:
    """Feed whole lines in large batches, split exactly as the tailer splits them (a trailing ``\\r`` of
    CRLF logs is dropped)."""
    for batch in read_batches(fh, progress):
        feed(batch)


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
    inputs: Sequence[tuple[AnyFeature, str, Sequence[str]]] = (),
    openmetrics_step: float | None = None,
    labels: Mapping[str, str] | None = None,
) -> int:
    """Read each ``(format, path)`` job to its end with the features' parsers; print the exposition, or
    with ``summary`` the report of the first feature that has one, or with ``openmetrics_step`` the
    families at every step of log time, timestamped, for ``promtool tsdb create-blocks-from openmetrics``
    (exporter/backfill.py), with ``labels`` added to every sample.

    ``sections`` are the features' config sections by feature name (from a config file); a feature
    without one uses its ``absent()`` defaults. ``inputs`` are features' own inputs (``--reports PATH...``),
    read by each feature's ``scan_paths``."""
    out = out or sys.stdout
    err = err or sys.stderr
    lock = threading.Lock()
    sources = SourcesAggregator()
    formats: dict[str, Format] = {}
    parts: list[Part] = []
    scanned = {name for name, _ in jobs}
    for feature in features:
        section = sections[feature.name] if sections and feature.name in sections else feature.absent()
        formats.update((fmt.name, fmt) for fmt in feature.formats(section))
        # a backfill holds only what the logs tell: no zeros of features whose logs were not given;
        # `scan --reports` alone prints no empty log families
        if feature.format_names and jobs and (openmetrics_step is None or scanned & set(feature.format_names)):
            parts.extend(feature.parts())
    for feature, flag, paths in inputs:
        section = sections[feature.name] if sections and feature.name in sections else feature.absent()
        status = feature.scan_paths(section, flag, paths, err)
        if status:
            return status
        parts.extend(p for p in feature.parts() if p not in parts)
    report = next((r for r in (f.summary() for f in features) if r is not None), None) if summary else None
    if report is not None:
        formats = {name: _tee(fmt, report) for name, fmt in formats.items()}

    total = sum(_size(p) for _, p in jobs)
    bar = Progress(total, err, progress)
    snapshots: Snapshots | None = None
    feeds: list[SteppedFeed] | None = None
    if openmetrics_step is not None:
        from mailpulse.exporter.backfill import Snapshots, in_time_order  # noqa: PLC0415

        if len(scanned) > 1:
            err.write("mailpulse scan: --openmetrics takes one kind of log per run (their times overlap); run it "
                      "once per kind, promtool adds each output to the same directory\n")  # fmt: skip
            return 2
        jobs = in_time_order(jobs, formats, open_log)  # rotated files are usually given newest first
        snapshots = Snapshots(lambda: _backfill_families(lock, parts, sources), labels)
        feeds = []
    if snapshots is None:
        merged = _merge_groups(jobs)
        if merged:
            status = _scan_merged(merged, formats, sources, lock, bar, err)
            if status:
                return status
            jobs = [job for job in jobs if job[0] not in merged]
    for fmt_name, path in jobs:
        stats = sources.stats(fmt_name)
        pipeline = LinePipeline(stats, [formats[fmt_name]], lock)
        feed: Callable[[Sequence[str]], None] = pipeline.feed
        if snapshots is not None and feeds is not None and openmetrics_step is not None:
            from mailpulse.exporter.backfill import SteppedFeed  # noqa: PLC0415

            stepped = SteppedFeed(pipeline, snapshots, openmetrics_step)
            # one time line over the files: the step the previous file ended in is closed by this one's lines
            stepped.bucket = feeds[-1].bucket if feeds else None
            feeds.append(stepped)
            feed = stepped
        try:
            mtime = os.stat(path).st_mtime if path != "-" else time.time()
            # BSD timestamps have no year: the file's mtime is the latest moment its lines can be from
            pipeline.timestamps.set_reference(mtime)
            before = bar.done
            with open_log(path) as fh:
                stats.up = 1
                read_lines(fh, feed, bar)
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
    if snapshots is not None and feeds is not None:
        ends = [f.last_time for f in feeds if f.last_time is not None]
        if not ends:
            err.write("mailpulse scan: no line with a readable timestamp: nothing to backfill\n")
            return 1
        end = max(ends)  # the totals at the last line of all files
        if snapshots.last is not None and end <= snapshots.last:
            end = snapshots.last + 1.0
        snapshots.take(end)
        snapshots.write(out)
        return 0
    collector = MailpulseCollector(lock, SelfMetrics(__version__), [*parts, sources])
    out.write(generate_latest(make_registry(collector, process_metrics=False)).decode())
    return 0


# Of the log-source families, only the line counts are history; the rest (up, lag, read times and bytes)
# describe the scan itself.
BACKFILL_SOURCE_FAMILIES = frozenset(("mailpulse_log_lines_total", "mailpulse_log_rule_errors_total"))


def _backfill_families(lock: threading.Lock, parts: Sequence[Part], sources: SourcesAggregator) -> list[Metric]:
    with lock:
        metrics = [m for part in parts for m in part.collect()]
        metrics += [m for m in sources.collect() if m.name + "_total" in BACKFILL_SOURCE_FAMILIES
                    or m.name in BACKFILL_SOURCE_FAMILIES]  # fmt: skip
    return metrics


def _merge_groups(jobs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """The kinds of log given as several files (not stdin): read merged in time order (exporter/scanmerge.py)."""
    paths: dict[str, list[str]] = {}
    for fmt_name, path in jobs:
        paths.setdefault(fmt_name, []).append(path)
    return {name: p for name, p in paths.items() if len(p) > 1 and "-" not in p}


def _scan_merged(merged: Mapping[str, list[str]], formats: Mapping[str, Format], sources: SourcesAggregator,
                 lock: threading.Lock, bar: Progress, err: TextIO) -> int:  # fmt: skip
    """Read each kind's files as one stream, their lines in time order: several hosts' logs join by queue ID
    as a central log would (a hop's two sides are in different files)."""
    from mailpulse.exporter.scanmerge import merged_batches  # noqa: PLC0415

    for fmt_name, paths in merged.items():
        stats = sources.stats(fmt_name)
        fmt = formats[fmt_name]
        pipeline = LinePipeline(stats, [fmt], lock)
        try:
            # the latest file's mtime bounds every line's year (the merge orders lines by their own file's)
            pipeline.timestamps.set_reference(max(os.stat(p).st_mtime for p in paths))
            before = bar.done
            stats.up = 1
            for batch in merged_batches(paths, open_log, fmt.timestamp_of, bar):
                pipeline.feed(batch)
            stats.bytes_read += bar.done - before
        except OSError as exc:
            bar.finish()
            err.write(f"mailpulse scan: {exc.filename or ', '.join(paths)}: {exc.strerror or exc}\n")
            return 1
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
