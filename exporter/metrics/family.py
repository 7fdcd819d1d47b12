"""Metric families declared once, and the plain-number stores that aggregators update.

A :class:`Family` is the single declaration of a metric: name, help, type, label names, buckets. The
same object builds the prometheus_client family at scrape time and the row in docs/metrics.md, so the
reference cannot drift from the code.

The stores the aggregators update live in :mod:`exporter.metrics.store` (plain numbers: prometheus_client's
own metric objects take a lock per call, too slow for the per-line path).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from mailpulse.exporter.metrics.store import Histogram, HistogramVec, Labels

__all__ = [
    "Family", "Histogram", "HistogramVec", "Kind", "LabelSets", "LabelValues", "Labels", "bounded", "emit", "enum",
    "exponential", "families_by_name", "label_sets", "named",
]  # fmt: skip


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


# eq=False: a family is its declaration, compared and hashed by identity. Stores are keyed by family, and
# the generated field-wise hash re-hashed the `initial` tuples on every lookup.
@dataclass(frozen=True, eq=False)
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

    def from_values(self, values: Mapping[Labels, float]) -> Metric:
        """Build the family from a counter/gauge store (label tuple → value)."""
        metric = self.new()
        assert not isinstance(metric, HistogramMetricFamily), self.name
        for labels in self.initial:
            if labels not in values:
                metric.add_metric(labels, 0.0)
        for labels, value in values.items():
            metric.add_metric(labels, value)
        return metric

    def from_histograms(self, hists: Mapping[Labels, Histogram]) -> Metric:
        metric = self.new()
        assert isinstance(metric, HistogramMetricFamily)
        for labels in self.initial:
            if labels not in hists:
                metric.add_metric(labels, Histogram(self.buckets).cumulative(), 0.0)
        for labels, hist in hists.items():
            metric.add_metric(labels, hist.cumulative(), hist.sum)
        return metric


@dataclass(frozen=True)
class LabelValues:
    """Where one label's values come from, declared next to the families (docs/metrics.md lists it, and a
    property test holds every emitted value to it):

    * ``enum``: exactly ``values``;
    * ``config``: the names the config key ``config`` gives, plus ``values`` (usually ``other``);
    * ``bounded``: an open set (names seen in the logs) of at most ``cap`` distinct values (``cap_key``
      names the config key that sets it, if any), plus ``values``.
    """

    kind: str
    values: tuple[str, ...] = ()
    config: str = ""
    cap: int = 0
    cap_key: str = ""
    note: str = ""

    def describe(self) -> str:
        fixed = ", ".join(f"`{v}`" for v in self.values)
        if self.kind == "enum":
            return fixed
        if self.kind == "config":
            return f"names from `{self.config}`" + (f", and {fixed}" if fixed else "")
        limit = f"at most {self.cap}" + (f" (`{self.cap_key}`)" if self.cap_key else "")
        return f"{self.note}, {limit} distinct" + (f", then {fixed}" if fixed else "")


def enum(values: Iterable[str]) -> LabelValues:
    return LabelValues("enum", tuple(values))


def named(config: str, *extra: str) -> LabelValues:
    return LabelValues("config", tuple(extra), config=config)


def bounded(cap: int, note: str, *extra: str, cap_key: str = "") -> LabelValues:
    return LabelValues("bounded", tuple(extra), cap=cap, cap_key=cap_key, note=note)


LabelSets = Mapping[tuple[str, str], LabelValues]  # (family name, label) → its values


def label_sets(
    families: Iterable[Family],
    by_label: Mapping[str, LabelValues],
    by_family: Mapping[tuple[Family, str], LabelValues] | None = None,
) -> dict[tuple[str, str], LabelValues]:
    """Each label of each family with its declared values: ``by_family`` for a label whose meaning is the
    family's own, else ``by_label`` by label name. A label without a declaration is a programming error,
    raised at import."""
    table: dict[tuple[str, str], LabelValues] = {}
    specific = {(f.name, label): v for (f, label), v in (by_family or {}).items()}
    for fam in families:
        for label in fam.labels:
            values = specific.get((fam.name, label)) or by_label.get(label)
            if values is None:
                raise ValueError(f"{fam.name}: label {label!r} does not declare its values")
            table[(fam.name, label)] = values
    return table


def exponential(start: float, factor: float, count: int) -> tuple[float, ...]:
    return tuple(start * factor**i for i in range(count))


def families_by_name(families: Iterable[Family]) -> dict[str, Family]:
    table: dict[str, Family] = {}
    for fam in families:
        if fam.name in table:
            raise ValueError(f"metric family {fam.name} declared twice")
        table[fam.name] = fam
    return table


def emit(pairs: Iterable[tuple[Family, Mapping[Labels, float]]]) -> Iterator[Metric]:
    for family, values in pairs:
        yield family.from_values(values)
