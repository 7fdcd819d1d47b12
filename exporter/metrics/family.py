"""Metric families declared once, and the plain-number stores that aggregators update.

A :class:`Family` is the single declaration of a metric: name, help, type, label names, buckets. The
same object builds the prometheus_client family at scrape time and the row in docs/metrics.md, so the
reference cannot drift from the code.

Stores are deliberately dumb: a dict from label tuple to number for counters and gauges, fixed-bucket
arrays for histograms. Updating them costs a dict lookup; prometheus_client's own metric objects take
a lock per call, which was too slow for the per-line path.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

Labels = tuple[str, ...]


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Family:
    """One metric family: everything Prometheus and the docs need to know about it."""

    name: str
    help: str
    kind: Kind
    labels: Labels = ()
    buckets: tuple[float, ...] = ()
    # Where the name comes from, for the docs: "kumina" marks postfix_exporter-compatible names.
    compat: str = ""
    # Label values that are pre-created with 0 so rate() and absent() work from the first scrape.
    initial: tuple[Labels, ...] = ()

    def __post_init__(self) -> None:
        if self.kind is Kind.COUNTER and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name} must end in _total")
        if self.kind is Kind.HISTOGRAM and not self.buckets:
            raise ValueError(f"histogram {self.name} needs buckets")

    def new(self) -> CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily:
        if self.kind is Kind.COUNTER:
            return CounterMetricFamily(self.name, self.help, labels=self.labels)
        if self.kind is Kind.GAUGE:
            return GaugeMetricFamily(self.name, self.help, labels=self.labels)
        return HistogramMetricFamily(self.name, self.help, labels=self.labels)

    def from_values(self, values: dict[Labels, float]) -> Metric:
        """Build the family from a counter/gauge store (label tuple → value)."""
        metric = self.new()
        assert not isinstance(metric, HistogramMetricFamily), self.name
        for labels in self.initial:
            if labels not in values:
                metric.add_metric(labels, 0.0)
        for labels, value in values.items():
            metric.add_metric(labels, value)
        return metric

    def from_histograms(self, hists: dict[Labels, Histogram]) -> Metric:
        metric = self.new()
        assert isinstance(metric, HistogramMetricFamily)
        for labels in self.initial:
            if labels not in hists:
                metric.add_metric(labels, Histogram(self.buckets).cumulative(), 0.0)
        for labels, hist in hists.items():
            metric.add_metric(labels, hist.cumulative(), hist.sum)
        return metric


@dataclass(slots=True)
class Histogram:
    """Fixed buckets, non-cumulative counts; made cumulative only when scraped."""

    bounds: Sequence[float]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        # bisect_left puts a value equal to a bound into that bound's bucket: Prometheus's "le".
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((_le(bound), float(running)))
        running += self.counts[-1]
        out.append(("+Inf", float(running)))
        return out

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.sum)


class HistogramVec(dict[Labels, Histogram]):
    """Histograms by label tuple, created on first observation."""

    def __init__(self, bounds: Sequence[float]) -> None:
        super().__init__()
        self.bounds = tuple(bounds)

    def observe(self, labels: Labels, value: float) -> None:
        self.histogram(labels).observe(value)

    def histogram(self, labels: Labels) -> Histogram:
        """The histogram of a label set, created on first use (hot paths keep the object)."""
        hist = self.get(labels)
        if hist is None:
            hist = self[labels] = Histogram(self.bounds)
        return hist

    def snapshot(self) -> dict[Labels, Histogram]:
        return {k: v.copy() for k, v in self.items()}


def _le(bound: float) -> str:
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound))


def exponential(start: float, factor: float, count: int) -> tuple[float, ...]:
    return tuple(start * factor**i for i in range(count))


def families_by_name(families: Iterable[Family]) -> dict[str, Family]:
    table: dict[str, Family] = {}
    for fam in families:
        if fam.name in table:
            raise ValueError(f"metric family {fam.name} declared twice")
        table[fam.name] = fam
    return table


def emit(pairs: Iterable[tuple[Family, dict[Labels, float]]]) -> Iterator[Metric]:
    for family, values in pairs:
        yield family.from_values(values)
