"""Property: the rspamd parser returns an event, Noise, Unparsed or FOREIGN for every input and never raises;
the aggregator counts whatever the parser returns without raising either."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.metrics.rspamd import RspamdAggregator
from mailpulse.parsers.results import Foreign, Unparsed
from mailpulse.parsers.rspamd import RspamdParser
from mailpulse.parsers.rspamd.events import Noise, RspamdEvent
from mailpulse.parsers.rspamd.symbols import auth_results, parse_symbols, signed_domains

PARSER = RspamdParser()
LAB_LINES = (Path(__file__).resolve().parent.parent / "fixtures" / "lab" / "rspamd.log").read_text().splitlines()
VERDICTS = [line for line in LAB_LINES if "rspamd_task_write_log" in line]
PREFIXES = [
    "2026-11-24 16:58:18 #25874(normal) <896180>; task; rspamd_task_write_log: ",
    "2026-11-24 16:58:18 #25874(normal) <896180>; task; rspamd_task_write_log: id: <m@x>, (default: F (",
    "2026-11-24 16:58:18 #25874(normal) <896180>; lua; greylist.lua:430: ",
    "2026-11-24 16:58:18 #1280(main) <fcc6c3>; main; rspamd_check_termination_clause: ",
    "2026-11-24 16:58:18.12345 [error] #1280(main) ",
    "2026-11-24 16:58:18 #1285(controller) rspamd_log_reset_repeated: Last message repeated ",
    "Nov 24 16:58:18 mx rspamd[25874]: <896180>; task; rspamd_task_write_log: ",
    "(normal) <896180>; task; ",
]
AGG = RspamdAggregator(RspamdConfig(symbols=("BAYES_SPAM", "R_SPF_ALLOW"), signing_domains=("example.test",)))
HANDLERS = AGG.handlers()


def _check(result: object) -> None:
    assert isinstance(result, RspamdEvent | Noise | Unparsed | Foreign)
    handler = HANDLERS.get(type(result))
    if handler is not None:
        handler(result)
    AGG.end_batch()  # a batch of one line: the verdict is labelled and counted now


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text(line: str) -> None:
    """Any text at all, as a line and as a journald message."""
    _check(PARSER.parse_line(line))
    _check(PARSER.parse_fields("2026-11-24T16:58:18+00:00", "rspamd", line))


@settings(max_examples=1500)
@given(st.sampled_from(PREFIXES), st.text())
def test_rspamd_prefix_then_anything(prefix: str, rest: str) -> None:
    """A valid prefix followed by arbitrary text reaches the verdict reader and the side-line handlers."""
    _check(PARSER.parse_line(prefix + rest))


@settings(max_examples=2000)
@given(st.sampled_from(VERDICTS), st.integers(min_value=0, max_value=1200), st.text(max_size=30))
def test_real_verdicts_cut_and_spliced(line: str, cut: int, junk: str) -> None:
    """Real verdict lines cut anywhere (rspamd's 8 KiB limit, a torn write) and with junk spliced in."""
    _check(PARSER.parse_line(line[:cut]))
    _check(PARSER.parse_line(line[:cut] + junk + line[cut:]))


@settings(max_examples=1000)
@given(st.sampled_from(VERDICTS), st.lists(st.sampled_from(list("{}[](),;\" :")), max_size=12),
       st.integers(min_value=0, max_value=1200))  # fmt: skip
def test_real_verdicts_with_separators_inserted(line: str, chars: list[str], at: int) -> None:
    """The separators the readers cut at, inserted anywhere in a real verdict."""
    _check(PARSER.parse_line(line[:at] + "".join(chars) + line[at:]))


@settings(max_examples=1000)
@given(st.text(alphabet=st.sampled_from(list("ABR_DKIMSPFARCNAL(){},;.0123456789-")), max_size=200))
def test_symbol_readers(text: str) -> None:
    """The symbol readers on symbol-like noise."""
    assert isinstance(parse_symbols(text), list)
    assert len(auth_results(text)) == 4
    assert isinstance(signed_domains(text), tuple)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_binary_decoded_with_replacement(data: bytes) -> None:
    """Bytes that are not UTF-8, decoded the way the sources decode them."""
    _check(PARSER.parse_line(data.decode("utf-8", "replace")))


def test_collect_after_all_that() -> None:
    """Whatever was counted, the families can be built."""
    assert len(list(AGG.collect())) == len(AGG.families)
