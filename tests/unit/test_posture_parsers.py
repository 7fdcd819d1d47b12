"""The posture checks' pure parts: SPF terms and macros (RFC 7208 §7.4's own examples), DKIM records and
private key files (PKCS#1, PKCS#8, rspamd ed25519), DMARC (RFC 9989) records, MTA-STS policies and MX
patterns, the blocklist code table (Spamhaus errors are never listings), and TLSA matching."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from mailpulse.exporter.features.posture import der, dkimkey, dmarc, dnsbl, mtasts, smtptls, spf
from mailpulse.exporter.features.posture.result import CheckFailed


# -- SPF -----------------------------------------------------------------------------------------------------
def _walk(ip: str, sender: str = "strong-bad@email.example.com") -> spf.Walk:
    return spf.Walk(ipaddress.ip_address(ip), sender, "mx.example.org", enforce=True)


@pytest.mark.parametrize(("macro", "expanded"), [
    ("%{s}", "strong-bad@email.example.com"), ("%{o}", "email.example.com"), ("%{d}", "email.example.com"),
    ("%{d4}", "email.example.com"), ("%{d3}", "email.example.com"), ("%{d2}", "example.com"), ("%{d1}", "com"),
    ("%{dr}", "com.example.email"), ("%{d2r}", "example.email"), ("%{l}", "strong-bad"), ("%{l-}", "strong.bad"),
    ("%{lr}", "strong-bad"), ("%{lr-}", "bad.strong"), ("%{l1r-}", "strong"),
    ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
    ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
    ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
])  # fmt: skip
def test_macro_expansion_rfc7208_examples(macro: str, expanded: str) -> None:
    """Every domain-spec example of RFC 7208 §7.4 (IPv4 client 192.0.2.3)."""
    assert expanded == spf.expand(macro, _walk("192.0.2.3"), "email.example.com")


def test_macro_expansion_ipv6() -> None:
    """RFC 7208 §7.4's IPv6 example: the address in reversed nibbles."""
    want = "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    assert want == spf.expand("%{ir}.%{v}._spf.%{d2}", _walk("2001:db8::cb01"), "email.example.com")


@pytest.mark.parametrize("record", [
    "v=spf1 ip4:192.0.2.300 -all", "v=spf1 ip6:192.0.2.1 -all", "v=spf1 foo:bar -all", "v=spf1 all:x",
    "v=spf1 redirect=a.example redirect=b.example", "v=spf1 a:%x.example -all", "v=spf1 include -all",
    "v=spf1 a/33 -all", "spf1 -all",
])  # fmt: skip
def test_spf_syntax_errors(record: str) -> None:
    """Each record breaks RFC 7208 §4.6.1/§12 once and is a syntax permerror."""
    with pytest.raises(spf.SpfError) as info:
        spf.parse(record)
    assert "syntax" == info.value.reason


def test_spf_terms() -> None:
    """Qualifiers, prefix lengths, modifiers (unknown ones kept and ignored)."""
    terms = spf.parse("v=spf1 -a:mail.example/24//64 ~mx ?ptr ip4:192.0.2.0/24 exists:%{i}.x.example "
                      "include:_spf.example foo=bar redirect=other.example")  # fmt: skip
    assert [("-", "a", 24, 64), ("~", "mx", None, None)] == [(t.qualifier, t.name, t.cidr4, t.cidr6)
                                                              for t in terms[:2]]  # fmt: skip
    assert ["ptr", "ip4", "exists", "include", "foo", "redirect"] == [t.name for t in terms[2:]]
    assert terms[-1].modifier
    assert sum(t.name in spf._COUNTED for t in terms) + 1 == 6  # a mx ptr exists include + redirect


# -- DKIM ----------------------------------------------------------------------------------------------------
def _openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def rsa_pkcs8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dkim") / "rsa.key"
    _openssl("genrsa", "-out", str(path), "1024")
    return path


def test_rsa_key_files_in_both_pem_forms_match_their_record(rsa_pkcs8: Path, tmp_path: Path) -> None:
    """OpenSSL 3's PKCS#8 (what opendkim-genkey and rspamadm write) and traditional PKCS#1 load to the same
    public key, which equals the one in a DKIM record made from the key."""
    pkcs1 = tmp_path / "rsa1.key"
    _openssl("pkey", "-in", str(rsa_pkcs8), "-traditional", "-out", str(pkcs1))
    assert b"BEGIN RSA PRIVATE KEY" in pkcs1.read_bytes()
    p = base64.b64encode(_openssl("pkey", "-in", str(rsa_pkcs8), "-pubout", "-outform", "DER")).decode()
    record = dkimkey.parse_record(f"v=DKIM1; k=rsa; p={p}")
    assert ("rsa", 1024, False) == (record.key.kind, record.key.bits, record.testing)
    for key_file in (rsa_pkcs8, pkcs1):
        assert dkimkey.same_key(record.key, dkimkey.load_private(key_file.read_bytes()))


def test_rspamd_ed25519_key_matches_its_public_half(tmp_path: Path) -> None:
    """rspamd's ed25519 key file is base64(seed || public key): built here from an OpenSSL key, its last 32
    bytes are the record's p=; a PKCS#8 ed25519 key (seed only) is reported, not guessed."""
    pem = tmp_path / "ed.pem"
    _openssl("genpkey", "-algorithm", "ed25519", "-out", str(pem))
    public = _openssl("pkey", "-in", str(pem), "-pubout", "-outform", "DER")[-32:]
    seed = _openssl("pkey", "-in", str(pem), "-outform", "DER")[-32:]
    rspamd_file = base64.b64encode(seed + public)
    record = dkimkey.parse_record(f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}")
    assert dkimkey.same_key(record.key, dkimkey.load_private(rspamd_file))
    with pytest.raises(CheckFailed) as info:
        dkimkey.load_private(pem.read_bytes())
    assert "key_file_unreadable" == info.value.reason


@pytest.mark.parametrize(("record", "reason"), [
    ("v=DKIM1; k=rsa; p=", "revoked"), ("v=DKIM2; p=AAAA", "syntax"), ("v=DKIM1; k=rsa", "syntax"),
    ("v=DKIM1; k=dsa; p=AAAA", "key_type"), ("v=DKIM1; p=!!!", "syntax"), ("v=DKIM1; k=ed25519; p=AAAA", "syntax"),
    ("v=DKIM1; p=AAAA; p=AAAA", "syntax"),
])  # fmt: skip
def test_dkim_record_problems(record: str, reason: str) -> None:
    with pytest.raises(CheckFailed) as info:
        dkimkey.parse_record(record)
    assert reason == info.value.reason


def test_dkim_key_file_garbage() -> None:
    """Neither PEM nor rspamd base64: unreadable, never a crash."""
    for data in (b"", b"hello", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"):
        with pytest.raises(CheckFailed) as info:
            dkimkey.load_private(data)
        assert "key_file_unreadable" == info.value.reason


# -- DMARC ---------------------------------------------------------------------------------------------------
def test_dmarc_record_rfc9989() -> None:
    """np defaults to sp, sp to p; t=y is test mode; pct/ri are read with a warning; rua sizes dropped."""
    policy = dmarc.parse_record("v=DMARC1; p=quarantine; t=y; pct=50; ri=3600; rua=mailto:a@x.example!10m, "
                                "mailto:b@y.example; ruf=mailto:f@x.example")  # fmt: skip
    assert ("quarantine", "quarantine", "quarantine", True, 50) == (policy.p, policy.sp, policy.np, policy.testing,
                                                                    policy.pct)  # fmt: skip
    assert ["a@x.example", "b@y.example"] == policy.rua
    assert 2 == len(policy.warnings)
    assert "reject" == dmarc.parse_record("v=DMARC1; p=none; sp=quarantine; np=reject").np


@pytest.mark.parametrize("record", ["v=DMARC1; p=block", "p=reject; v=DMARC1", "v=DMARC1; p=reject; t=maybe",
                                    "v=DMARC1; p=reject; rua=https://x.example", "v=DMARC1; sp=reject",
                                    "v=DMARC1; p=reject; p=none"])  # fmt: skip
def test_dmarc_syntax(record: str) -> None:
    with pytest.raises(CheckFailed) as info:
        dmarc.parse_record(record)
    assert "syntax" == info.value.reason


def test_dmarc_external_destination() -> None:
    """Report addresses in the domain, a subdomain or a parent need no authorization record; others do."""
    assert dmarc.external("example.org", "d@example.org") is None
    assert dmarc.external("example.org", "d@reports.example.org") is None
    assert dmarc.external("mail.example.org", "d@example.org") is None
    assert "dmarc.vendor.example" == dmarc.external("example.org", "d@dmarc.vendor.example")


# -- MTA-STS -------------------------------------------------------------------------------------------------
def test_mta_sts_policy_and_patterns() -> None:
    policy = mtasts.parse_policy("version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.example.net\r\n"
                                 "max_age: 604800\r\n")  # fmt: skip
    assert ("enforce", 604800, ["mx1.example.org", "*.example.net"]) == (policy.mode, policy.max_age, policy.mx)
    assert mtasts.covers("*.example.net", "mx.example.net")
    assert not mtasts.covers("*.example.net", "a.mx.example.net")
    assert not mtasts.covers("*.example.net", "example.net")
    assert mtasts.covers("MX1.example.org.", "mx1.example.org")
    assert "abc123" == mtasts.parse_txt("v=STSv1; id=abc123;")
    for bad in ("version: STSv1\nmode: enforce\nmax_age: 10\n", "version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",
                "mode: enforce\nmx: a\nmax_age: 1\n", "version: STSv1\nmode: none\nmax_age: 31557601\n"):  # fmt: skip
        with pytest.raises(CheckFailed):
            mtasts.parse_policy(bad)


# -- DNSBL ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("zone", "code", "verdict"), [
    ("spamhaus-zen", "127.0.0.2", ("listed", "sbl")), ("spamhaus-zen", "127.0.0.4", ("listed", "xbl")),
    ("spamhaus-zen", "127.0.0.10", ("listed", "pbl")),
    ("spamhaus-zen", "127.255.255.252", ("error", "typo")),
    ("spamhaus-zen", "127.255.255.254", ("error", "public_resolver")),
    ("spamhaus-zen", "127.255.255.255", ("error", "over_limit")),
    ("spamhaus-zen", "127.0.0.99", ("unknown", "")), ("spamhaus-zen", "192.0.2.1", ("error", "not_loopback")),
    ("spamhaus-dbl", "127.0.1.2", ("listed", "spam")), ("spamhaus-dbl", "127.0.1.255", ("error", "bad_query")),
    ("spamhaus-dbl", "127.255.255.254", ("error", "public_resolver")),
    ("dnswl", "127.0.5.2", ("listed", "listed")), ("dnswl", "127.0.0.255", ("error", "over_limit")),
])  # fmt: skip
def test_zone_code_table(zone: str, code: str, verdict: tuple[str, str]) -> None:
    """Spamhaus's 127.255.255.x and DBL's 127.0.1.255 are errors, never listings (pydnsbl counts them as
    listed); an answer outside 127/8 means a dead or wildcarded zone."""
    assert verdict == dnsbl.DEFAULT_ZONES[zone].meaning(code)


def test_query_names_and_dqs() -> None:
    zen = dnsbl.DEFAULT_ZONES["spamhaus-zen"]
    assert "2.0.0.127.zen.spamhaus.org" == zen.query_name(dnsbl.subject_name("127.0.0.2", "ip"), None)
    assert "2.0.0.127.KEY.zen.dq.spamhaus.net" == zen.query_name("2.0.0.127", "KEY")
    assert dnsbl.subject_name("2001:db8::1", "ip").endswith("8.b.d.0.1.0.0.2")
    assert "example.org" == dnsbl.subject_name("example.org.", "domain")


# -- DANE ----------------------------------------------------------------------------------------------------
def test_tlsa_matching_every_selector_and_type(tmp_path: Path) -> None:
    """DANE-EE against a real certificate: full cert or SPKI, exact, SHA-256 or SHA-512; one wrong byte fails.
    The SPKI the DER walker finds is the one OpenSSL extracts."""
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
             "-subj", "/CN=mx.example", "-days", "3", "-out", str(crt))  # fmt: skip
    leaf = ssl.PEM_cert_to_DER_cert(crt.read_text())
    spki = der.spki(leaf)
    assert _openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER") == spki
    for selector, material in ((0, leaf), (1, spki)):
        for mtype, data in ((0, material), (1, hashlib.sha256(material).digest()),
                            (2, hashlib.sha512(material).digest())):  # fmt: skip
            assert smtptls.tlsa_matches(smtptls.Tlsa(3, selector, mtype, data), leaf)
            assert not smtptls.tlsa_matches(smtptls.Tlsa(3, selector, mtype, data[:-1] + bytes([data[-1] ^ 1])), leaf)
    not_after = der.not_after(leaf)
    assert 2 * 86400 < not_after - time.time() < 4 * 86400
