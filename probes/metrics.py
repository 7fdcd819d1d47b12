"""``mailpulse_probe_*``: every probe family declared once (``FAMILIES``) and the aggregator behind them.

Labels come only from config names (``probe``, ``route``, ``target``, ``location``) and fixed enums
(stage, reason, folder, method, result, engine, protocol). ``location`` (``probes.location``) is the last
label of every family: the stores are keyed without it and :meth:`ProbeMetrics.collect` appends it, so
probes from several places can be told apart (and counted per place) once they meet in Prometheus.

Every (probe, stage, reason) pair and the usual result label
sets are created with 0 at start, so ``increase()`` and ``absent()`` work right after a restart; the
per-probe gauges (success, timestamps, consecutive failures) are restored from the state file.

Writers (the probe runs, the mailbox watchers) take the shared lock; ``collect()`` runs with the lock
already held by :class:`exporter.metrics.collector.MailpulseCollector`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.core import Metric

from mailpulse.exporter.metrics.family import Family, Kind, Labels, bounded, enum, label_sets, named
from mailpulse.exporter.metrics.store import CappedLabels, Store, inc
from mailpulse.exporter.tracking.api import DELIVERY_REASONS
from mailpulse.probes.config import PROVIDERS, TARGET_KINDS, ProbeConfig, ProbesConfig
from mailpulse.probes.errors import RECEIVE_REASONS, STAGE_REASONS
from mailpulse.probes.outcome import FOLDERS, ProbeResult
from mailpulse.probes.timeline import HOPS, UNCORRELATED, Timeline
from mailpulse.probes.verdicts import METHODS, RESULTS, SPAM_ENGINES

LATENCY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0,
                   3600.0)  # fmt: skip
SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3", "other")
DKIM_OWN_RESULTS = ("pass", "fail", "none", "temperror", "permerror")
CLEANUP_WHY = ("found", "late", "stale")
HOP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
HELD_STATUSES = ("deferred", "bounced", "expired", "queued", "delivered")
HELD_REASONS = (*DELIVERY_REASONS, "none")
P = ("probe", "location")

INFO = Family(
    "mailpulse_probe_info", "Always 1 for each configured probe; labels name its route (how it is sent), its "
    "target (where it is looked for), the target kind (imap, autoresponder) and the mailbox provider.",
    Kind.GAUGE, ("probe", "route", "target", "target_kind", "provider", "location"),
)  # fmt: skip
RUNS = Family(
    "mailpulse_probe_runs_total", "Probe runs that reached an outcome (delivered in time, lost, or failed at a "
    "stage), counted when the outcome is known: at arrival, at the deadline, or at the failure. Runs skipped "
    "because the previous one was still waiting are not counted here.", Kind.COUNTER, P,
)  # fmt: skip
FAILURES = Family(
    "mailpulse_probe_failures_total", "Probe runs that did not deliver within the deadline, by stage (send: "
    "the route's SMTP server; receive: the target's IMAP mailbox; deliver: accepted but not found, reason "
    "lost, or found with Authentication-Results other than the probe's expect, reason auth_unexpected; "
    "internal: a mailpulse bug) and bounded reason (dns, connect, tls, auth, credentials, rejected_4xx, "
    "rejected_5xx, timeout, protocol, imap_*, lost, auth_unexpected, error). Every stage/reason pair exists "
    "from the start. Failure ratio: rate(failures) / rate(runs).", Kind.COUNTER,
    ("probe", "stage", "reason", "location"),
)  # fmt: skip
SUCCESS = Family(
    "mailpulse_probe_success", "1 if the last run of this probe delivered the message within its deadline, in "
    "any folder (see placements for Inbox vs Junk), else 0. Present from start: restored from the state "
    "file, 0 if this probe never ran.", Kind.GAUGE, P,
)  # fmt: skip
LAST_RUN = Family(
    "mailpulse_probe_last_run_timestamp_seconds", "When the last run of this probe reached its outcome (Unix "
    "time); 0 if it never ran. Alert on time() minus this to catch a stalled scheduler.", Kind.GAUGE, P,
)  # fmt: skip
LAST_SUCCESS = Family(
    "mailpulse_probe_last_success_timestamp_seconds", "When a run of this probe last delivered within its "
    "deadline (Unix time); 0 if never.", Kind.GAUGE, P,
)  # fmt: skip
CONSECUTIVE = Family(
    "mailpulse_probe_consecutive_failures", "Runs in a row of this probe that did not deliver within the "
    "deadline; 0 after a success.", Kind.GAUGE, P,
)  # fmt: skip
LATENCY = Family(
    "mailpulse_probe_delivery_latency_seconds", "Delivery latency: from the route's server accepting the "
    "message (its 250 reply to DATA) to the message's arrival in the target mailbox (the earlier of "
    "mailpulse seeing it and the end of its IMAP INTERNALDATE second). Includes late arrivals. For an "
    "autoresponder target: until its reply arrived.", Kind.HISTOGRAM, P, buckets=LATENCY_BUCKETS,
)  # fmt: skip
LAST_LATENCY = Family(
    "mailpulse_probe_last_delivery_latency_seconds", "Delivery latency of the last delivered probe (see "
    "mailpulse_probe_delivery_latency_seconds).", Kind.GAUGE, P,
)  # fmt: skip
SEND_DURATION = Family(
    "mailpulse_probe_send_duration_seconds", "Time to hand a probe to the route's server: connect, TLS, "
    "authentication, MAIL, RCPT and DATA up to the 250 reply; successful hand-offs only.",
    Kind.HISTOGRAM, P, buckets=SEND_BUCKETS,
)  # fmt: skip
LATE = Family(
    "mailpulse_probe_late_arrivals_total", "Probe messages that arrived after their deadline (so their run "
    "counted as lost) but within the late window.", Kind.COUNTER, P,
)  # fmt: skip
PLACEMENTS = Family(
    "mailpulse_probe_placements_total", "Delivered probes by the folder they were found in: inbox, junk (the "
    "\\Junk special-use folder or the provider's spam folder) or other (another watched folder).",
    Kind.COUNTER, ("probe", "folder", "location"),
)  # fmt: skip
LAST_PLACEMENT = Family(
    "mailpulse_probe_last_placement", "1 for the folder (inbox, junk, other) the last delivered probe was "
    "found in, 0 for the others.", Kind.GAUGE, ("probe", "folder", "location"),
)  # fmt: skip
AUTH_RESULTS = Family(
    "mailpulse_probe_auth_results_total", "Authentication results the receiving side stated for delivered "
    "probes, from its Authentication-Results header (or the autoresponder's report), by method (dkim, spf, "
    "dmarc, arc, compauth) and result (pass, fail, softfail, neutral, none, temperror, permerror, policy, "
    "bestguesspass, softpass, other). A method the receiver did not report is not counted.",
    Kind.COUNTER, ("probe", "method", "result", "location"),
)  # fmt: skip
LAST_AUTH = Family(
    "mailpulse_probe_last_auth_result", "1 for the result each method had for the last delivered probe, 0 for "
    "results seen before; alert on result!=\"pass\" == 1.", Kind.GAUGE, ("probe", "method", "result", "location"),
)  # fmt: skip
DKIM_OWN = Family(
    "mailpulse_probe_dkim_verify_total", "mailpulse's own DKIM verification of the received copy (keys from "
    "the configured resolver): pass, fail (no signature verifies), none (unsigned), temperror (DNS timeout), "
    "permerror (no key).", Kind.COUNTER, ("probe", "result", "location"),
)  # fmt: skip
SPAM_SCORE = Family(
    "mailpulse_probe_spam_score", "The receiver's spam score of the last delivered probe, by engine: rspamd "
    "(X-Spamd-Result/X-Rspamd-Score), spamassassin (X-Spam-Status/X-Spam-Score), microsoft_scl (SCL -1..9). "
    "Absent when the receiver states none.", Kind.GAUGE, ("probe", "engine", "location"),
)  # fmt: skip
TLS_VERSION = Family(
    "mailpulse_probe_tls_version_info", "1 for the TLS version (TLSv1.2, TLSv1.3, other) of the last "
    "successful hand-off to the route's server.", Kind.GAUGE, ("probe", "protocol", "location"),
)  # fmt: skip
SKIPPED = Family(
    "mailpulse_probe_skipped_runs_total", "Scheduled runs that did not start because the previous run of the "
    "same probe was still waiting for its message (deadline longer than the interval) or the scheduler "
    "was too late.", Kind.COUNTER, P,
)  # fmt: skip
MAILBOX_UP = Family(
    "mailpulse_probe_mailbox_up", "1 if the watcher of this target's mailbox has every watched folder open "
    "(IMAP connected, logged in, selected), else 0. Targets sharing one login share one watcher, reported "
    "under the first target's name.", Kind.GAUGE, ("target", "location"),
)  # fmt: skip
MAILBOX_ERRORS = Family(
    "mailpulse_probe_mailbox_errors_total", "Times the mailbox watcher lost a watched folder or failed to "
    "(re)open one (each reconnect attempt counts), by bounded reason (imap_connect, imap_tls, imap_auth, "
    "imap_timeout, imap_folder, imap_protocol, ...).",
    Kind.COUNTER, ("target", "reason", "location"),
)  # fmt: skip
CLEANUP = Family(
    "mailpulse_probe_cleanup_deleted_total", "Probe messages removed from a target mailbox (by UID; moved to "
    "Trash where the provider needs it): found (a run's message), late (arrived after its deadline), stale "
    "(our own, HMAC-checked, older than the late window, removed by the sweep).",
    Kind.COUNTER, ("target", "reason", "location"),
)  # fmt: skip
CLEANUP_FAILURES = Family(
    "mailpulse_probe_cleanup_failures_total", "Failed attempts to remove probe messages from a target "
    "mailbox; the sweep retries them later.", Kind.COUNTER, ("target", "location"),
)  # fmt: skip

INTERVAL = Family(
    "mailpulse_probe_interval_seconds", "How often this probe is configured to run (its interval), so alerts "
    "can judge staleness per probe.", Kind.GAUGE, P,
)  # fmt: skip
DEADLINE = Family(
    "mailpulse_probe_deadline_seconds", "How long this probe waits for its message before the run counts as "
    "lost (its deadline).", Kind.GAUGE, P,
)  # fmt: skip

HOP = Family(
    "mailpulse_probe_hop_seconds", "Per-hop latency of delivered probes, from the message tracker's timeline of "
    "the probe's message (when mailpulse tails the Postfix logs of the hosts it passes): submit_queue (the "
    "submission host, from the route's acceptance until the next host took it), relay, mx_queue (the MX's "
    "queue, both sides of its content filter), content_filter (scan and re-injection), srs (the SRS "
    "forwarder), delivery (the last queue file: to the mailbox or to a remote provider), imap_seen (from the "
    "mailbox delivery to the IMAP arrival), remote (from the hand-off to another provider to the arrival). "
    "One observation per hop a run passed (a hop passed twice is summed); the hops of a run add up to its "
    "delivery latency.", Kind.HISTOGRAM, ("probe", "hop", "location"), buckets=HOP_BUCKETS,
)  # fmt: skip
UNCORRELATED_RUNS = Family(
    "mailpulse_probe_uncorrelated_runs_total", "Probe runs (correlation on, the tracker available) whose "
    "message could not be followed in the logs: no_queue_id (the route's reply named none), not_in_logs "
    "(neither its queue ID nor its Message-ID was in the tracked logs within probes.correlation.wait), "
    "incomplete (delivered, but its final delivery was not in the logs: a host's log is not tailed or a hop "
    "not linked).", Kind.COUNTER, ("probe", "reason", "location"),
)  # fmt: skip
HELD = Family(
    "mailpulse_probe_held_total", "Lost or late probe runs by where their message was held at the deadline: "
    "the log host (capped, probes.correlation.max_hosts; the rest other), the status of its last attempt there "
    "(deferred, bounced, expired, queued: no attempt logged, delivered: our last host delivered it, to the "
    "mailbox or a remote provider, but it was not seen in time) and the log's reason class (the Postfix delivery "
    "reasons; none when the log gave none).", Kind.COUNTER, ("probe", "host", "status", "reason", "location"),
)  # fmt: skip

FAMILIES = (INFO, INTERVAL, DEADLINE, RUNS, FAILURES, SUCCESS, LAST_RUN, LAST_SUCCESS, CONSECUTIVE, LATENCY,
            LAST_LATENCY, SEND_DURATION, LATE, PLACEMENTS, LAST_PLACEMENT, AUTH_RESULTS, LAST_AUTH, DKIM_OWN,
            SPAM_SCORE, TLS_VERSION, SKIPPED, MAILBOX_UP, MAILBOX_ERRORS, CLEANUP, CLEANUP_FAILURES, HOP,
            UNCORRELATED_RUNS, HELD)  # fmt: skip

LABEL_SETS = label_sets(
    FAMILIES,
    {
        "probe": named("probes.probes[].name"),
        "route": named("probes.routes[].name"),
        "target": named("probes.targets[].name"),
        "target_kind": enum(TARGET_KINDS),
        "provider": enum(PROVIDERS),
        "stage": enum(STAGE_REASONS),
        "reason": enum(dict.fromkeys(r for reasons in STAGE_REASONS.values() for r in reasons)),
        "folder": enum(FOLDERS),
        "method": enum(METHODS),
        "result": enum((*RESULTS, "other")),
        "engine": enum(SPAM_ENGINES),
        "protocol": enum(TLS_VERSIONS),
        "location": named("probes.location"),
    },
    {
        (DKIM_OWN, "result"): enum(DKIM_OWN_RESULTS),
        (MAILBOX_ERRORS, "reason"): enum(RECEIVE_REASONS),
        (CLEANUP, "reason"): enum(CLEANUP_WHY),
        (HOP, "hop"): enum(HOPS),
        (UNCORRELATED_RUNS, "reason"): enum(UNCORRELATED),
        (HELD, "host"): bounded(
            100,
            "log host names of the hosts a probe's message was held at: those in "
            "probes.correlation.hosts, then the first others seen, at most "
            "probes.correlation.max_hosts, the rest `other`",
            "other",
            cap_key="probes.correlation.max_hosts",
        ),
        (HELD, "status"): enum(HELD_STATUSES),
        (HELD, "reason"): enum(HELD_REASONS),
    },
)

MAILBOX_FAMILIES = frozenset((MAILBOX_UP, MAILBOX_ERRORS, CLEANUP, CLEANUP_FAILURES))
PRECREATED_AUTH = (("dkim", "pass"), ("dkim", "fail"), ("spf", "pass"), ("spf", "fail"), ("dmarc", "pass"),
                   ("dmarc", "fail"))  # fmt: skip
_STATE_KEYS = ("success", "last_run", "last_success", "consecutive_failures")


class ProbeMetrics:
    families = FAMILIES

    def __init__(self, config: ProbesConfig, lock: threading.Lock | None = None, mailboxes: Sequence[str] = (),
                 now: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.lock = lock or threading.Lock()
        self._now = now
        self.store = Store(FAMILIES)
        self.counters = self.store.counts
        self.latency = self.store.hist(LATENCY)
        self.send = self.store.hist(SEND_DURATION)
        self.hops = self.store.hist(HOP)
        self.held_hosts = _held_hosts(config)
        self.mailboxes = tuple(mailboxes)
        self.location = config.location
        self._correlation = config.correlation
        self._init(config.probes, config)

    def _init(self, probes: Sequence[ProbeConfig], config: ProbesConfig) -> None:
        """Create every label set of ``probes`` and the mailboxes with 0; keep values already there."""
        c = self.counters
        for p in probes:
            target = config.target(p.target)
            c[INFO][(p.name, p.route, p.target, target.kind, target.provider)] = 1.0
            key = (p.name,)
            c[INTERVAL][key] = p.interval
            c[DEADLINE][key] = p.deadline
            zeros: list[tuple[Family, Labels]] = [(fam, key) for fam in (RUNS, LATE, SKIPPED, SUCCESS, LAST_RUN,
                                                                       LAST_SUCCESS, CONSECUTIVE)]  # fmt: skip
            zeros += [(FAILURES, (p.name, stage, reason)) for stage, reasons in STAGE_REASONS.items()
                      for reason in reasons]  # fmt: skip
            zeros += [(PLACEMENTS, (p.name, folder)) for folder in FOLDERS]
            zeros += [(AUTH_RESULTS, (p.name, method, result)) for method, result in PRECREATED_AUTH]
            zeros += [(DKIM_OWN, (p.name, result)) for result in DKIM_OWN_RESULTS]
            for fam, labels in zeros:
                c[fam].setdefault(labels, 0.0)
            self.latency.ensure(key)
            self.send.ensure(key)
            zeros = [(UNCORRELATED_RUNS, (p.name, why)) for why in UNCORRELATED]
            for fam, labels in zeros:
                c[fam].setdefault(labels, 0.0)
        for name in self.mailboxes:
            zeros = [(MAILBOX_UP, (name,)), (CLEANUP_FAILURES, (name,))]
            zeros += [(CLEANUP, (name, why)) for why in CLEANUP_WHY]
            zeros += [(MAILBOX_ERRORS, (name, reason)) for reason in RECEIVE_REASONS]
            for fam, labels in zeros:
                c[fam].setdefault(labels, 0.0)

    def reconfigure(self, config: ProbesConfig, mailboxes: Sequence[str]) -> None:
        """After a reload: counters of probes and mailboxes that still exist go on (they never reset),
        series of removed ones disappear, new ones appear with 0."""
        with self.lock:
            probes = {p.name for p in config.probes}
            self.mailboxes = tuple(mailboxes)
            self.location = config.location
            for fam in (INFO, INTERVAL, DEADLINE):
                self.counters[fam].clear()
            for fam, store in self.counters.items():
                keep = set(self.mailboxes) if fam in MAILBOX_FAMILIES else probes
                for labels in [k for k in store if k[0] not in keep]:
                    del store[labels]
            if config.correlation != self._correlation:
                self.held_hosts = _held_hosts(config)  # a new config: the cap starts afresh
            for hists in (self.latency, self.send, self.hops):
                for labels in [k for k in hists if k[0] not in probes]:
                    del hists[labels]
            self._correlation = config.correlation
            self._init(config.probes, config)

    # -- updates (take the lock) --------------------------------------------------------------------------
    def record(self, result: ProbeResult) -> None:
        with self.lock:
            self._record(result)

    def _record(self, r: ProbeResult) -> None:
        c, key, now = self.counters, (r.probe,), r.finished_at or self._now()
        _inc(c[RUNS], key)
        c[LAST_RUN][key] = now
        if r.delivered:
            c[SUCCESS][key] = 1.0
            c[LAST_SUCCESS][key] = now
            c[CONSECUTIVE][key] = 0.0
        else:
            c[SUCCESS][key] = 0.0
            _inc(c[CONSECUTIVE], key)
            stage, reason = r.stage or "internal", r.reason or "error"
            if reason not in STAGE_REASONS.get(stage, ()):
                stage, reason = "internal", "error"
            _inc(c[FAILURES], (r.probe, stage, reason))
        if r.send_seconds is not None and r.accepted_at is not None:
            self.send.observe(key, r.send_seconds)
        if r.tls_version is not None:
            version = r.tls_version if r.tls_version in TLS_VERSIONS else "other"
            for v in TLS_VERSIONS:
                c[TLS_VERSION][(r.probe, v)] = 1.0 if v == version else 0.0
        if r.delivered:
            self._arrival(r)

    def _arrival(self, r: ProbeResult) -> None:
        """What a delivered (or late) probe tells: latency, folder, verdicts."""
        c, key = self.counters, (r.probe,)
        if r.latency_seconds is not None:
            self.latency.observe(key, r.latency_seconds)
            c[LAST_LATENCY][key] = r.latency_seconds
        if r.folder in FOLDERS:
            _inc(c[PLACEMENTS], (r.probe, r.folder))
            for folder in FOLDERS:
                c[LAST_PLACEMENT][(r.probe, folder)] = 1.0 if folder == r.folder else 0.0
        for method, stated in r.auth.items():
            if method not in METHODS:
                continue
            result = stated if stated in RESULTS else "other"
            _inc(c[AUTH_RESULTS], (r.probe, method, result))
            for labels in [k for k in c[LAST_AUTH] if k[0] == r.probe and k[1] == method]:
                c[LAST_AUTH][labels] = 0.0
            c[LAST_AUTH][(r.probe, method, result)] = 1.0
        if r.dkim_own in DKIM_OWN_RESULTS:
            _inc(c[DKIM_OWN], (r.probe, r.dkim_own or ""))
        for labels in [k for k in c[SPAM_SCORE] if k[0] == r.probe]:
            del c[SPAM_SCORE][labels]  # a score from another engine would be stale now
        if r.spam_score is not None and r.spam_engine in SPAM_ENGINES:
            c[SPAM_SCORE][(r.probe, r.spam_engine or "")] = r.spam_score

    def timeline(self, probe: str, timeline: Timeline | None, *, delivered: bool) -> None:
        """A run's correlation: its hops (delivered runs), why it could not be followed, where it was held."""
        if timeline is None:
            return
        with self.lock:
            c = self.counters
            if timeline.uncorrelated is not None:
                _inc(c[UNCORRELATED_RUNS], (probe, timeline.uncorrelated))
            if delivered and timeline.complete:
                per_hop: dict[str, float] = {}
                for hop in timeline.hops:
                    per_hop[hop.hop] = per_hop.get(hop.hop, 0.0) + hop.seconds
                for hop_name, secs in per_hop.items():
                    self.hops.observe((probe, hop_name), secs)
            held = timeline.held
            if held is not None and not delivered:
                reason = held.reason if held.reason in HELD_REASONS else "other"
                status = held.status if held.status in HELD_STATUSES else "deferred"
                _inc(c[HELD], (probe, self.held_hosts(held.host), status, reason))

    def late_arrival(self, result: ProbeResult) -> None:
        """A lost probe showed up within the late window: count it and its verdicts, not a run."""
        with self.lock:
            _inc(self.counters[LATE], (result.probe,))
            self._arrival(result)

    def skipped(self, probe: str) -> None:
        with self.lock:
            _inc(self.counters[SKIPPED], (probe,))

    def mailbox_state(self, mailbox: str, up: bool) -> None:
        with self.lock:
            self.counters[MAILBOX_UP][(mailbox,)] = 1.0 if up else 0.0

    def mailbox_error(self, mailbox: str, reason: str) -> None:
        with self.lock:
            _inc(self.counters[MAILBOX_ERRORS], (mailbox, reason if reason in RECEIVE_REASONS else "imap_protocol"))

    def cleaned(self, mailbox: str, why: str, count: int) -> None:
        with self.lock:
            _inc(self.counters[CLEANUP], (mailbox, why), count)

    def cleanup_failed(self, mailbox: str) -> None:
        with self.lock:
            _inc(self.counters[CLEANUP_FAILURES], (mailbox,))

    def last_outcomes(self) -> dict[str, str]:
        """Probe → "delivered" or "failed" (lost, late or failed) for the probes that have run (for /health)."""
        with self.lock:
            ran = {key[0]: self.counters[SUCCESS].get(key, 0.0) for key, t in self.counters[LAST_RUN].items() if t}
        return {probe: "delivered" if ok else "failed" for probe, ok in ran.items()}

    # -- persistence of the per-probe gauges --------------------------------------------------------------
    def dump(self) -> dict[str, dict[str, float]]:
        with self.lock:
            fams = (SUCCESS, LAST_RUN, LAST_SUCCESS, CONSECUTIVE)
            return {key[0]: {k: self.counters[f].get(key, 0.0) for k, f in zip(_STATE_KEYS, fams, strict=True)}
                    for key in self.counters[RUNS]}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            for probe, values in state.items():
                key = (probe,)
                if key not in self.counters[RUNS] or not isinstance(values, dict):
                    continue  # a probe removed from the config
                for name, fam in zip(_STATE_KEYS, (SUCCESS, LAST_RUN, LAST_SUCCESS, CONSECUTIVE), strict=True):
                    value = values.get(name)
                    if isinstance(value, int | float):
                        self.counters[fam][key] = float(value)

    # -- scrape (lock held by the caller) -----------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        loc = (self.location,)
        for fam in FAMILIES:
            if fam is LATENCY or fam is SEND_DURATION or fam is HOP:
                hists = self.latency if fam is LATENCY else self.send if fam is SEND_DURATION else self.hops
                yield fam.from_histograms({k + loc: h for k, h in hists.snapshot().items()})
            else:
                yield fam.from_values({k + loc: v for k, v in self.counters[fam].items()})


_inc = inc


def _held_hosts(config: ProbesConfig) -> CappedLabels:
    """The held family's host label: the configured hosts first, then the first others seen, up to the cap."""
    cap = CappedLabels(max(config.correlation.max_hosts, len(config.correlation.hosts)))
    for host, _ in config.correlation.hosts:
        cap(host)
    return cap
