"""Whatever a server or a sender puts in a header or an IMAP response, the probe parsers never raise,
and nothing without the key passes as a probe tag."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailpulse.probes.autoreply import parse_report
from mailpulse.probes.imapparse import decode_mutf7, parse_fetch, parse_list
from mailpulse.probes.message import make_tag, parse_tag, tokens_in
from mailpulse.probes.verdicts import RESULTS, judge, parse_auth_results, parse_headers, summarize

KEY = b"0123456789abcdef0123456789abcdef"
AR_ALPHABET = st.sampled_from(list('abcdefgijklmnoprstuvwxyz.=;()@ -_"\\\t\r\n0123456789')) | st.characters()
ar_text = st.lists(AR_ALPHABET, max_size=200).map("".join)
ar_like = st.lists(st.sampled_from(["mx.x;", " dkim=pass", " spf=fail", " (c;m)", " header.d=x", ";", " i=1;",
                                    " dmarc=", "(", ")", " smtp.mailfrom=a@b", " none", "=", '"q;"']),
                   max_size=30).map("".join)  # fmt: skip
lines = st.lists(st.one_of(st.binary(max_size=80), st.binary(max_size=80).map(bytearray),
                           st.sampled_from([b"1 FETCH (UID 5 BODY[HEADER] {3}", b'INTERNALDATE "x"', b")",
                                            b'(\\Junk) "/" {3}', b'() NIL "a"'])), max_size=20)  # fmt: skip


@settings(max_examples=300)
@given(st.one_of(ar_text, ar_like))
def test_auth_results_never_raise(value: str) -> None:
    """Any Authentication-Results value parses (strictly or leniently) into known methods only."""
    header = parse_auth_results(value)
    assert set(summarize(header)) <= {"dkim", "spf", "dmarc", "arc", "compauth"}


@settings(max_examples=300)
@given(lines)
def test_imap_responses_never_raise(raw: list[bytes | bytearray]) -> None:
    """Arbitrary FETCH/LIST response lines never make the parsers raise."""
    parse_fetch(raw)
    parse_list(raw)


@given(st.text(max_size=60))
def test_mutf7_never_raises(name: str) -> None:
    decode_mutf7(name)


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_headers_and_reports_never_raise(raw: bytes) -> None:
    """Any bytes as a header block or an autoresponder reply give a verdict or a report, no exception."""
    judge(parse_headers(raw), None)
    parse_report(raw)


@given(st.text(max_size=120), st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=26, max_size=26))
def test_no_tag_without_the_key(text: str, token: str) -> None:
    """Random text is never a valid tag or a valid probe Message-ID; a real tag is."""
    assert parse_tag(text, KEY) is None
    assert tokens_in(text, KEY) == []
    assert parse_tag(make_tag(KEY, token, "p", 1), KEY) is not None


HEADER_NAMES = ["Received", "Authentication-Results", "ARC-Authentication-Results", "X-Spam-Status", "X-Spamd-Result",
                "X-Rspamd-Queue-Id", "X-Forefront-Antispam-Report", "X-Microsoft-Antispam-Mailbox-Delivery",
                "X-MS-Exchange-Organization-SCL", "X-Spam", "From"]  # fmt: skip
FRAGMENTS = ["from mx.a.example (mx.a.example [192.0.2.1]) by mx.b.example with ESMTPS id 4Q1", "by gw with LMTP",
             "from [127.0.0.1] (localhost [127.0.0.1])", "(unknown [", "mx.x.example; dkim=pass", "spf=fail;",
             "=?utf-8?B?", "=?utf-8?Q?a=3Db?=", "?=", "=?x?", "DIR:OUT;", "DIR:INB;", "SFV:SPM;", "SCL:-1;",
             "SCL:99999999999999999999;", "dest:J;", "OFR:SpamFilterAuthJ;", "default: True [1e308 / 15.00]",
             "Yes, score=nan required=5", "4Q1", ";", " ", "\r\n\t", "\xff", "\x00", "é"]  # fmt: skip
header_value = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=12).map("".join)
header_block = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_value), max_size=25)


@settings(max_examples=300)
@given(header_block, st.sampled_from([None, "*.x.example", "mx.[", "dmarc.icloud.com"]))
def test_receiver_layouts_never_raise(block: list[tuple[str, str]], authserv_id: str | None) -> None:
    """Any mix of Received lines, split or encoded Authentication-Results and spam headers gives a verdict with
    known methods and bounded results only, never an exception."""
    raw = "".join(f"{name}: {value.replace(chr(13), ' ').replace(chr(10), ' ')}\r\n" for name, value in block)
    verdict = judge(parse_headers(raw.encode("utf-8", "surrogateescape") + b"\r\n"), authserv_id,
                    frozenset({"x.example"}))  # fmt: skip
    assert set(verdict.auth) <= {"dkim", "spf", "dmarc", "arc", "compauth"}
    assert set(verdict.auth.values()) <= {*RESULTS, "other"}
    assert verdict.spam.score is None or isinstance(verdict.spam.score, float)
