"""``mailpulse scan --openmetrics``: the scan's families at the log's own times, for Prometheus backfill.

``promtool tsdb create-blocks-from openmetrics FILE DIR`` turns OpenMetrics text with timestamps into
TSDB blocks. A plain scan prints one sample per series (the totals at the end, no timestamp: useless
for history). Here the lines are fed in steps of log time (``--step``, default 1h): whenever the next
line's timestamp falls into a later step, the collector's families are snapshotted at the end of the
step the lines so far belong to, and once more at the last line's time. A counter thus climbs through
the log's hours as it did live, and ``increase()`` over the backfilled range has the log's shape.

The boundary inside a batch is found by bisection on the lines' timestamps (logs are in time order;
a line without a readable timestamp goes with the step before it), so the cost is a few timestamp
parses per step, not one per line. Snapshots are kept in memory until the end (OpenMetrics wants each
family's samples together and each series' points in time order), packed into arrays: 8 bytes per
value and timestamp (a 30-day log's 400 series at 5-minute steps, 3.4 million samples: 289 MB for the
whole scan; hourly: 54 MB; docs/backfill.md).
"""

from __future__ import annotations

import math
import os
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TextIO

from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.samples import Sample

from mailpulse.exporter.pipeline import Format, LinePipeline
from mailpulse.parsers.syslog import TimestampParser

DEFAULT_STEP = 3600.0
MIN_STEP = 60.0
PEEK_BYTES = 16 << 10
_POINT_LABELS = ("le", "quantile")  # labels that belong to one point of a histogram/summary, not its series


# One series of a family: the labels without le/quantile, and the (sample name, labels) of each of its
# samples at one time (one for a counter or gauge; buckets, count and sum for a histogram).
_SeriesKey = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, tuple[tuple[str, str], ...]], ...]]


class _Points:
    """One series' values over time, packed: 8 bytes per timestamp and per sample value."""

    __slots__ = ("times", "values")

    def __init__(self) -> None:
        self.times = array("d")
        self.values = array("d")


class Snapshots:
    """The families of ``collect()`` at each snapshot time, merged into one timestamped exposition."""

    def __init__(self, collect: Callable[[], Iterable[Metric]], labels: Mapping[str, str] | None = None) -> None:
        self._collect = collect
        self._labels = tuple(sorted((labels or {}).items()))
        self._meta: dict[str, Metric] = {}  # family name -> an empty Metric with its HELP, TYPE and unit
        self._series: dict[str, dict[_SeriesKey, _Points]] = {}
        self.last: float | None = None  # time of the last snapshot

    def take(self, ts: float) -> None:
        if self.last is not None and ts <= self.last:
            return  # one point per series and time: a later snapshot at the same time adds nothing
        self.last = ts
        for metric in self._collect():
            if metric.name not in self._meta:
                self._meta[metric.name] = Metric(metric.name, metric.documentation, metric.type, metric.unit)
                self._series[metric.name] = {}
            grouped: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
            for sample in metric.samples:
                if not sample.name.endswith("_created"):  # a scan's creation times are the scan's, not the log's
                    series = tuple(sorted((k, v) for k, v in sample.labels.items() if k not in _POINT_LABELS))
                    grouped.setdefault(series, []).append(sample)
            store = self._series[metric.name]
            for series, samples in grouped.items():
                shape = tuple((s.name, tuple(sorted(s.labels.items()))) for s in samples)
                points = store.get((series, shape))
                if points is None:
                    points = store[(series, shape)] = _Points()
                points.times.append(ts)
                points.values.extend(s.value for s in samples)

    def write(self, out: TextIO) -> None:
        """Each family once, each series' points in time order, ``# EOF`` at the end. prometheus_client
        renders one series at a time (its HELP/TYPE lines kept for the family's first series only), so
        memory holds one series' samples, not a family's."""
        for name, meta in self._meta.items():
            first = True
            for (_series, shape), points in self._series[name].items():
                metric = Metric(meta.name, meta.documentation, meta.type, meta.unit)
                width = len(shape)
                for i, ts in enumerate(points.times):
                    values = points.values[i * width : (i + 1) * width]
                    metric.samples.extend(
                        Sample(sample_name, dict((*labels, *self._labels)), value, ts)
                        for (sample_name, labels), value in zip(shape, values, strict=True)
                    )
                text: bytes = generate_latest(_Registry([metric]))  # type: ignore[no-untyped-call]
                lines = text.decode().splitlines(keepends=True)
                out.writelines(line for line in lines if (first and line != "# EOF\n") or not line.startswith("#"))
                first = False
        out.write("# EOF\n")


class _Registry:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


class SteppedFeed:
    """Feed a pipeline in steps of log time, snapshotting at every step boundary the lines cross."""

    def __init__(self, pipeline: LinePipeline, snapshots: Snapshots, step: float) -> None:
        self.pipeline = pipeline
        self.snapshots = snapshots
        self.step = step
        self.bucket: int | None = None  # the step of the lines fed so far
        self.last_time: float | None = None

    def line_time(self, line: str) -> float | None:
        for fmt in self.pipeline.formats:
            raw = fmt.timestamp_of(line)
            if raw is not None:
                return self.pipeline.timestamps(raw)
        return None

    def _bucket_of(self, lines: Sequence[str], i: int) -> int | None:
        """The step of line ``i``, or of the nearest earlier line with a readable timestamp."""
        for j in range(i, max(i - 50, -1), -1):
            ts = self.line_time(lines[j])
            if ts is not None:
                return math.floor(ts / self.step)
        return None

    def __call__(self, lines: Sequence[str]) -> None:
        start = 0
        while start < len(lines):
            first = self._bucket_of(lines, start)
            if self.bucket is None:
                self.bucket = first
            elif first is not None and first > self.bucket:
                self.snapshots.take((self.bucket + 1) * self.step)  # the counts at the end of the step fed
                self.bucket = first
            end = self._end_of_bucket(lines, start)
            self.pipeline.feed(lines[start:end])
            start = end
        ts = self._last_time(lines)
        if ts is not None:
            self.last_time = ts if self.last_time is None else max(self.last_time, ts)

    def _end_of_bucket(self, lines: Sequence[str], start: int) -> int:
        """The first index after ``start`` whose step is later than the current one (bisection)."""
        if self.bucket is None:
            return len(lines)
        last = self._bucket_of(lines, len(lines) - 1)
        if last is None or last <= self.bucket:
            return len(lines)
        lo, hi = start + 1, len(lines) - 1  # lines[hi] is in a later step
        while lo < hi:
            mid = (lo + hi) // 2
            bucket = self._bucket_of(lines, mid)
            if bucket is not None and bucket > self.bucket:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _last_time(self, lines: Sequence[str]) -> float | None:
        for line in reversed(lines[-50:]):
            ts = self.line_time(line)
            if ts is not None:
                return ts
        return None

    def finish(self) -> None:
        """The final snapshot, at the last line's time (at least one sample even for a log of one step)."""
        if self.last_time is not None:
            self.snapshots.take(self.last_time)


def in_time_order(jobs: Sequence[tuple[str, str]], formats: Mapping[str, Format],
                  open_log: Callable[[str], IO[bytes]]) -> list[tuple[str, str]]:  # fmt: skip
    """The files ordered by the time of their first line (``mail.log mail.log.1 mail.log.2.gz`` is the
    usual order to give them in, newest first); a file without a readable time keeps its place at the end."""

    def first_time(job: tuple[str, str]) -> float:
        fmt_name, path = job
        parser = TimestampParser()
        try:
            parser.set_reference(os.stat(path).st_mtime)
            with open_log(path) as fh:
                head = fh.read(PEEK_BYTES).decode("utf-8", "replace").splitlines()
        except OSError:
            return math.inf  # the scan reports it
        for line in head[:-1] or head:  # the last piece may be cut
            raw = formats[fmt_name].timestamp_of(line)
            ts = parser(raw) if raw is not None else None
            if ts is not None:
                return ts
        return math.inf

    if any(path == "-" for _, path in jobs):
        return list(jobs)  # stdin cannot be peeked at
    return sorted(jobs, key=first_time)


def parse_labels(pairs: Sequence[str]) -> dict[str, str] | str:
    """``NAME=VALUE`` pairs as a dict, or the problem with the first bad one."""
    labels: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not (name[0].isalpha() or name[0] == "_") or not name.replace("_", "a").isalnum():
            return f"--label {pair!r}: expected NAME=VALUE with a Prometheus label name"
        if name.startswith("__"):
            return f"--label {pair!r}: names starting with __ are reserved"
        labels[name] = value
    return labels
