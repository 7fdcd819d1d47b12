"""Property: every label value mailpulse emits is in the set its family declares (an enum, a config name, or
a capped open set), for real lines, the fuzz seeds and hypothesis-mutated lines, through the real parsers,
pipelines, aggregators and collector, scraped after each input."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.core import Metric

from mailpulse import features
from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.features.posture.metrics import PostureMetrics
from mailpulse.exporter.features.posture.result import CHECKS, CheckResult, Target
from mailpulse.exporter.metrics.catalog import all_label_sets
from mailpulse.exporter.metrics.collector import SELF_LABEL_SETS, MailpulseCollector, SelfMetrics
from mailpulse.exporter.metrics.family import LabelValues
from mailpulse.exporter.metrics.sources import SourcesAggregator
from mailpulse.exporter.pipeline import LinePipeline
from mailpulse.exporter.queue import QueueCollector, QueueSnapshot
from mailpulse.parsers.postfix import PostfixParserConfig
from mailpulse.parsers.rspamd.vocab import module_key
from mailpulse.probes.metrics import ProbeMetrics
from mailpulse.probes.outcome import ProbeResult
from tests.helpers import MINIMAL_PROBES, Aggregators, build_formats

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FILES = sorted(
    [*FIXTURES.glob("lab/*.log"), *FIXTURES.glob("realworld/*.log"), *FIXTURES.glob("fuzz/*.seeds")]
)  # fmt: skip
LINES = [line for path in FILES for line in path.read_text(errors="replace").splitlines() if line]
VERDICTS = [line for line in LINES if "rspamd_task_write_log" in line]

RSPAMD = RspamdConfig(
    symbols=("BAYES_SPAM", "R_SPF_ALLOW", "DKIM_SIGNED"),
    signing_domains=("example.test", "lab.test"),
    forced_modules=("my_prefilter",),
)
SOURCES = ("postfix", "rspamd")
# what each config key names under the config above
CONFIG_NAMES: dict[str, frozenset[str]] = {
    "rspamd.symbols": frozenset(RSPAMD.symbols),
    "rspamd.signing_domains": frozenset(RSPAMD.signing_domains),
    "rspamd.antivirus": frozenset(scanner for _, scanner in RSPAMD.antivirus),
    "rspamd.forced_modules": frozenset(module_key(m) for m in RSPAMD.forced_modules),
    "sources[].name": frozenset(SOURCES),
    "postfix.relay_classes[].class": frozenset(),
}
QUEUE_LINES = [
    b'{"queue_name": "deferred", "arrival_time": 1700000000, "message_size": 900, "recipients": [{}]}',
    b'{"queue_name": "weird", "arrival_time": 1700000000, "message_size": 900}',
    b'{"queue_name": "active"}',
]
DECLARED = {**all_label_sets(features()), **SELF_LABEL_SETS}


class Rig:
    """The log features wired as the daemon wires them: one pipeline per source, the collector over all parts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.aggregators = Aggregators.create(RSPAMD)
        formats = build_formats(self.aggregators, PostfixParserConfig(), RSPAMD)
        self.sources = SourcesAggregator()
        self.pipelines = [LinePipeline(self.sources.stats(name), [formats[name]], self.lock) for name in SOURCES]
        self.collector = MailpulseCollector(
            self.lock, SelfMetrics("test"), [*self.aggregators.parts(), self.sources]
        )  # fmt: skip

    def feed(self, lines: list[str]) -> None:
        for pipeline in self.pipelines:
            pipeline.feed(lines)


RIG = Rig()


def _family_name(metric: Metric) -> str:
    # prometheus_client drops a counter's _total from the family name; the declarations keep it
    return metric.name + "_total" if metric.type == "counter" else metric.name


def _admits(values: LabelValues, value: str, names: Mapping[str, Collection[str]]) -> bool:
    if value in values.values:
        return True
    if values.kind == "config":
        return value in names[values.config]
    return values.kind == "bounded"


def check(metrics: Iterable[Metric], names: Mapping[str, Collection[str]] = CONFIG_NAMES) -> None:
    """Every label value of every sample is declared; each capped open set holds at most its cap (+ fixed)."""
    seen: dict[tuple[str, str], set[str]] = {}
    for metric in metrics:
        name = _family_name(metric)
        for sample in metric.samples:
            for label, value in sample.labels.items():
                if label == "le" and metric.type == "histogram":
                    continue
                declared = DECLARED.get((name, label))
                assert declared is not None, (name, label)
                assert _admits(declared, value, names), (name, label, value, declared)
                seen.setdefault((name, label), set()).add(value)
    for key, values in seen.items():
        declared = DECLARED[key]
        if declared.kind == "bounded":
            assert len(values - set(declared.values)) <= declared.cap, (key, sorted(values))


def test_every_family_label_declares_its_values() -> None:
    """docs/metrics.md can list every label: no label of any family lacks a declaration."""
    from mailpulse.exporter.metrics.catalog import all_families

    for family in all_families(features()):
        for label in family.labels:
            assert (family.name, label) in DECLARED, (family.name, label)


def test_real_lines_and_fuzz_seeds() -> None:
    """Every fixture line (lab, real-world, fuzz seeds), fed as the daemon would, emits declared values only."""
    RIG.feed(LINES)
    check(RIG.collector.collect())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(LINES), st.integers(min_value=0, max_value=400), st.text(max_size=40), st.booleans())
def test_mutated_lines(line: str, at: int, junk: str, replace: bool) -> None:
    """A real line with text spliced in (or a stretch of it replaced) emits declared values only."""
    end = at + len(junk) if replace else at
    RIG.feed([line[:at] + junk + line[end:]])
    check(RIG.collector.collect())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from(VERDICTS),
    st.sampled_from(["forced: ", "DKIM_SIGNED(0.00){", "user: ", "CLAM_VIRUS(", "(set by ", "no action", "]"]),
    st.text(alphabet=st.characters(codec="ascii"), max_size=30),
    st.integers(min_value=0, max_value=1500),
)  # fmt: skip
def test_verdicts_with_label_sources_spliced(line: str, marker: str, text: str, at: int) -> None:
    """Verdicts with the texts labels are read from (forced modules, signing domains, users, antivirus
    symbols, actions) spliced in with arbitrary text after them."""
    RIG.feed([line[:at] + marker + text + line[at:]])
    check(RIG.collector.collect())


# -- the probes and the queue: fed generated outcomes and postqueue lines, not log lines ----------------------
PROBES = MINIMAL_PROBES
PROBE_METRICS = ProbeMetrics(PROBES, mailboxes=["t"])
PROBE_NAMES = {
    "probes.probes[].name": {"p"},
    "probes.routes[].name": {"r"},
    "probes.targets[].name": {"t"},
    "probes.location": {"default"},
}
WORDS = st.sampled_from(["pass", "fail", "inbox", "junk", "other", "send", "receive", "timeout", "TLSv1.3", "x", ""])
ANY = st.one_of(st.none(), WORDS, st.text(max_size=12))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(["delivered", "failed", "lost"]), ANY, ANY, ANY, ANY, ANY, ANY, ANY, ANY, ANY, ANY)
def test_probe_outcomes(
    outcome: str, stage: str | None, reason: str | None, folder: str | None, dkim: str | None, spf: str | None,
    dkim_own: str | None, engine: str | None, tls: str | None, mailbox_reason: str | None, why: str | None,
) -> None:  # fmt: skip
    """Any outcome a probe run can report (stage, reason, folder, verdicts, engine, TLS version: known words
    and arbitrary text) and any mailbox error emit declared values only."""
    result = ProbeResult(
        "p", "r", "t", outcome=outcome, stage=stage, reason=reason, latency_seconds=1.0, folder=folder,
        dkim=dkim, spf=spf, dkim_own=dkim_own, spam_score=1.0, spam_engine=engine, tls_version=tls,
    )  # fmt: skip
    PROBE_METRICS.record(result)
    PROBE_METRICS.late_arrival(result)
    PROBE_METRICS.mailbox_error("t", mailbox_reason or "")
    PROBE_METRICS.cleaned("t", why if why in ("found", "late", "stale") else "found", 1)
    with PROBE_METRICS.lock:
        check(PROBE_METRICS.collect(), PROBE_NAMES)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=60), st.sampled_from(QUEUE_LINES)), max_size=8))
def test_queue_snapshots(lines: list[bytes]) -> None:
    """Any postqueue -j output (known and unknown queue names, junk) emits declared values only."""
    collector = QueueCollector()
    snapshot = QueueSnapshot()
    for raw in lines:
        snapshot.add(raw)
    collector.snapshot = snapshot
    collector._failed("timeout", "slow")
    check(collector.collect())


# -- posture: fed generated results (any reason, fact or text a check could put in one) --------------------------
POSTURE_NAMES = {
    "posture.domains[].name": {"d.example"}, "posture.senders[].name": {"s"},
    "posture.dnsbl.zones and posture.dnsbl.custom[].name": {"z"}, "posture.domains[].dkim[].selector": {"sel"},
}  # fmt: skip
POSTURE_TEXT = st.one_of(WORDS, st.sampled_from(["none", "reject", "enforce", "rsa", "ed25519", "public_resolver",
                                                 "listed", "key_mismatch", "dns_timeout"]), st.text(max_size=12))  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(CHECKS), st.booleans(), st.booleans(), POSTURE_TEXT,
       st.dictionaries(st.sampled_from(["p", "sp", "np", "mode", "version", "key_type", "error_class", "sender:s"]),
                       POSTURE_TEXT, max_size=8),
       st.dictionaries(st.sampled_from(["lookups", "void_lookups", "bits", "testing", "key_match", "max_age",
                                        "not_after", "match", "validated", "listed", "rua", "ruf", "pct"]),
                       st.floats(0, 1e6), max_size=13))  # fmt: skip
def test_posture_results(check: str, ok: bool, up: bool, reason: str, infos: dict[str, str],
                         values: dict[str, float]) -> None:  # fmt: skip
    """Any result a posture check could produce, with arbitrary words where enums belong, emits declared
    label values only (the metrics hold reasons, classes, versions and policies to their sets)."""
    target = Target(check, "d.example" if check not in ("rdns",) else "", "sel" if check == "dkim" else "s",
                    "z" if check == "dnsbl" else "")  # fmt: skip
    POSTURE_METRICS.record(CheckResult(target, ok, reason, up=up, values=values, infos=infos))
    check_families(POSTURE_METRICS.collect(), POSTURE_NAMES)


POSTURE_METRICS = PostureMetrics()
check_families = check
