"""Message tracking's section of the status page (shown by the Postfix-logs feature while tracking is on).

Read only from the tracking families' numbers (:class:`TrackingMetrics`: its public counters, histograms
and gauges), never from the tracker's own structures, so the page costs nothing per message and stays
correct whatever the tracker keeps. Totals are since mailpulse started. Transit percentiles are estimated
from the histogram's buckets as Prometheus's ``histogram_quantile`` does (linear within a bucket), so they
are as coarse as the buckets. One row per destination provider: bounded by the provider label's set.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailpulse.exporter.metrics.store import Histogram
from mailpulse.exporter.status import Cell, State, StatusSection, Table, row
from mailpulse.exporter.tracking.metrics import EVICTION_REASONS, TrackingMetrics

QUANTILES = (0.5, 0.9, 0.99)
# outcomes with their own column; the rest (deleted, rejected, discarded, mixed, unknown) are summed
OWN_COLUMNS = ("delivered", "bounced", "expired")
# evictions that mean the tracker lost messages it should have followed (the others are expected)
WARN_EVICTIONS = frozenset(("capacity", "ttl"))


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The q-quantile of a histogram of non-cumulative bucket ``counts`` (the last is +Inf), interpolated
    linearly within its bucket; the highest finite bound when it falls into +Inf; None when empty."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    running = 0.0
    for i, count in enumerate(counts):
        if running + count >= rank and count > 0:
            if i >= len(bounds):
                return bounds[-1] if bounds else None
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * (rank - running) / count
        running += count
    return bounds[-1] if bounds else None


def duration(value: float | None, top: float) -> str:
    """``0.8 s``, ``42 s``, ``12 min``, ``3.1 h``, ``2.0 d``; ``> 6.0 d`` at the top bucket."""
    if value is None:
        return "-"
    prefix = "> " if value >= top else ""
    if value < 10:
        text = f"{value:.1f} s"
    elif value < 120:
        text = f"{value:.0f} s"
    elif value < 7200:
        text = f"{value / 60:.0f} min"
    elif value < 172800:
        text = f"{value / 3600:.1f} h"
    else:
        text = f"{value / 86400:.1f} d"
    return prefix + text


def _merged(histograms: Sequence[Histogram], size: int) -> list[float]:
    counts = [0.0] * size
    for hist in histograms:
        for i, c in enumerate(hist.counts):
            counts[i] += c
    return counts


def _tracker_table(m: TrackingMetrics) -> Table:
    evicted = []
    for reason in EVICTION_REASONS:
        n = m.evicted.get((reason,), 0)
        evicted.append(Cell(f"{n:.0f}", State.WARN if n and reason in WARN_EVICTIONS else None))
    errors = ", ".join(f"{k[0]} {v:.0f}" for k, v in sorted(m.errors.items()) if v)
    orphans = m.orphans.get((), 0)
    return Table(("in flight", "finished kept", *(f"evicted: {r}" for r in EVICTION_REASONS), "orphan lines",
                  "state errors"),
                 (row(str(m.inflight), str(m.finished), *evicted, f"{orphans:.0f}",
                      Cell(errors or "0", State.WARN if errors else None)),),
                 caption="Tracker")  # fmt: skip


def _providers_table(m: TrackingMetrics) -> Table:
    by_provider: dict[str, dict[str, float]] = {}
    for (outcome, _entry, provider), n in m.messages.items():
        outcomes = by_provider.setdefault(provider, {})
        outcomes[outcome] = outcomes.get(outcome, 0.0) + n
    bounds = m.transit.bounds
    rows = []
    for provider, outcomes in sorted(by_provider.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        delivered = [h for (outcome, p), h in m.transit.items() if p == provider and outcome == "delivered"]
        counts = _merged(delivered, len(bounds) + 1)
        percentiles = [duration(quantile(q, bounds, counts), bounds[-1]) for q in QUANTILES]
        other = sum(n for o, n in outcomes.items() if o not in OWN_COLUMNS)
        expired = outcomes.get("expired", 0)
        rows.append(row(provider, f"{outcomes.get('delivered', 0):.0f}",
                        f"{m.deferred_then_delivered.get((provider,), 0):.0f}", f"{outcomes.get('bounced', 0):.0f}",
                        Cell(f"{expired:.0f}", State.WARN if expired else None), f"{other:.0f}",
                        *percentiles))  # fmt: skip
    columns = ("provider", "delivered", "of those deferred first", "bounced", "expired", "other outcomes",
               *(f"transit p{q * 100:g}" for q in QUANTILES))  # fmt: skip
    return Table(columns, tuple(rows), caption="Finished messages by destination provider",
                 empty="no message finished yet")  # fmt: skip


def tracking_section(metrics: TrackingMetrics) -> StatusSection:
    """The section (read under the kernel's lock, which guards the tracking numbers)."""
    note = ("Each message counted once, when its whole journey has left the queue; transit (first accept to "
            "delivery) percentiles estimated from the histogram's buckets.")  # fmt: skip
    return StatusSection("Message tracking", (_tracker_table(metrics), _providers_table(metrics)), note=note)
