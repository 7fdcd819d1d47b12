"""The per-message families of message tracking, and the numbers behind them.

Counted once per message, at its root (the queue file it entered by: smtpd or pickup), when its whole
journey (re-injections, hops, forwards) has left the queue, or when the tracker gives up on it (evicted).
The queue ID of the root travels as an OpenMetrics exemplar on the transit histogram: zero cardinality,
and Grafana can jump from a slow bucket to the log lines.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.samples import Exemplar

from mailpulse.exporter.metrics.family import Family, Kind, Labels, enum, label_sets, named
from mailpulse.exporter.metrics.postfix import DELIVERIES
from mailpulse.exporter.metrics.postfix import LABEL_SETS as POSTFIX_LABEL_SETS
from mailpulse.exporter.metrics.store import Counts, Histogram, HistogramVec, Store
from mailpulse.parsers.postfix.providers import MIXED, PROVIDERS

OUTCOMES = ("delivered", "bounced", "expired", "deleted", "rejected", "discarded", "mixed", "unknown")
EVICTION_REASONS = ("capacity", "ttl", "restart", "reused")
STATE_ERRORS = ("corrupt", "write", "reconcile")
LINK_KINDS = ("handoff", "forward", "notice")
# first accept -> final outcome: seconds for a local delivery to days for an expiry (5 d + slack)
TRANSIT_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 2 * 86400, 6 * 86400)
ATTEMPT_BUCKETS = (1, 2, 3, 5, 10, 20, 50)

MESSAGES = Family(
    "mailpulse_postfix_messages_total",
    "Messages whose journey ended, once per message across content-filter re-injection and internal hops, by "
    "final outcome, entry service (the smtpd or pickup service it was received by) and destination provider.",
    Kind.COUNTER, ("outcome", "entry", "provider"),
)  # fmt: skip
TRANSIT = Family(
    "mailpulse_postfix_message_transit_seconds",
    "Time from a message's first accept to its final outcome, across re-injection and hops (one observation "
    "per message; the root queue ID is the exemplar).",
    Kind.HISTOGRAM, ("outcome", "provider"), TRANSIT_BUCKETS,
)  # fmt: skip
ATTEMPTS = Family(
    "mailpulse_postfix_message_delivery_attempts",
    "Delivery attempts (final and deferred, hand-offs excluded) a message took until its final outcome.",
    Kind.HISTOGRAM, ("outcome",), ATTEMPT_BUCKETS,
)  # fmt: skip
DEFERRED_THEN_DELIVERED = Family(
    "mailpulse_postfix_messages_deferred_then_delivered_total",
    "Messages delivered after at least one deferral, by destination provider.",
    Kind.COUNTER, ("provider",),
)  # fmt: skip
INFLIGHT = Family(
    "mailpulse_postfix_tracking_inflight_messages",
    "Queue files the tracker follows (received, not yet removed).", Kind.GAUGE,
)  # fmt: skip
FINISHED = Family(
    "mailpulse_postfix_tracking_finished_messages",
    "Finished messages kept for timeline queries (postfix.tracking.keep_finished).", Kind.GAUGE,
)  # fmt: skip
EVICTED = Family(
    "mailpulse_postfix_tracking_evicted_total",
    "Messages the tracker gave up on without a final outcome: capacity (the cap was reached), ttl (older than "
    "postfix.tracking.ttl), restart (left the queue while mailpulse was down), reused (its queue ID came back "
    "before its removal was logged).",
    Kind.COUNTER, ("reason",), initial=tuple((r,) for r in EVICTION_REASONS),
)  # fmt: skip
LINKS = Family(
    "mailpulse_postfix_tracking_links_total",
    "Parent-child links the tracker made: handoff (content filter re-injection or internal hop, 'queued as'), "
    "forward (local's 'forwarded as'), notice (a bounce or delay notification).",
    Kind.COUNTER, ("kind",),
)  # fmt: skip
STATE_ERRORS_FAMILY = Family(
    "mailpulse_postfix_tracking_state_errors_total",
    "Tracker state problems: corrupt (the state file was unreadable and ignored), write (it could not be "
    "saved), reconcile (postqueue -j failed at start, so nothing was reconciled).",
    Kind.COUNTER, ("reason",),
)  # fmt: skip
ORPHANS = Family(
    "mailpulse_postfix_tracking_orphan_lines_total",
    "Lines about a queue ID the tracker does not follow (it entered before the tracker started, or was evicted).",
    Kind.COUNTER,
)  # fmt: skip

FAMILIES = (
    MESSAGES, TRANSIT, ATTEMPTS, DEFERRED_THEN_DELIVERED, INFLIGHT, FINISHED, EVICTED, LINKS, STATE_ERRORS_FAMILY,
    ORPHANS,
)  # fmt: skip

PROVIDER_VALUES = named("postfix.providers", *PROVIDERS, MIXED)
LABEL_SETS = label_sets(
    FAMILIES,
    {
        "outcome": enum(OUTCOMES),
        "entry": POSTFIX_LABEL_SETS[(DELIVERIES.name, "service")],
        "provider": PROVIDER_VALUES,
        "reason": enum(EVICTION_REASONS),
        "kind": enum(LINK_KINDS),
    },
    {(STATE_ERRORS_FAMILY, "reason"): enum(STATE_ERRORS)},
)


class TrackingMetrics:
    """Counts per message. Updated under the pipeline's lock, read by the scrape under the same lock."""

    families = FAMILIES

    def __init__(self) -> None:
        self.store = Store(f for f in FAMILIES if f not in (INFLIGHT, FINISHED))
        self.messages: Counts = self.store[MESSAGES]
        self.deferred_then_delivered: Counts = self.store[DEFERRED_THEN_DELIVERED]
        self.evicted: Counts = self.store[EVICTED]
        self.links: Counts = self.store[LINKS]
        self.errors: Counts = self.store[STATE_ERRORS_FAMILY]
        self.orphans: Counts = self.store[ORPHANS]
        self.transit: HistogramVec = self.store.hist(TRANSIT)
        self.attempts: HistogramVec = self.store.hist(ATTEMPTS)
        # the latest (queue ID, transit) of each transit bucket, by label set; made Exemplars at scrape time
        self.exemplars: dict[Labels, list[tuple[str, float] | None]] = {}
        self.inflight = 0
        self.finished = 0
        self.enabled = False

    def finish(self, outcome: str, entry: str, provider: str, transit: float, attempts: int, deferred: int,
               qid: str) -> None:  # fmt: skip
        key = (outcome, entry, provider)
        d = self.messages
        d[key] = d.get(key, 0) + 1
        labels = (outcome, provider)
        # once per message: the histograms are updated inline (HistogramVec.observe is three calls deep)
        hist = self.transit.get(labels) or self.transit.histogram(labels)
        transit = max(transit, 0.0)
        slot = bisect_left(hist.bounds, transit)
        hist.counts[slot] += 1
        hist.sum += transit
        marks = self.exemplars.get(labels)
        if marks is None:
            marks = self.exemplars[labels] = [None] * len(hist.counts)
        marks[slot] = (qid, transit)
        key1 = (outcome,)
        tries = self.attempts.get(key1) or self.attempts.histogram(key1)
        tries.counts[bisect_left(tries.bounds, attempts)] += 1
        tries.sum += float(attempts)
        if outcome == "delivered" and deferred:
            k = (provider,)
            self.deferred_then_delivered[k] = self.deferred_then_delivered.get(k, 0) + 1

    def evict(self, reason: str, count: int = 1) -> None:
        k = (reason,)
        self.evicted[k] = self.evicted.get(k, 0) + count

    def link(self, kind: str) -> None:
        k = (kind,)
        self.links[k] = self.links.get(k, 0) + 1

    def error(self, reason: str) -> None:
        k = (reason,)
        self.errors[k] = self.errors.get(k, 0) + 1

    def collect(self) -> Iterator[Metric]:
        if not self.enabled:
            return
        for metric in self.store.collect():
            if metric.name == TRANSIT.name:
                yield self._transit()
            else:
                yield metric
        yield INFLIGHT.from_values({(): float(self.inflight)})
        yield FINISHED.from_values({(): float(self.finished)})

    def _transit(self) -> Metric:
        metric = HistogramMetricFamily(TRANSIT.name, TRANSIT.help, labels=TRANSIT.labels)
        for labels, hist in self.transit.items():
            marks = self.exemplars.get(labels) or []
            buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
            for i, (le, value) in enumerate(_cumulative(hist)):
                mark = marks[i] if i < len(marks) else None
                if mark is None:
                    buckets.append((le, value))
                else:
                    # no timestamp: Prometheus takes the scrape's (a log-time stamp would be out of order after a
                    # backlog)
                    buckets.append((le, value, Exemplar({"queue_id": mark[0]}, mark[1])))
            metric.add_metric(labels, buckets, hist.sum)
        return metric


def _cumulative(hist: Histogram) -> list[tuple[str, float]]:
    return hist.cumulative()
