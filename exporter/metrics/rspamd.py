"""rspamd log metrics: the families and the aggregator that turns rspamd events into numbers.

Every name starts with ``mailpulse_rspamd_`` so it never collides with rspamd's own ``rspamd_*`` metrics,
which sites often scrape as well. Labels are fixed enums (parsers.rspamd.vocab) or names from the
``rspamd:`` config section; anything else is "other".

The verdict line is the source of everything per message (it is logged at notice level, so it survives
``level = "notice"``); the side lines (errors, lifecycle, greylisting, ratelimits, learns) need the
default info level.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from math import fsum, isnan
from typing import Any, TypeVar

from prometheus_client.core import Metric

from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.metrics.family import Family, Kind, Labels, bounded, enum, label_sets, named
from mailpulse.exporter.metrics.rspamd_labels import RspamdLabeller
from mailpulse.exporter.metrics.store import CappedLabels, Histogram, Store
from mailpulse.parsers.results import Unparsed
from mailpulse.parsers.rspamd import vocab
from mailpulse.parsers.rspamd.events import (
    RspamdError,
    RspamdGreylist,
    RspamdLearn,
    RspamdLifecycle,
    RspamdRatelimit,
    RspamdRepeated,
    RspamdScan,
)
from mailpulse.parsers.rspamd.vocab import AUTH_METHODS, AUTH_RESULTS, ERROR_CLASSES, OTHER, SCAN_ACTIONS

C, H = Kind.COUNTER, Kind.HISTOGRAM
K = TypeVar("K")
N = TypeVar("N", int, float)

# Around the default thresholds (greylist 4, add header 6, rewrite subject 8, reject 15) and the usual
# range of ham (-5..0); settings can move the thresholds, 50 catches the far tail.
SCORE_BUCKETS = (
    -10.0,
    -5.0,
    -2.0,
    -1.0,
    0.0,
    1.0,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
    7.0,
    8.0,
    10.0,
    12.0,
    15.0,
    20.0,
    30.0,
    50.0,
)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = tuple(float(1024 * 4**i) for i in range(10))  # 1 KiB .. 256 MiB
GREYLIST_RESULTS = ("new", "too_early", "pass")
LEARN_CLASSES = ("spam", "ham", "unknown")
LEARN_RESULTS = ("learned", "skipped", "failed")
UNPARSED_KINDS = ("verdict", "prefix")
MAX_RATELIMIT_BUCKETS = 20
YES_NO = ("true", "false")

SCANS = Family(
    "mailpulse_rspamd_scans_total",
    "Messages scanned (verdict lines), by the action rspamd took: no_action, greylist, add_header, "
    "rewrite_subject, soft_reject, reject, or other (discard, quarantine, custom actions). A soft reject "
    "forced by the greylist module counts as greylist; other soft rejects (ratelimit, prefilters) stay "
    "soft_reject. The T/F flag of the line is not used.",
    C, ("action",), initial=tuple((a,) for a in SCAN_ACTIONS),
)  # fmt: skip
FORCED = Family(
    "mailpulse_rspamd_forced_actions_total",
    "Scans whose action a module forced (the line's 'forced: <action> ... (set by <module>)'), by that "
    "action and module: rspamd's own modules (greylist, ratelimit, gtube, dmarc, clamav, multimap, "
    "force_actions, task_timeout, ...) and those configured in rspamd.forced_modules; other modules are 'other'.",
    C, ("action", "module"),
)  # fmt: skip
SCORE = Family(
    "mailpulse_rspamd_scan_score",
    "Score of scanned messages (nan scores are not observed). Buckets sit around rspamd's default "
    "thresholds: greylist 4, add header 6, rewrite subject 8, reject 15. No _sum and _count: the buckets "
    "go below zero (an OpenMetrics rule); the +Inf bucket is the count.",
    H, buckets=SCORE_BUCKETS,
)  # fmt: skip
DURATION = Family(
    "mailpulse_rspamd_scan_duration_seconds",
    "Wall time of a scan as logged ('time:'), DNS waits included.",
    H, buckets=DURATION_BUCKETS,
)  # fmt: skip
SIZE = Family("mailpulse_rspamd_message_size_bytes", "Size of scanned messages ('len:').", H, buckets=SIZE_BUCKETS)
AUTH = Family(
    "mailpulse_rspamd_auth_results_total",
    "Scans by authentication method (dkim, spf, dmarc, arc) and result, from the R_DKIM_*, R_SPF_*, "
    "DMARC_* and ARC_* symbols; one result per method and scan (several DKIM signatures: allow wins over "
    "reject over tempfail over permfail over na); 'none' when the method did not run (local or "
    "authenticated senders, GTUBE, checks disabled).",
    C, ("method", "result"), initial=tuple((m, r) for m in AUTH_METHODS for r in AUTH_RESULTS[m]),
)  # fmt: skip
SIGNATURES = Family(
    "mailpulse_rspamd_dkim_signatures_total",
    "DKIM signatures rspamd added (DKIM_SIGNED), by signing domain: the domains in rspamd.signing_domains, "
    "every other domain as 'other'.",
    C, ("domain",),
)  # fmt: skip
AUTHENTICATED = Family(
    "mailpulse_rspamd_authenticated_scans_total",
    "Scans of messages from SMTP-authenticated users ('user:' on the line), by whether rspamd DKIM-signed "
    "them: a rise of signed=\"false\" means signing stopped (missing key, From/envelope domain mismatch).",
    C, ("signed",), initial=(("true",), ("false",)),
)  # fmt: skip
VIRUSES = Family(
    "mailpulse_rspamd_virus_detections_total",
    "Scans in which an antivirus scanner found a virus (its symbol, e.g. CLAM_VIRUS, is present), by the "
    "scanner label configured in rspamd.antivirus.",
    C, ("scanner",),
)  # fmt: skip
AV_FAILURES = Family(
    "mailpulse_rspamd_antivirus_failures_total",
    "Scans in which an antivirus scanner failed (its <symbol>_FAIL, e.g. CLAM_VIRUS_FAIL, is present); the "
    "message was judged without it.",
    C, ("scanner",),
)  # fmt: skip
SYMBOLS = Family(
    "mailpulse_rspamd_symbol_hits_total",
    "Scans in which a symbol fired, for the symbols listed in rspamd.symbols only.",
    C, ("symbol",),
)  # fmt: skip
ERRORS = Family(
    "mailpulse_rspamd_errors_total",
    "rspamd log lines reporting a failure, by class: redis, dns, upstream, map, lua, antivirus, dkim_key, "
    "dkim_sign, milter, task_timeout, other (other only with log_severity). Lines collapsed into "
    "'Last message repeated N times' are counted N times.",
    C, ("class",), initial=tuple((c,) for c in ERROR_CLASSES),
)  # fmt: skip
LIFECYCLE = Family(
    "mailpulse_rspamd_lifecycle_events_total",
    "Daemon and worker lifecycle from the main process: start, reload, stop, worker_start, worker_exit, "
    "worker_crash, worker_respawn; process is the worker type concerned (main, normal, controller, "
    "rspamd_proxy, hs_helper, fuzzy, ...).",
    C, ("event", "process"),
)  # fmt: skip
GREYLIST = Family(
    "mailpulse_rspamd_greylist_checks_total",
    "greylist module decisions (info lines): new (first attempt greylisted), too_early (retry before the "
    "greylist time, greylisted again), pass (retry accepted).",
    C, ("result",), initial=tuple((r,) for r in GREYLIST_RESULTS),
)  # fmt: skip
RATELIMITS = Family(
    "mailpulse_rspamd_ratelimit_exceeded_total",
    f"Ratelimit buckets exceeded (info lines), by bucket rule name (to, to_ip, user, ...; at most "
    f"{MAX_RATELIMIT_BUCKETS}, then 'other').",
    C, ("bucket",),
)  # fmt: skip
LEARNS = Family(
    "mailpulse_rspamd_learns_total",
    "Bayes learns through the controller, by class (spam, ham, unknown) and result: learned, skipped "
    "(already learned), failed.",
    C, ("class", "result"),
)  # fmt: skip
UNPARSED = Family(
    "mailpulse_rspamd_unparsed_lines_total",
    "rspamd lines mailpulse could not read: kind=verdict for a rspamd_task_write_log line of an unknown "
    "log_format, kind=prefix for a line without an rspamd prefix.",
    C, ("kind",), initial=tuple((k,) for k in UNPARSED_KINDS),
)  # fmt: skip
TRUNCATED = Family(
    "mailpulse_rspamd_truncated_verdicts_total",
    "Verdict lines cut inside the symbol list (rspamd's 8 KiB log line limit): their symbols after the cut "
    "are missing from the symbol-based families.",
    C,
)  # fmt: skip

FAMILIES: tuple[Family, ...] = (
    SCANS, FORCED, SCORE, DURATION, SIZE, AUTH, SIGNATURES, AUTHENTICATED, VIRUSES, AV_FAILURES, SYMBOLS,
    ERRORS, LIFECYCLE, GREYLIST, RATELIMITS, LEARNS, UNPARSED, TRUNCATED,
)  # fmt: skip

LABEL_SETS = label_sets(
    FAMILIES,
    {
        "action": enum(SCAN_ACTIONS),
        "module": named("rspamd.forced_modules", *sorted(vocab.FORCED_MODULES), OTHER),
        "method": enum(AUTH_METHODS),
        "result": enum(dict.fromkeys(r for m in AUTH_METHODS for r in AUTH_RESULTS[m])),
        "domain": named("rspamd.signing_domains", OTHER),
        "signed": enum(YES_NO),
        "scanner": named("rspamd.antivirus"),
        "symbol": named("rspamd.symbols"),
        "class": enum(ERROR_CLASSES),
        "event": enum(vocab.LIFECYCLE_EVENTS),
        "process": enum((*sorted(vocab.PROCESS_TYPES), OTHER)),
        "bucket": bounded(MAX_RATELIMIT_BUCKETS, "ratelimit rule names", OTHER),
        "kind": enum(UNPARSED_KINDS),
    },
    {
        (GREYLIST, "result"): enum(GREYLIST_RESULTS),
        (LEARNS, "class"): enum(LEARN_CLASSES),
        (LEARNS, "result"): enum(LEARN_RESULTS),
    },
)

_GREYLIST_KEYS = {("greylisted", "new_record"): ("new",), ("greylisted", "too_early"): ("too_early",)}
BATCH = 1024  # verdicts queued before they are counted (and always at the end of the pipeline's batch)


class RspamdAggregator:
    """Counts rspamd events. Not thread-safe by itself: the pipeline serialises updates and scrapes.

    Label values come finished from the :class:`RspamdLabeller` of the config in use (side events carry
    theirs from the parser); this class only adds them up. Verdicts (one per scanned message, the hot
    path) are queued and handed to the labeller in batches of :data:`BATCH`, and at the end of every
    pipeline batch (:meth:`end_batch`, under the lock a scrape takes), so a scrape always sees every line
    read and :meth:`collect` changes nothing. Side lines are rare and counted at once.
    """

    families = FAMILIES

    def __init__(self, config: RspamdConfig) -> None:
        self.store = Store(FAMILIES)
        for hists in self.store.hists.values():
            hists.ensure(())  # unlabelled: the histograms are exported (at 0) before the first verdict
        self.values = self.store.values
        self._ratelimit_buckets = CappedLabels(MAX_RATELIMIT_BUCKETS)
        self._batch: list[RspamdScan] = []
        self._dispatch: dict[type, Callable[[Any], None]] = {}
        self.reconfigure(config)

    def reconfigure(self, config: RspamdConfig) -> None:
        """Apply a (re)loaded config: a new labeller (label sets change), counts are kept."""
        self.config = config
        self.labeller = RspamdLabeller(config)

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """Event type → the method that counts it (the pipeline dispatches on ``type(event)``)."""
        self._dispatch = {
            RspamdScan: self._scan,
            RspamdError: self._error,
            RspamdLifecycle: self._lifecycle,
            RspamdGreylist: self._greylist,
            RspamdRatelimit: self._ratelimit,
            RspamdLearn: self._learn,
            RspamdRepeated: self._repeated,
            Unparsed: self._unparsed,
        }
        return dict(self._dispatch)

    def handle(self, event: object) -> None:
        """Count one event (convenience for tests; the pipeline uses :meth:`handlers`)."""
        handler = (self._dispatch or self.handlers()).get(type(event))
        if handler is not None:
            handler(event)

    def _inc(self, family: Family, labels: Labels = (), amount: float = 1) -> None:
        store = self.values[family.name]  # by name: a str hashes once, a Family on every lookup
        store[labels] = store.get(labels, 0) + amount

    # -- the verdict line ---------------------------------------------------------------------------------
    def _scan(self, e: RspamdScan) -> None:
        batch = self._batch
        batch.append(e)
        if len(batch) >= BATCH:
            self.end_batch()

    def end_batch(self) -> None:
        """Count the queued verdicts: the labeller labels them, the stores add them up."""
        batch = self._batch
        if not batch:
            return
        self._batch = []
        labelled = self.labeller.label(batch)
        for family, counts in (
            (SCANS, labelled.scans), (FORCED, labelled.forced), (AUTH, labelled.auth),
            (SIGNATURES, labelled.signatures), (AUTHENTICATED, labelled.authenticated),
            (VIRUSES, labelled.viruses), (AV_FAILURES, labelled.av_failures), (SYMBOLS, labelled.symbols),
        ):  # fmt: skip
            if counts:
                store = self.store.counts[family]
                for key, n in counts.items():
                    store[key] = store.get(key, 0) + n
        hist = self.store.hists
        _observe(hist[SCORE].histogram(), labelled.scores, negative=True)
        _observe(hist[DURATION].histogram(), labelled.seconds)
        _observe(hist[SIZE].histogram(), labelled.sizes)
        if labelled.truncated:
            self._inc(TRUNCATED, (), labelled.truncated)

    # -- side lines ---------------------------------------------------------------------------------------
    def _error(self, e: RspamdError) -> None:
        self._inc(ERRORS, (e.error_class,))

    def _lifecycle(self, e: RspamdLifecycle) -> None:
        self._inc(LIFECYCLE, (e.event, e.process))

    def _greylist(self, e: RspamdGreylist) -> None:
        self._inc(GREYLIST, _GREYLIST_KEYS.get((e.result, e.detail), ("pass",)))

    def _ratelimit(self, e: RspamdRatelimit) -> None:
        self._inc(RATELIMITS, (self._ratelimit_buckets(e.bucket),))

    def _learn(self, e: RspamdLearn) -> None:
        self._inc(LEARNS, (e.klass or "unknown", e.result))

    def _repeated(self, e: RspamdRepeated) -> None:
        """Count the previous event ``e.count`` more times, in time independent of the count.

        The event is counted once by its own handler, and what that changed is then added ``count - 1``
        more times (a snapshot and a difference over the stores, which are small: bounded labels). So every
        family is multiplied exactly as N separate lines would have counted, with no loop over N: a forged
        ``Last message repeated 1000000000 times`` cannot hold the loop (the parser also refuses any N
        above :data:`parsers.rspamd.MAX_REPEATS`, 1000; rspamd writes at most 298).
        """
        previous, count = e.previous, e.count
        handler = self._dispatch.get(type(previous))
        if handler is None or type(previous) is RspamdRepeated or count <= 0:
            return
        if count == 1:
            handler(previous)
            return
        self.end_batch()  # queued verdicts are counted now, so the difference is this event's alone
        before = self._stores()
        handler(previous)
        self.end_batch()
        self._add_difference(before, count - 1)

    def _stores(self) -> tuple[dict[Family, dict[Labels, float]], dict[Family, Histogram]]:
        """Copies of every store a handler can change (for :meth:`_repeated`)."""
        return (
            {family: dict(store) for family, store in self.store.counts.items()},
            {family: hists.histogram().copy() for family, hists in self.store.hists.items()},
        )

    def _add_difference(
        self, before: tuple[dict[Family, dict[Labels, float]], dict[Family, Histogram]], times: int
    ) -> None:
        """Add ``times`` times (now - ``before``) to every store."""
        values, hists = before
        for family, store in self.store.counts.items():
            _scale_difference(store, values[family], times)
        for family, vec in self.store.hists.items():
            hist, old_hist = vec.histogram(), hists[family]
            for i, (n, m) in enumerate(zip(hist.counts, old_hist.counts, strict=True)):
                hist.counts[i] = n + (n - m) * times
            hist.sum += (hist.sum - old_hist.sum) * times

    def _unparsed(self, e: Unparsed) -> None:
        self._inc(UNPARSED, ("verdict" if e.daemon == "task" else "prefix",))

    # -- scrape (read-only: the pipeline counted every queued verdict at the end of its batch) -------------
    def collect(self) -> Iterator[Metric]:
        labeller = self.labeller
        yield from self.store.collect(
            {SIGNATURES: labeller.domains(), VIRUSES: labeller.scanners(), AV_FAILURES: labeller.scanners(),
             SYMBOLS: labeller.symbols()}
        )  # fmt: skip


def _scale_difference(store: MutableMapping[K, N], old: Mapping[K, N], times: int) -> None:
    """``store[k] += times * (store[k] - old[k])`` for every key that changed."""
    for key, n in list(store.items()):
        delta = n - old.get(key, 0)
        if delta:
            store[key] = n + delta * times


def _observe(hist: Histogram, values: list[float], negative: bool = False) -> None:
    """Add many observations at once: sort them, then one bisect per bucket bound.

    Unknown values (nan; -1 for a size, unless ``negative`` values are real) are rare and left out: the
    sum, needed anyway, and the minimum, cheap, tell when there are any.
    """
    total = fsum(values)
    if isnan(total) or (not negative and values and min(values) < 0):
        values = [v for v in values if not isnan(v) and (negative or v >= 0)]
        total = fsum(values)
    if not values:
        return
    ordered = sorted(values)
    counts, below = hist.counts, 0
    for i, bound in enumerate(hist.bounds):
        # bisect_right: a value equal to a bound belongs to that bound's bucket (Prometheus's "le")
        upto = bisect_right(ordered, bound)
        counts[i] += upto - below
        below = upto
    counts[-1] += len(ordered) - below
    hist.sum += total
