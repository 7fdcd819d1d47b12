"""Poison lines (issue 9, A2-A4): a line anyone can write through ``logger`` never breaks /metrics, never stops
a source, is counted exactly once, and a repetition count never holds the loop.

Every test runs the real wiring (parsers, pipeline, aggregators, collector, exposition), as the daemon does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.metrics.collector import MailpulseCollector, SelfMetrics, make_registry
from mailpulse.exporter.metrics.sources import SourcesAggregator
from mailpulse.exporter.pipeline import LinePipeline
from mailpulse.parsers.postfix import PostfixParserConfig
from tests.helpers import Aggregators, build_formats

P = "Nov 24 16:58:17 mail postfix"
R = "2026-11-24 16:58:18 #1287(normal) <16afc4>; task; rspamd_task_write_log: "
HUGE = "9" * 400
SUP = "\u00b2"  # superscript two: str.isdigit() is True, int() raises


def rspamd_verdict(score: str = "-0.20", size: str = "604", ms: str = "46.243") -> str:
    return (
        f"{R}id: <m@x>, qid: <Q1>, ip: 192.0.2.20, (default: F (no action): [{score}/15.00] "
        f"[R_SPF_ALLOW(-0.20){{+ip4:1.2.3.4;}}]), len: {size}, time: {ms}ms, dns req: 18, digest: <4837a7>"
    )


# Each poison line of the issue, and its kin: a number too big for a float, non-ASCII digits, inf and nan.
POSTFIX_POISON = [
    f"{P}/anvil[1]: statistics: max connection rate {HUGE}/60s for (smtp:1.2.3.4) at Nov 24 16:58:17",
    f"{P}/anvil[1]: statistics: max cache size {SUP} at Nov 24 16:58:17",
    f"{P}/qmgr[1]: 4AA091855DA0: from=<a@b>, size={'1' + '0' * 309}, nrcpt=1 (queue active)",
    f"{P}/qmgr[1]: 4AA091855DA0: from=<a@b>, size=391, nrcpt={SUP} (queue active)",
    f"{P}/qmgr[1]: 4AA091855DA0: from=<a@b>, size=\u0663\u0669\u0661, nrcpt=1 (queue active)",
    f"{P}/postsuper[1]: Deleted: {HUGE} messages",
    f"{P}/postscreen[1]: DNSBL rank {SUP} for [192.0.2.1]:2345",
    f"{P}/smtp[1]: 4AA091855DA0: to=<a@b>, relay=mx[192.0.2.1]:25, delay={HUGE}, delays=0/0/0/0, dsn=2.0.0, "
    "status=sent (250 ok)",
    f"{P}/smtp[1]: 4AA091855DA0: to=<a@b>, relay=mx[192.0.2.1]:25, delay=1, delays=0/inf/0/nan, dsn=2.0.0, "
    "status=sent (250 ok)",
    f"{P}/smtp[1]: 4AA091855DA0: to=<a@b>, relay=mx[192.0.2.1]:25, delay=1e999, delays=0/0/0/0, dsn=2.0.0, "
    "status=sent (250 ok)",
    f"{P}/smtp[1]: 4AA091855DA0: to=<a@b>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0, dsn=2.0.0, "
    "status=sent (250 ok)",
    f"{P}/smtpd[{SUP}]: connect from x[192.0.2.1]",
]
RSPAMD_POISON = [
    "2026-11-24 16:58:18 #1285(controller) rspamd_log_reset_repeated: Last message repeated " + SUP + " times",
    "2026-11-24 16:58:18 #1285(controller) rspamd_log_reset_repeated: Last message repeated " + HUGE + " times",
    "2026-11-24 16:58:18 #1285(controller) rspamd_log_reset_repeated: Last message repeated 1000000000 times",
    rspamd_verdict(score="inf"),
    rspamd_verdict(score="-inf"),
    rspamd_verdict(score=HUGE),
    rspamd_verdict(score="1e999"),
]


class Rig:
    """Parsers, one pipeline per format, the aggregators and the collector, as `mailpulse run` wires them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.aggregators = Aggregators.create(RspamdConfig())
        self.sources = SourcesAggregator()
        formats = build_formats(self.aggregators, PostfixParserConfig(), RspamdConfig())
        self.pipelines = {
            name: LinePipeline(self.sources.stats(name), [fmt], self.lock) for name, fmt in formats.items()
        }
        self.self_metrics = SelfMetrics("test")
        collector = MailpulseCollector(self.lock, self.self_metrics, [*self.aggregators.parts(), self.sources])
        self.registry = make_registry(collector, process_metrics=False)

    def feed(self, source: str, lines: Sequence[str]) -> None:
        self.pipelines[source].feed(lines)

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = generate_latest(self.registry).decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }

    def lines(self, source: str) -> dict[str, float]:
        s = self.sources.stats(source)
        return {"parsed": s.parsed, "unparsed": s.unparsed, "foreign": s.foreign, "error": s.error_lines}


@pytest.mark.parametrize("line", POSTFIX_POISON)
def test_postfix_poison_line_is_unparsed_and_metrics_render(line: str) -> None:
    """The line is counted once, as unparsed (its number is unreadable), and /metrics still renders in full."""
    rig = Rig()
    rig.feed("postfix", [line, f"{P}/qmgr[1]: 4AA091855DA0: removed"])
    samples = rig.scrape()
    assert {"parsed": 1, "unparsed": 1, "foreign": 0, "error": 0} == rig.lines("postfix")
    assert 1 == samples[("postfix_qmgr_messages_removed_total", ())]
    assert not rig.self_metrics.collect_errors


@pytest.mark.parametrize("line", RSPAMD_POISON)
def test_rspamd_poison_line_is_unparsed_and_metrics_render(line: str) -> None:
    """Likewise for rspamd: superscript, huge and over-the-cap repeat counts, inf and huge scores."""
    rig = Rig()
    rig.feed("rspamd", [rspamd_verdict(), line])
    samples = rig.scrape()
    assert {"parsed": 1, "unparsed": 1, "foreign": 0, "error": 0} == rig.lines("rspamd")
    assert 1 == samples[("mailpulse_rspamd_scans_total", (("action", "no_action"),))]
    assert not rig.self_metrics.collect_errors


def test_inf_and_minus_inf_scores_in_one_batch() -> None:
    """The issue's batch: scores inf and -inf among good verdicts. Counted once, good lines counted, no error."""
    rig = Rig()
    batch = [rspamd_verdict(), rspamd_verdict(score="inf"), rspamd_verdict(score="-inf"), rspamd_verdict()]
    rig.feed("rspamd", batch * 300)  # more than one aggregator batch (1024 verdicts)
    samples = rig.scrape()
    assert {"parsed": 600, "unparsed": 600, "foreign": 0, "error": 0} == rig.lines("rspamd")
    assert 600 == samples[("mailpulse_rspamd_scans_total", (("action", "no_action"),))]
    assert 600 == samples[("mailpulse_rspamd_scan_score_bucket", (("le", "+Inf"),))]
    assert not rig.self_metrics.collect_errors


def test_optional_rspamd_numbers_out_of_range_are_absent() -> None:
    """len and time are optional in custom layouts: out of range they are unknown, the scan still counts."""
    rig = Rig()
    rig.feed("rspamd", [rspamd_verdict(size=HUGE), rspamd_verdict(ms=HUGE), rspamd_verdict(size=SUP)])
    samples = rig.scrape()
    assert 3 == rig.lines("rspamd")["parsed"]
    # line 1: size unknown; line 2: time unknown; line 3: size unknown
    assert 1 == samples[("mailpulse_rspamd_message_size_bytes_count", ())]
    assert 2 == samples[("mailpulse_rspamd_scan_duration_seconds_count", ())]


def test_repeat_counts_are_applied_in_constant_time_and_capped() -> None:
    """rspamd writes N <= 298; N up to the cap (1000) is applied by multiplying, beyond it the line is Unparsed."""
    error = "2026-11-24 16:58:18 #1285(controller) <8mjxqq>; map; rspamd_map_dns_callback: cannot resolve x"
    repeated = "2026-11-24 16:58:18 #1285(controller) rspamd_log_reset_repeated: Last message repeated {} times"
    rig = Rig()
    started = time.process_time()
    rig.feed("rspamd", [error, repeated.format(1000), error, repeated.format(1000000000)] * 200)
    elapsed = time.process_time() - started
    samples = rig.scrape()
    # per pair: the line itself, then 999 more (N - 1: one of the N was written again); the 10^9 one refused
    assert 200 * (1 + 999 + 1) == samples[("mailpulse_rspamd_errors_total", (("class", "map"),))]
    assert {"parsed": 600, "unparsed": 200, "foreign": 0, "error": 0} == rig.lines("rspamd")
    assert elapsed < 2.0, elapsed  # a loop over the counts would be 2 * 10^5 handler calls per pair


def test_repeated_verdict_counts_like_separate_lines() -> None:
    """Multiplying a repeated verdict gives exactly what as many separate verdict lines give, in every family."""
    line = "2026-11-24 16:58:18 #1287(normal) " + rspamd_verdict().partition("#1287(normal) ")[2]
    syslog_verdict = "Nov 24 16:58:18 mx rspamd[1287]: " + line.partition("#1287(normal) ")[2]
    repeated = "Nov 24 16:58:18 mx rspamd[1287]: rspamd_log_reset_repeated: Last message repeated 6 times"
    one, many = Rig(), Rig()
    one.feed("rspamd", [syslog_verdict, repeated])
    many.feed("rspamd", [syslog_verdict] * 6)
    families = ("mailpulse_rspamd_scans_total", "mailpulse_rspamd_scan_score", "mailpulse_rspamd_auth_results_total",
                "mailpulse_rspamd_message_size_bytes", "mailpulse_rspamd_scan_duration_seconds")  # fmt: skip

    def pick(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[object, float]:
        return {k: v for k, v in samples.items() if k[0].startswith(families)}

    assert pick(many.scrape()) == pick(one.scrape())


def test_postfix_has_no_repetition_loop() -> None:
    """Postfix has no repetition line; syslog's own forms are foreign (BSD syslogd's, no tag) or unparsed
    (rsyslog's, under the Postfix tag), counted once, at once."""
    rig = Rig()
    started = time.process_time()
    rig.feed("postfix", [
        "Nov 24 16:58:17 mail last message repeated 1000000000 times",
        f"{P}/smtpd[1]: message repeated 1000000000 times: [ connect from x[192.0.2.1]]",
        f"{P}/postsuper[1]: Deleted: 1000000000 messages",
    ])  # fmt: skip
    assert time.process_time() - started < 0.5
    assert {"parsed": 1, "unparsed": 1, "foreign": 1, "error": 0} == rig.lines("postfix")
    assert 1e9 == rig.scrape()[("mailpulse_postfix_queue_admin_messages_total", (("action", "deleted"),))]
