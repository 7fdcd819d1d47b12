"""`mailpulse scan --reports DIR` counts what an independent stdlib reading of the same fixtures counts.

The oracle below shares no code with mailpulse's parsers: it opens archives with gzip/zipfile, walks mail
with the ``email`` package's modern API, reads XML with ElementTree after repairing the known defects with
plain string edits, and labels reporters from a table of the fixtures' own sender domains.
"""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
import io
import ipaddress
import json
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mailpulse import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
DOMAINS = ("example.com", "example.org")
NETWORKS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "2001:db8::/32")]
CONFIG = f"""
state_dir: {{state}}
reports:
  domains: [{", ".join(DOMAINS)}]
  authorized_networks: [192.0.2.0/24, "2001:db8::/32"]
"""
# the reporters of the fixtures, by the domain of their address (DMARC, ARF) or their name (TLS-RPT)
REPORTER_BY_DOMAIN = {
    "google.com": "google",
    "microsoft.com": "microsoft",
    "yahooinc.com": "yahoo",
    "corp.mail.ru": "mailru",
    "yandex.ru": "yandex",
    "web.de": "gmx_webde",
    "gmx.net": "gmx_webde",
    "comcast.net": "comcast",
    "fastmail.com": "fastmail",
    "zoho.com": "zoho",
    "icloud.com": "apple",
    "linkedin.com": "linkedin",
    "arf.mail.yahoo.com": "yahoo",
}
REPORTER_BY_ORG = {
    "Google Inc.": "google",
    "Microsoft Corporation": "microsoft",
    "Yahoo": "yahoo",
    "Mail.ru": "mailru",
    "Company-X": "other",
}


class Oracle:
    def __init__(self) -> None:
        self.messages: Counter[tuple[str, ...]] = Counter()
        self.sessions: Counter[tuple[str, ...]] = Counter()
        self.complaints: Counter[tuple[str, ...]] = Counter()
        self.ingested: Counter[str] = Counter()
        self.rejected = 0
        self.duplicates = 0
        self.seen: set[tuple[str, str, str]] = set()

    def once(self, kind: str, reporter: str, report_id: str) -> bool:
        key = (kind, reporter.lower(), report_id)
        if key in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(key)
        self.ingested[kind] += 1
        return True

    def blob(self, data: bytes) -> None:
        if data.startswith(b"PK"):
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
            if len(names) != 1:
                self.rejected += 1
                return
            data = zipfile.ZipFile(io.BytesIO(data)).read(names[0])
        elif data.startswith(b"\x1f\x8b"):
            d = zlib.decompressobj(31)
            data = d.decompress(data)
            if not d.eof:
                self.rejected += 1
                return
        text = data.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            self.tls(text)
        else:
            self.xml(text)

    def xml(self, text: str) -> None:
        if "<!DOCTYPE" in text or "<feedback" not in text:
            self.rejected += 1
            return
        text = text.split("</feedback>", maxsplit=1)[0] + "</feedback>"
        text = text.split("?>", 1)[1] if text.startswith("<?xml") else text
        root = ET.fromstring(text)

        def get(node: ET.Element, path: str) -> str:
            found = node.find("/".join(f"{{*}}{p}" for p in path.split("/")))
            return (found.text or "").strip() if found is not None else ""

        org, addr, report_id = (
            get(root, "report_metadata/org_name"),
            get(root, "report_metadata/email"),
            get(root, "report_metadata/report_id"),
        )
        if not report_id:
            self.rejected += 1
            return
        if not self.once("dmarc", org or addr.split("@")[1], report_id):
            return
        reporter = REPORTER_BY_DOMAIN.get(addr.split("@")[1], "other")
        for rec in root.findall(".//{*}record"):
            count = get(rec, "row/count")
            if not count.isdigit():
                continue
            ip = ipaddress.ip_address(get(rec, "row/source_ip"))
            dkim, spf = get(rec, "row/policy_evaluated/dkim").lower(), get(rec, "row/policy_evaluated/spf").lower()
            reasons = {r.text for r in rec.findall(".//{*}type")}
            if any(ip in n for n in NETWORKS):
                source = "authorized"
            elif reasons & {"forwarded", "trusted_forwarder", "mailing_list"} or (dkim == "pass" and spf != "pass"):
                source = "forwarder"
            else:
                source = "unknown"
            header_from = get(rec, "identifiers/header_from").lower()
            domain = next((d for d in DOMAINS if header_from == d or header_from.endswith("." + d)), "other")
            disposition = get(rec, "row/policy_evaluated/disposition").lower()
            self.messages[(reporter, domain, disposition, dkim, spf, source)] += int(count)

    def tls(self, text: str) -> None:
        try:
            doc = json.loads(text)
        except ValueError:
            self.rejected += 1
            return
        if not self.once("tlsrpt", doc["organization-name"], doc["report-id"]):
            return
        reporter = REPORTER_BY_ORG[doc["organization-name"]]
        for p in doc["policies"]:
            ptype = p["policy"]["policy-type"].lower()
            pdomain = p["policy"]["policy-domain"].lower()
            domain = next((d for d in DOMAINS if pdomain == d or pdomain.endswith("." + d)), "other")
            self.sessions[(reporter, domain, ptype, "success")] += p["summary"]["total-successful-session-count"]
            detailed = 0
            for d in p.get("failure-details", []):
                self.sessions[(reporter, domain, ptype, d["result-type"])] += d["failed-session-count"]
                detailed += d["failed-session-count"]
            rest = p["summary"]["total-failure-session-count"] - detailed
            if rest > 0:
                self.sessions[(reporter, domain, ptype, "unspecified")] += rest

    def mail(self, data: bytes) -> None:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        found = False
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype == "message/feedback-report":
                found = True
                payload = part.get_payload()
                first = payload[0] if isinstance(payload, list) else None
                raw = (
                    first.as_bytes() if isinstance(first, email.message.Message) else part.as_bytes().split(b"\n\n")[1]
                )
                if part.get("Content-Transfer-Encoding", "").lower() == "base64":
                    raw = base64.b64decode(b"".join(raw.split()))
                fields = email.message_from_bytes(raw)
                sender = str(msg["From"]).split("@")[1].strip(">")
                if self.once("arf", sender, str(msg["Message-ID"])):
                    ftype = str(fields["Feedback-Type"]).strip().lower()
                    self.complaints[(REPORTER_BY_DOMAIN.get(sender, "other"), ftype)] += 1
            elif not part.is_multipart() and (part.get_filename() or ctype.startswith("application/")):
                found = True
                blob = part.get_payload(decode=True)
                assert isinstance(blob, bytes)
                self.blob(blob)
        if not found:
            self.rejected += 1

    def file(self, path: Path) -> None:
        data = path.read_bytes()
        if path.suffix == ".eml":
            self.mail(data)
        else:
            self.blob(data)


def scan_metrics(tmp_path: Path, *paths: Path) -> dict[str, Counter[tuple[str, ...]]]:
    config = tmp_path / "mailpulse.yaml"
    config.write_text(CONFIG.format(state=tmp_path / "state"))
    out, err = io.StringIO(), io.StringIO()
    assert 0 == main(["scan", "--no-progress", "-c", str(config), "--reports", *map(str, paths)], out=out, err=err)
    found: dict[str, Counter[tuple[str, ...]]] = {}
    for family in text_string_to_metric_families(out.getvalue()):
        for sample in family.samples:
            if sample.name.startswith(("mailpulse_dmarc", "mailpulse_tlsrpt", "mailpulse_arf", "mailpulse_reports")):
                labels = tuple(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found.setdefault(sample.name, Counter())[labels] += int(sample.value)
    return found


def only(counter: Counter[tuple[str, ...]], names: tuple[str, ...]) -> Counter[tuple[str, ...]]:
    return Counter({tuple(f"{name}={v}" for name, v in sorted(zip(names, k, strict=True))): count
                    for k, count in counter.items() if count})  # fmt: skip


def test_scan_counts_equal_an_independent_reading(tmp_path: Path) -> None:
    """Every DMARC record count, TLS session count and complaint, by label set, as the stdlib oracle counts them."""
    oracle = Oracle()
    files = sorted(
        p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix in (".xml", ".gz", ".zip", ".json", ".eml")
    )
    for path in files:
        oracle.file(path)
    got = scan_metrics(tmp_path, FIXTURES)
    nonzero = {k: Counter({lk: n for lk, n in v.items() if n}) for k, v in got.items()}
    assert (
        only(oracle.messages, ("reporter", "domain", "disposition", "dkim", "spf", "source"))
        == nonzero["mailpulse_dmarc_messages_total"]
    )
    assert (
        only(oracle.sessions, ("reporter", "domain", "policy_type", "result"))
        == nonzero["mailpulse_tlsrpt_sessions_total"]
    )
    assert only(oracle.complaints, ("reporter", "feedback_type")) == nonzero["mailpulse_arf_complaints_total"]
    assert {f"kind={k}": n for k, n in oracle.ingested.items()} == {
        lk[0]: n for lk, n in nonzero["mailpulse_reports_ingested_total"].items()
    }
    assert oracle.rejected == sum(got["mailpulse_reports_rejected_total"].values())
    assert oracle.duplicates == sum(got["mailpulse_reports_duplicates_total"].values())
    assert oracle.messages
    assert oracle.sessions
    assert oracle.complaints
    assert oracle.rejected >= 7


def test_a_second_copy_of_the_directory_adds_nothing(tmp_path: Path) -> None:
    """The same reports read twice in one scan (two paths naming them) count once: every report is a duplicate."""
    once = scan_metrics(tmp_path, FIXTURES)
    twice = scan_metrics(tmp_path, FIXTURES, FIXTURES / "own", FIXTURES / "realworld")
    assert once["mailpulse_dmarc_messages_total"] == twice["mailpulse_dmarc_messages_total"]
    assert once["mailpulse_tlsrpt_sessions_total"] == twice["mailpulse_tlsrpt_sessions_total"]
    ingested = sum(once["mailpulse_reports_ingested_total"].values())
    extra_dupes = sum(twice["mailpulse_reports_duplicates_total"].values()) - sum(
        once["mailpulse_reports_duplicates_total"].values()
    )
    assert ingested + sum(once["mailpulse_reports_duplicates_total"].values()) == extra_dupes


def test_scan_of_a_missing_path_fails_and_says_so(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert 1 == main(["scan", "--no-progress", "--reports", str(tmp_path / "nope.xml")], out=out, err=err)
    assert "nope.xml" in err.getvalue()
    assert "" == out.getvalue()


def test_scan_without_inputs_names_the_reports_flag() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert 2 == main(["scan"], out=out, err=err)
    assert "--reports PATH..." in err.getvalue()
