"""The symbol list of a verdict: the complete brace-aware reader, and the fast lookups the hot path uses.

The fast lookups must agree with the complete reader on every real line; the complete reader must keep
symbols whole whatever their options contain (rspamd escapes nothing).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mailpulse.parsers.rspamd import RspamdParser, verdict
from mailpulse.parsers.rspamd.events import RspamdScan
from mailpulse.parsers.rspamd.symbols import (
    Symbol,
    SymbolMatcher,
    auth_from_symbols,
    auth_results,
    has_symbol,
    parse_symbols,
    signed_domains,
    split_options,
    symbol_options,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "lab" / "rspamd.log"


def lab_scans() -> list[RspamdScan]:
    parser = RspamdParser()
    events = (parser.parse_line(line) for line in FIXTURE.read_text().splitlines())
    return [e for e in events if isinstance(e, RspamdScan)]


def test_plain_list() -> None:
    """Names, scores and options of a lab list."""
    text = "R_SPF_ALLOW(-0.20){+ip4:127.0.0.2;},ARC_NA(0.00){},DKIM_TRACE(0.00){example.test:+;}"
    assert parse_symbols(text) == [
        Symbol("R_SPF_ALLOW", -0.2, ("+ip4:127.0.0.2",)),
        Symbol("ARC_NA", 0.0, ()),
        Symbol("DKIM_TRACE", 0.0, ("example.test:+",)),
    ]


def test_options_with_separators_inside() -> None:
    """Commas, braces, brackets, quotes and ``]), `` inside options stay inside their symbol."""
    text = (
        'SUBJ(3.00){Hello, {world} "q" ]), len: 1;x},y;},PHISHING(2.00){a.test->b.test;},'
        "DMARC_POLICY_REJECT(2.00){example.test : No valid SPF, No valid DKIM;reject;}"
    )
    symbols = parse_symbols(text)
    assert [s.name for s in symbols] == ["SUBJ", "PHISHING", "DMARC_POLICY_REJECT"]
    assert symbols[0].options == ('Hello, {world} "q" ]), len: 1', "x},y")
    assert symbols[2].options == ("example.test : No valid SPF, No valid DKIM", "reject")


def test_cut_options_and_cut_list() -> None:
    """``...;`` (max_log_elts) is kept as an option; a list cut inside an option block ends there."""
    assert parse_symbols("A(1.00){x;...;}") == [Symbol("A", 1.0, ("x", "..."))]
    assert parse_symbols("A(1.00){x;},B(2.00){trunc") == [Symbol("A", 1.0, ("x",)), Symbol("B", 2.0, ("trunc",))]


def test_formats_without_options_or_scores() -> None:
    """``$symbols_scores`` (no options) and ``$symbols`` (names only) are read too."""
    assert parse_symbols("A(1.00),B(-2.50)") == [Symbol("A", 1.0, ()), Symbol("B", -2.5, ())]
    names_only = parse_symbols("A,B")
    assert [s.name for s in names_only] == ["A", "B"]
    assert math.isnan(names_only[0].score)


@pytest.mark.parametrize("text", ["", "(", "{", "A(", "A(1.00){", ",,,", "A(x){}", "]]]", "A(1.00)}B"])
def test_damaged_lists_never_raise(text: str) -> None:
    assert isinstance(parse_symbols(text), list)


def test_split_options() -> None:
    assert split_options("") == ()
    assert split_options("a;b;") == ("a", "b")
    assert split_options("a;b") == ("a", "b")


def test_lookups() -> None:
    """A name counts only at a symbol boundary, followed by its score."""
    text = "X_R_DKIM_ALLOW(1.00){},DKIM_SIGNED(0.00){Example.Test:s=lab;},A(0.00){DKIM_SIGNED(}"
    assert has_symbol(text, "DKIM_SIGNED")
    assert not has_symbol(text, "R_DKIM_ALLOW")
    assert has_symbol(text, "X_R_DKIM_ALLOW")
    assert symbol_options(text, "DKIM_SIGNED") == "Example.Test:s=lab;"
    assert symbol_options(text, "A") == "DKIM_SIGNED("
    assert symbol_options(text, "NOPE") is None


@pytest.mark.parametrize(
    ("text", "domains"),
    [
        ("DKIM_SIGNED(0.00){example.test:s=lab;}", ("example.test",)),
        ("A(1.00){},DKIM_SIGNED(0.00){A.test:s=x;b.TEST:s=y;}", ("a.test", "b.test")),
        ("DKIM_SIGNED(0.00){}", ()),
        ("DKIM_SIGNED(0.00){a.test:s=x;...;}", ("a.test",)),
        ("R_DKIM_ALLOW(-0.20){a.test:s=x;}", ()),
        ("DKIM_SIGNED(0.00){cut.test:s=x", ("cut.test",)),
    ],
)
def test_signed_domains(text: str, domains: tuple[str, ...]) -> None:
    assert signed_domains(text) == domains


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("none", "none", "none", "none")),
        ("DMARC_NA(0.00){x;}", ("none", "none", "na", "none")),  # ARC_NA is the tail of DMARC_NA
        ("ARC_NA(0.00){},DMARC_NA(0.00){x;}", ("none", "none", "na", "na")),
        ("DMARC_DNSFAIL(0.00){},ARC_SIGNED(0.00){x;}", ("none", "none", "dnsfail", "none")),
        ("R_DKIM_REJECT(1.00){a;},R_DKIM_ALLOW(-0.20){b;}", ("allow", "none", "none", "none")),  # two signatures
        ("R_DKIM_REJECT(1.00){a;},R_DKIM_TEMPFAIL(0.00){b;}", ("reject", "none", "none", "none")),
        ("DMARC_POLICY_ALLOW_WITH_FAILURES(-0.50){},DMARC_POLICY_ALLOW(0.00){x;reject;}",
         ("none", "none", "allow_with_failures", "none")),
        ("R_SPF_SOFTFAIL(0.00){~all;},R_SPF_FAIL_X(0.00){}", ("none", "softfail", "none", "none")),
        ("ARC_ALLOW(-1.00){x:s=y:i=1;},R_SPF_PERMFAIL(0.00){},DMARC_BAD_POLICY(0.50){}",
         ("none", "permfail", "bad_policy", "allow")),
        ("ARC_DNSFAIL(0.00){},R_SPF_NEUTRAL(0.00){?all;},R_DKIM_PERMFAIL(0.00){}",
         ("permfail", "neutral", "none", "dnsfail")),
        ("R_DKIM_WHATEVER(0.00){}", ("none", "none", "none", "none")),
    ],
)  # fmt: skip
def test_auth_results(text: str, expected: tuple[str, str, str, str]) -> None:
    """One result per method, the precedence of vocab.AUTH_RESULTS; the fast path and the complete reader
    say the same."""
    assert auth_results(text) == expected
    assert auth_from_symbols(parse_symbols(text)) == expected


def test_fast_lookups_agree_with_the_complete_reader_on_every_lab_line() -> None:
    """On every verdict of the lab log: auth results and signing domains, both ways."""
    scans = lab_scans()
    assert len(scans) == 111
    for scan in scans:
        symbols = parse_symbols(scan.symbols)
        assert scan.auth == auth_from_symbols(symbols), scan.symbols
        signed = next((s for s in symbols if s.name == "DKIM_SIGNED"), None)
        expected = tuple(o.partition(":")[0].lower() for o in signed.options) if signed else ()
        assert scan.signed == expected


def test_symbol_matcher() -> None:
    """Configured names found at boundaries only; a common substring filters lists out first."""
    matcher = SymbolMatcher(["CLAM_VIRUS", "CLAM_VIRUS_FAIL", "FPROT_VIRUS"])
    text = "A(1.00){CLAM_VIRUS(},CLAM_VIRUS_FAIL(0.00){failed;}"
    assert matcher.present(text) == ["CLAM_VIRUS_FAIL"]
    assert matcher.present("CLAM_VIRUS(0.00){Eicar;}") == ["CLAM_VIRUS"]
    assert list(matcher.candidates(["A(0.00){}", text])) == [text]
    assert not SymbolMatcher([])
    single = SymbolMatcher(["BAYES_SPAM"])
    assert list(single.candidates(["x", "y"])) == ["x", "y"]
    assert single.present("A(0.00){},BAYES_SPAM(5.10){99.9%;}") == ["BAYES_SPAM"]


def test_fast_and_general_verdict_readers_agree_on_every_lab_line() -> None:
    """The default-layout reader and the general (custom format) reader read every lab verdict alike."""
    for line in FIXTURE.read_text().splitlines():
        _, sep, text = line.partition("; rspamd_task_write_log: ")
        if not sep:
            continue
        fast = verdict.parse_verdict("ts", "tag", text)
        head, _, rest = text.partition(" (default: ")
        general = verdict._custom("ts", "tag", head, rest)
        assert fast is not None
        assert general is not None
        for field in ("action", "score", "size", "seconds", "symbols", "auth", "complete", "forced_action",
                      "forced_by", "settings_id", "qid", "message_id", "signed", "authenticated"):  # fmt: skip
            assert getattr(fast, field) == getattr(general, field), (field, line)
