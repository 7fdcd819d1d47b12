"""The report parsers: each fixture's outcome, bombs and limits, and a bounded fuzz run with fixed seeds."""

from __future__ import annotations

import io
import random
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from mailpulse.parsers.reports import Complaint, DmarcReport, Limits, Rejected, TlsReport, parse_file
from mailpulse.parsers.reports.unpack import gunzip, sniff, unzip

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
NOW = 1767225600.0  # 2026-01-01

# fixture -> (kind, reject reason or "", quirks that must be reported)
CASES = [
    ("own/dmarc-google.zip", "dmarc", "", ()),
    ("own/dmarc-gzip-trailing-bytes.xml.gz", "dmarc", "", ("gzip_trailing_bytes",)),
    ("own/dmarc-unclosed-root.xml", "dmarc", "", ("unclosed_root",)),
    ("own/dmarc-capitalised.xml", "dmarc", "", ("letter_case",)),
    ("own/dmarc-stray-text.xml", "dmarc", "", ("trailing_text",)),
    ("own/dmarc-invalid-utf8.xml", "dmarc", "", ("invalid_utf8",)),
    ("own/dmarc-empty-org.xml", "dmarc", "", ("empty_org",)),
    ("own/dmarc-missing-sp-pct.xml", "dmarc", "", ()),
    ("own/dmarc-implausible-dates.xml", "dmarc", "", ("implausible_dates",)),
    ("own/dmarc-bad-record.xml", "dmarc", "", ("bad_record",)),
    ("own/dmarc-v2-no-namespace.xml", "dmarc", "", ()),
    ("own/dmarc-v2-namespace.xml", "dmarc", "", ()),
    ("own/dmarc-octet-stream.eml", "dmarc", "", ()),
    ("own/tlsrpt-microsoft.json.gz", "tlsrpt", "", ()),
    ("own/tlsrpt-naive-datetime.json", "tlsrpt", "", ("naive_datetime", "mx_host_string")),
    ("own/tlsrpt-google.eml", "tlsrpt", "", ()),
    ("own/arf-base64-mixed.eml", "arf", "", ("base64_feedback",)),
    ("own/arf-yahoo.eml", "arf", "", ()),
    ("own/bad-billion-laughs.xml", "dmarc", "xml_dtd", ()),
    ("own/bad-two-members.zip", "unknown", "zip_members", ()),
    ("own/bad-truncated.xml.gz", "unknown", "bad_gzip", ()),
    ("own/bad-syntax.json", "tlsrpt", "json_syntax", ()),
    ("own/bad-not-feedback.xml", "dmarc", "not_a_report", ()),
    ("own/bad-no-report.eml", "unknown", "no_report", ()),
    ("own/bad-missing-report-id.xml", "dmarc", "missing_field", ()),
    ("realworld/rfc9990-sample.xml", "dmarc", "", ("implausible_dates",)),
    ("realworld/report_with_upper_cased_pass.xml", "dmarc", "", ("letter_case",)),
    ("realworld/rfc8460.json", "tlsrpt", "", ("mx_host_string",)),
    ("realworld/mail.ru.json", "tlsrpt", "", ("failure_count_mismatch",)),
    ("realworld/google.com_smtp_tls_report.eml", "tlsrpt", "", ()),
    ("realworld/dmarc_ruf_report_linkedin.eml", "arf", "", ()),
]


@pytest.mark.parametrize(("name", "kind", "reason", "quirks"), CASES)
def test_fixture_outcome(name: str, kind: str, reason: str, quirks: tuple[str, ...]) -> None:
    """Each fixture gives one report of its kind with the quirks it has, or a rejection with its reason."""
    results = parse_file((FIXTURES / name).read_bytes(), NOW)
    assert 1 == len(results)
    result = results[0]
    assert kind == result.kind
    assert reason == (result.reason if isinstance(result, Rejected) else "")
    assert set(quirks) <= set(result.quirks)


def test_dmarc_fields_and_schema() -> None:
    """Both schemas read the same fields; 2.0 is told by namespace or by its fields, an override is kept."""
    v1 = parse_file((FIXTURES / "own/dmarc-capitalised.xml").read_bytes(), NOW)[0]
    v2 = parse_file((FIXTURES / "own/dmarc-v2-no-namespace.xml").read_bytes(), NOW)[0]
    ns = parse_file((FIXTURES / "own/dmarc-v2-namespace.xml").read_bytes(), NOW)[0]
    assert isinstance(v1, DmarcReport)
    assert isinstance(v2, DmarcReport)
    assert isinstance(ns, DmarcReport)
    assert ("1.0", "2.0", "2.0") == (v1.schema, v2.schema, ns.schema)
    assert [("quarantine", "fail", "fail", 4), ("none", "pass", "pass", 6)] == [
        (r.disposition, r.dkim, r.spf, r.count) for r in v1.records
    ]
    assert "example.com" == v1.records[1].header_from  # EXAMPLE.COM
    assert ("trusted_forwarder",) == v2.records[1].reasons
    assert "pass" == v2.records[0].disposition


def test_empty_org_takes_the_address_domain() -> None:
    report = parse_file((FIXTURES / "own/dmarc-empty-org.xml").read_bytes(), NOW)[0]
    assert isinstance(report, DmarcReport)
    assert "comcast.net" == report.reporter


def test_tls_failures_and_unspecified_rest() -> None:
    """Failure details by result type; a summary failure count above their sum is `unspecified`."""
    report = parse_file((FIXTURES / "own/tlsrpt-microsoft.json.gz").read_bytes(), NOW)[0]
    assert isinstance(report, TlsReport)
    assert (("certificate-expired", 10), ("unspecified", 2)) == report.policies[0].failures
    assert ("sts", 900) == (report.policies[0].policy_type, report.policies[0].successful)
    naive = parse_file((FIXTURES / "own/tlsrpt-naive-datetime.json").read_bytes(), NOW)[0]
    assert isinstance(naive, TlsReport)
    assert 1764460800.0 == naive.begin  # read as UTC
    assert "tlsa" == naive.policies[0].policy_type  # "TLSA"


def test_arf_reporter_and_type() -> None:
    c = parse_file((FIXTURES / "own/arf-base64-mixed.eml").read_bytes(), NOW)[0]
    assert isinstance(c, Complaint)
    assert ("abuse", "comcast.net", "example.com") == (c.feedback_type, c.reporter, c.reported_domain)


def test_sniffing_ignores_names_and_types() -> None:
    assert ["zip", "gzip", "xml", "json", "mail", "unknown"] == [
        sniff(b"PK\x03\x04..."), sniff(b"\x1f\x8b\x08"), sniff(b"\xef\xbb\xbf \n<feedback>"), sniff(b"\n {"),
        sniff(b"From: a@b\r\n"), sniff(b"\x00\x01"),
    ]  # fmt: skip


def _zeros_gzip(size: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join([*(c.compress(chunk) for _ in range(size >> 20)), c.flush()])


def _zeros_zip(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z, z.open("r.xml", "w") as f:
        for _ in range(size >> 20):
            f.write(bytes(1 << 20))
    return buf.getvalue()


def test_bombs_are_refused_quickly_and_small() -> None:
    """A 256 MiB gzip bomb and zip bomb (1 GB ones in bench/reports_bench.py) and a billion-laughs XML are
    rejected in well under a second each, allocating less than 50 MB (traced) on the way."""
    bombs = {"gzip": _zeros_gzip(256 << 20), "zip": _zeros_zip(256 << 20)}
    lol = (FIXTURES / "own/bad-billion-laughs.xml").read_bytes()
    for name, data in [*bombs.items(), ("laughs", lol)]:
        tracemalloc.start()
        start = time.perf_counter()
        result = parse_file(data, NOW)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert isinstance(result[0], Rejected), name
        assert result[0].reason in ("too_large", "xml_dtd"), name
        assert elapsed < 1.0, name
        assert peak < 50 << 20, name  # the 20 MiB cap plus parser overhead, never the bomb


def test_a_zip_member_that_lies_about_its_size_is_refused() -> None:
    """A member whose header says 100 bytes but holds 30 MiB stops at the cap (zipfile refuses the length)."""
    data = bytearray(_zeros_zip(30 << 20))
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    for offset in (local + 22, central + 24):  # uncompressed size fields
        data[offset : offset + 4] = (100).to_bytes(4, "little")
    result = unzip(bytes(data), 20 << 20)
    assert result.reason in ("bad_zip", "too_large")


def test_gzip_cap_is_exact() -> None:
    data = _zeros_gzip(2 << 20)
    assert "too_large" == gunzip(data, (2 << 20) - 1).reason
    assert 2 << 20 == len(gunzip(data, 2 << 20).data)


def test_limits_on_input_and_records() -> None:
    report = (FIXTURES / "own/dmarc-google.zip").read_bytes()
    assert "too_large" == parse_file(report, NOW, Limits(max_input_bytes=100))[0].reason  # type: ignore[union-attr]
    few = Limits(max_records=2)
    assert "too_many_records" == parse_file(report, NOW, few)[0].reason  # type: ignore[union-attr]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(4)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            del buf[pos : pos + rng.randint(1, 64)]
        elif op == 2:
            buf[pos:pos] = rng.choice([b"<", b"</feedback>", b"\x00", b"{", b"]]>", b"&lol;", b"\xff", b"<record>"])
        else:
            buf = buf[:pos]
    return bytes(buf)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_never_raises(seed: int) -> None:
    """Mutated fixtures (fixed seeds, 600 inputs each, bounded to 10 s) give reports or rejections, never an
    exception; decompressed and plain inputs alike."""
    rng = random.Random(seed)
    corpus = [p.read_bytes() for p in sorted(FIXTURES.rglob("*")) if p.is_file() and p.suffix != ".py"]
    plain = [gunzip(d, 1 << 22).data or d if d[:2] == b"\x1f\x8b" else d for d in corpus]
    deadline = time.monotonic() + 10
    for i in range(600):
        if time.monotonic() > deadline:
            break
        data = _mutate(rng, rng.choice(plain if i % 2 else corpus))
        for result in parse_file(data, NOW):
            assert isinstance(result, DmarcReport | TlsReport | Complaint | Rejected)
