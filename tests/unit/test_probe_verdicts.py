"""Receiver verdicts: Authentication-Results in every provider's style, trust selection, spam headers,
and the autoresponder's report."""

from __future__ import annotations

from typing import NoReturn

import pytest

from mailpulse.probes.autoreply import parse_report
from mailpulse.probes.verdicts import judge, parse_auth_results, parse_headers, spam_verdict, summarize, trusted_header

GMAIL = (
    "mx.google.com; dkim=pass header.i=@example.org header.s=sel header.b=abc123; arc=pass (i=1 spf=pass); "
    "spf=pass (google.com: domain of probe@example.org designates 192.0.2.1 as permitted sender) "
    "smtp.mailfrom=probe@example.org; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org"
)
M365 = (
    "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.org; dkim=pass (signature was verified) "
    "header.d=example.org;dmarc=pass action=none header.from=example.org;compauth=pass reason=100"
)
M365_STRAY = (
    "unknown; spf=fail (sender IP is 192.0.2.9) smtp.mailfrom=eu-west-1.amazonses.com; recevingdomain.com; "
    "dkim=pass (signature was verified) header.d=domain.com;domain1.com; dmarc=bestguesspass action=none "
    "header.from=domain.com;"
)
M365_EXTRA = "unknown; spf=pass (sender IP is 209.85.222.48); smtp.mailfrom=valimail.com; dkim=none; dmarc=none"
YAHOO = (
    "atlas220.free.mail.bf1.yahoo.com; dkim=pass header.i=@example.org header.s=s1; spf=pass "
    "smtp.mailfrom=example.org; dmarc=pass(p=REJECT) header.from=example.org;"
)
RSPAMD = (
    "mx.example.test;\r\n\tdkim=pass header.d=example.test header.s=lab header.b=lWysZgno;\r\n\tspf=pass "
    "(mx.example.test: domain of probe@example.test designates 127.0.0.2 as permitted sender) "
    "smtp.mailfrom=probe@example.test;\r\n\tdmarc=pass (policy=reject) header.from=example.test"
)
ARC = "i=1; mx.google.com; dkim=pass header.i=@example.org; spf=pass smtp.mailfrom=example.org; dmarc=pass"  # fmt: skip


@pytest.mark.parametrize(
    ("value", "authserv_id", "expected", "lenient"),
    [
        (GMAIL, "mx.google.com", {"dkim": "pass", "arc": "pass", "spf": "pass", "dmarc": "pass"}, False),
        (M365, None, {"spf": "pass", "dkim": "pass", "dmarc": "pass", "compauth": "pass"}, True),
        (M365_STRAY, "unknown", {"spf": "fail", "dkim": "pass", "dmarc": "bestguesspass"}, True),
        (M365_EXTRA, "unknown", {"spf": "pass", "dkim": "none", "dmarc": "none"}, False),
        (YAHOO, "atlas220.free.mail.bf1.yahoo.com", {"dkim": "pass", "spf": "pass", "dmarc": "pass"}, True),
        (RSPAMD, "mx.example.test", {"dkim": "pass", "spf": "pass", "dmarc": "pass"}, False),
        (ARC, "mx.google.com", {"dkim": "pass", "spf": "pass", "dmarc": "pass"}, False),
        ("mx.example.test; none", "mx.example.test", {}, False),
        ("garbage ;;; (unclosed", "garbage", {}, True),
    ],
    ids=["gmail", "m365", "m365-stray-tokens", "m365-extra-semicolon", "yahoo-trailing", "rspamd", "arc", "none",
         "garbage"],
)  # fmt: skip
def test_auth_results_in_every_style(value: str, authserv_id: str | None, expected: dict[str, str],
                                     lenient: bool) -> None:  # fmt: skip
    """authres parses what it can; the lenient fallback parses the rest; results come out per method."""
    header = parse_auth_results(value)
    assert authserv_id == header.authserv_id
    assert expected == summarize(header)
    assert lenient == header.lenient


def test_lenient_keeps_properties_and_skips_comments() -> None:
    """ptype.prop=value pairs survive; a ';' inside a comment does not split a result."""
    header = parse_auth_results("mx.x; dkim=fail (bad; really) header.d=example.org header.s=s1;")
    assert header.lenient
    (result,) = header.results
    assert ("dkim", "fail", {"header.d": "example.org", "header.s": "s1"}) == (result.method, result.result,
                                                                               result.props)  # fmt: skip


def test_trust_the_receivers_header() -> None:
    """The expected authserv-id wins wherever it is; without one the topmost header (the receiver's) wins;
    with an expected id that nobody used, nothing is trusted."""
    sender_own = "mail.example.test; dkim=none; spf=fail smtp.mailfrom=x"
    receiver = "mx.remote.test; dkim=pass header.d=example.test; spf=pass smtp.mailfrom=x"
    assert "mx.remote.test" == (trusted_header([receiver, sender_own], None) or _no()).authserv_id
    assert "mx.remote.test" == (trusted_header([sender_own, receiver], "*.remote.test") or _no()).authserv_id
    assert trusted_header([sender_own], "mx.google.com") is None


def _no() -> NoReturn:
    raise AssertionError("no header")


SPAM_CASES = [
    ("X-Spamd-Result: default: False [-1.00 / 15.00];\r\n\tR_DKIM_ALLOW(-0.20)[example.test:s=lab]\r\n",
     (-1.0, "rspamd", False)),
    ("X-Spamd-Result: default: True [12.00 / 15.00];\r\n\tLAB_SCORE(8.00)[lab=8]\r\nX-Spam: Yes\r\n",
     (12.0, "rspamd", True)),
    ("X-Spam-Status: Yes, score=7.1 required=5.0 tests=GTUBE autolearn=no\r\n", (7.1, "spamassassin", True)),
    ("X-Spam-Status: No, score=-0.1 required=5.0\r\nX-Spam-Flag: NO\r\n", (-0.1, "spamassassin", False)),
    ("X-MS-Exchange-Organization-SCL: 5\r\n", (5.0, "microsoft_scl", True)),
    ("X-Forefront-Antispam-Report: CIP:192.0.2.1;CTRY:;LANG:en;SCL:1;SRV:;IPV:NLI;SFV:NSPM;\r\n",
     (1.0, "microsoft_scl", False)),
    ("Subject: nothing\r\n", (None, None, None)),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "expected"), SPAM_CASES)
def test_spam_headers(headers: str, expected: tuple[float | None, str | None, bool | None]) -> None:
    """Score, engine and flag from rspamd, SpamAssassin and Microsoft headers."""
    verdict = spam_verdict(parse_headers(headers.encode() + b"\r\n"))
    assert expected == (verdict.score, verdict.engine, verdict.flagged)


def test_rspamd_last_header_is_the_newest_hop() -> None:
    """rspamd's milter appends: with two X-Spamd-Result headers the bottom one is the receiver's."""
    raw = (b"X-Spamd-Result: default: False [-1.00 / 15.00]\r\nSubject: x\r\n"
           b"X-Spamd-Result: default: True [9.00 / 15.00]\r\n\r\n")  # fmt: skip
    assert 9.0 == spam_verdict(parse_headers(raw)).score


def test_microsoft_dest_and_judge() -> None:
    """dest:J says Junk; judge() combines the trusted A-R, ARC from ARC-Authentication-Results, spam verdict."""
    raw = (f"Authentication-Results: {M365}\r\nARC-Authentication-Results: i=1; mx.microsoft.com 1; arc=pass\r\n"
           "X-Microsoft-Antispam-Mailbox-Delivery: ucf:0;jmr:0;auth:0;dest:J;ENG:(910001)\r\n"
           "X-MS-Exchange-Organization-SCL: 6\r\n\r\n").encode()  # fmt: skip
    verdict = judge(parse_headers(raw), None)
    assert {"spf": "pass", "dkim": "pass", "dmarc": "pass", "compauth": "pass"} == {
        k: v for k, v in verdict.auth.items() if k != "arc"}  # fmt: skip
    assert ("junk", 6.0, True) == (verdict.spam.provider_dest, verdict.spam.score, verdict.spam.flagged)


PORT25 = b"""From: check-auth@verifier.port25.com\r
Subject: Authentication Report\r
Content-Type: text/plain\r
\r
==========================================================\r
Summary of Results\r
==========================================================\r
SPF check:          pass\r
"iprev" check:      pass\r
DKIM check:         fail\r
DMARC check:        pass\r
SpamAssassin check: ham\r
"""
ECHO = b"""Subject: Re: mailpulse probe p1 abc\r
Content-Type: text/plain; charset=utf-8\r
\r
This is what I saw:\r
\r
Authentication-Results: mx.partner.test;\r
\tdkim=pass header.d=example.test header.s=lab;\r
\tspf=pass smtp.mailfrom=probe@example.test;\r
\tdmarc=pass (policy=reject) header.from=example.test\r
Spam score: -1.00\r
"""


def test_autoresponder_reports() -> None:
    """port25-style summary lines and echoed Authentication-Results both give per-method results."""
    port25 = parse_report(PORT25)
    assert {"spf": "pass", "dkim": "fail", "dmarc": "pass"} == port25.auth
    echo = parse_report(ECHO)
    assert {"dkim": "pass", "spf": "pass", "dmarc": "pass"} == echo.auth
    assert ("mx.partner.test", -1.0) == (echo.authserv_id, echo.spam_score)


def test_a_none_result_among_others_falls_back_to_the_lenient_reader() -> None:
    """Found by the property test: authres accepts `dkim=passmx.x; none` with a result that has no method."""
    header = parse_auth_results("mx.x; dkim=passmx.x; none")
    assert header.lenient
