"""Property: the Postfix parser returns an event, Unparsed or FOREIGN for every input, and never raises."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpulse.parsers.postfix import PostfixParser
from mailpulse.parsers.postfix.events import PostfixEvent
from mailpulse.parsers.results import Foreign, Unparsed

PARSE = PostfixParser()
LAB_LINES = (Path(__file__).resolve().parent.parent / "fixtures" / "lab" / "postfix.log").read_text().splitlines()
PREFIXES = ["Nov 24 16:58:17 mail postfix/smtpd[1]: ", "Nov 24 16:58:17 mail postfix/smtp[1]: ",
            "Nov 24 16:58:17 mail postfix/qmgr[1]: ", "Nov 24 16:58:17 mail postfix/cleanup[1]: ",
            "Nov 24 16:58:17 mail postfix/postscreen[1]: ", "2026-11-24T16:58:17+00:00 mail postfix/anvil[1]: ",
            "Nov 24 16:58:17 mail postfix/submission/smtpd[1]: warning: "]  # fmt: skip


def _ok(result: object) -> bool:
    return isinstance(result, PostfixEvent | Unparsed | Foreign)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text(line: str) -> None:
    """Any text at all."""
    assert _ok(PARSE(line))


@settings(max_examples=1500)
@given(st.sampled_from(PREFIXES), st.text())
def test_postfix_prefix_then_anything(prefix: str, rest: str) -> None:
    """A valid Postfix prefix followed by arbitrary text reaches every daemon's rules."""
    assert _ok(PARSE(prefix + rest))


@settings(max_examples=1500)
@given(st.sampled_from(LAB_LINES), st.integers(min_value=0, max_value=400), st.text(max_size=20))
def test_real_lines_cut_and_spliced(line: str, cut: int, junk: str) -> None:
    """Real lab lines truncated anywhere and with junk spliced in (damaged logs)."""
    assert _ok(PARSE(line[:cut]))
    assert _ok(PARSE(line[:cut] + junk + line[cut:]))


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_binary_decoded_with_replacement(data: bytes) -> None:
    """Bytes that are not UTF-8, decoded the way the sources decode them."""
    assert _ok(PARSE(data.decode("utf-8", "replace")))
