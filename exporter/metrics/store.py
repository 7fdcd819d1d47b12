"""The counting primitives every aggregator shares: a counter/gauge store, a capped label set, a capped
cache and the histogram vector.

They are written once here so that a cap, an eviction or a bucket rule means the same thing in every
feature. They stay plain (dicts, a set, fixed bucket arrays) because the per-line handlers update them:
a :class:`Store` hands out the plain dict of each family, so a hot handler keeps its inline
``d[k] = d.get(k, 0) + 1`` (a method call per increment cost about a tenth of the Postfix per-line
budget, and a dict subclass 16% more per increment: CPython 3.11 specialises item access for exact
dicts only), and rarer paths call :meth:`Store.inc`.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from mailpulse.exporter.metrics.family import Family

Labels = tuple[str, ...]
OTHER = "other"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


Counts = dict[Labels, float]  # label tuple → number: one counter's or gauge's values


class Store:
    """The numbers of a set of families: a :data:`Counts` per counter or gauge, a :class:`HistogramVec`
    per histogram, created once (hot handlers bind them), read at scrape time by :meth:`collect`."""

    def __init__(self, families: Iterable[Family]) -> None:
        self.families = tuple(families)
        self.counts: dict[Family, Counts] = {f: {} for f in self.families if f.kind != "histogram"}
        self.hists: dict[Family, HistogramVec] = {
            f: HistogramVec(f.buckets) for f in self.families if f.kind == "histogram"
        }
        # by name too: tests and tools look stores up by the metric's name
        self.values: dict[str, Counts] = {f.name: c for f, c in self.counts.items()}

    def __getitem__(self, family: Family) -> Counts:
        return self.counts[family]

    def hist(self, family: Family) -> HistogramVec:
        return self.hists[family]

    def inc(self, family: Family, labels: Labels = (), amount: float = 1) -> None:
        store = self.values[family.name]  # by name: a str hashes once, a Family on every lookup
        store[labels] = store.get(labels, 0) + amount

    def collect(self, zeros: Mapping[Family, Iterable[Labels]] | None = None) -> Iterator[Metric]:
        """Every family in declaration order; ``zeros`` adds label sets shown as 0 until counted
        (configured names: a symbol, a domain)."""
        for family in self.families:
            hists = self.hists.get(family)
            if hists is not None:
                yield family.from_histograms(hists)
                continue
            values = self.counts[family]
            extra = zeros.get(family) if zeros else None
            if extra:
                values = {**dict.fromkeys(extra, 0.0), **values}
            yield family.from_values(values)


def inc(store: Counts, labels: Labels, amount: float = 1) -> None:
    """``store[labels] += amount`` (for a store held outside a :class:`Store`)."""
    store[labels] = store.get(labels, 0) + amount


class CappedLabels:
    """A bounded set of label values: the first ``cap`` distinct values are kept as they are, any later
    new value becomes ``other``. ``refused`` counts the values turned into ``other`` (one per call), so a
    cap that is too small shows instead of silently merging series.

    A value once admitted stays admitted for the life of the object (its series goes on); whoever wants
    the cap to start afresh (a reload) builds a new one.
    """

    __slots__ = ("_seen", "cap", "refused")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.refused = 0
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        seen = self._seen
        if value in seen:
            return value
        if len(seen) < self.cap:
            seen.add(value)
            return value
        self.refused += 1
        return OTHER

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, value: object) -> bool:
        return value in self._seen


class CappedCache(Generic[K, V]):
    """A bounded mapping for memoised work (label values of a repeating text): at ``cap`` entries the
    oldest entry is evicted (insertion order; the texts that repeat are put back at once), and
    ``evictions`` counts how often, so a cache too small for the traffic shows."""

    __slots__ = ("_data", "cap", "evictions")

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("a cache needs room for one entry")
        self.cap = cap
        self.evictions = 0
        self._data: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        data = self._data
        if key not in data and len(data) >= self.cap:
            del data[next(iter(data))]
            self.evictions += 1
        data[key] = value

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass(slots=True)
class Histogram:
    """One label set's histogram inside a :class:`HistogramVec`: fixed buckets, non-cumulative counts
    (made cumulative only when scraped) and the sum. Hot paths keep the object and update it inline."""

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
    """The one histogram type: histograms by label tuple (``()`` for an unlabelled family), sharing the
    family's buckets, each created on first observation."""

    def __init__(self, bounds: Sequence[float]) -> None:
        super().__init__()
        self.bounds = tuple(bounds)

    def observe(self, labels: Labels, value: float) -> None:
        self.histogram(labels).observe(value)

    def histogram(self, labels: Labels = ()) -> Histogram:
        """The histogram of a label set, created on first use (hot paths keep the object)."""
        hist = self.get(labels)
        if hist is None:
            hist = self[labels] = Histogram(self.bounds)
        return hist

    def ensure(self, labels: Labels) -> None:
        """Create the label set's histogram with zero counts (a configured name shows from the start)."""
        self.histogram(labels)

    def snapshot(self) -> dict[Labels, Histogram]:
        return {k: v.copy() for k, v in self.items()}


def _le(bound: float) -> str:
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound))
