"""Property: whatever number a real line carries (huge, non-ASCII digits, superscripts, inf, nan, NUL), the
parsers do not raise (strict mode), the aggregators count it without raising, and /metrics renders."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest

from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.metrics.collector import MailpulseCollector, SelfMetrics, make_registry
from mailpulse.parsers.postfix import PostfixParserConfig
from tests.helpers import Aggregators, build_formats

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab"
LINES = {
    "postfix": (FIXTURES / "postfix.log").read_text().splitlines(),
    "rspamd": (FIXTURES / "rspamd.log").read_text().splitlines(),
}
NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")

NUMBERISH = st.one_of(
    st.integers(min_value=300, max_value=5000).map(lambda n: "9" * n),  # far beyond any float
    st.integers(min_value=10**15, max_value=10**40).map(str),
    st.sampled_from(["inf", "-inf", "nan", "-nan", "1e999", "-1e999", "1_000", " 1", "+1", "0x1f", "1.2.3", ".", ""]),
    st.text(alphabet="\u00b2\u00b3\u00b9\u2070\u0660\u0661\u0662\u06f1\u0967\uff11\u2460", min_size=1, max_size=5),
    st.text(alphabet="0123456789\x00", min_size=1, max_size=8),
    st.text(max_size=8),
)

AGGREGATORS = Aggregators.create(RspamdConfig(symbols=("BAYES_SPAM",), signing_domains=("lab.test",)))
FORMATS = build_formats(AGGREGATORS, PostfixParserConfig(), RspamdConfig())
SELF = SelfMetrics("test")
REGISTRY = make_registry(MailpulseCollector(threading.Lock(), SELF, AGGREGATORS.parts()), False)


def _count(fmt: str, line: str) -> None:
    event = FORMATS[fmt].parse_line(line)
    handler = FORMATS[fmt].handlers.get(type(event))
    if handler is not None:
        handler(event)
    end_batch = FORMATS[fmt].end_batch
    if end_batch is not None:  # a batch of one line, as the pipeline ends each batch
        end_batch()


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(LINES)), st.data(), NUMBERISH)
def test_any_number_in_a_real_line(fmt: str, data: st.DataObject, token: str) -> None:
    """One number of a real line replaced by anything number-like: counted (parsed or not), never raises."""
    line = data.draw(st.sampled_from(LINES[fmt]))
    spans = [m.span() for m in NUMBER.finditer(line)]
    if spans:
        start, end = data.draw(st.sampled_from(spans))
        line = line[:start] + token + line[end:]
    _count(fmt, line)


@settings(max_examples=300)
@given(st.sampled_from(sorted(LINES)), st.data(), st.lists(NUMBERISH, min_size=1, max_size=6))
def test_every_number_in_a_real_line(fmt: str, data: st.DataObject, tokens: list[str]) -> None:
    """Every number of a line replaced at once (cycling through the tokens)."""
    line = data.draw(st.sampled_from(LINES[fmt]))
    i = iter(range(10**6))
    _count(fmt, NUMBER.sub(lambda _: tokens[next(i) % len(tokens)], line))


def test_metrics_render_after_all_that() -> None:
    """Whatever was counted above, every part collects without error and the exposition is produced."""
    text = generate_latest(REGISTRY).decode()
    assert "mailpulse_rspamd_scans_total" in text
    assert "postfix_qmgr_messages_removed_total" in text
    assert {} == SELF.collect_errors
