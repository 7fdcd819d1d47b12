"""The posture, reports and message-tracking sections of the status page: what each shows from its
feature's numbers, their states, their empty states, their row caps, and hostile names kept as text."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

import mailpulse
from mailpulse.exporter.app import App
from mailpulse.exporter.features.postfix import PostfixLogs
from mailpulse.exporter.features.posture.feature import Posture
from mailpulse.exporter.features.posture.metrics import PostureMetrics
from mailpulse.exporter.features.posture.result import CheckResult, Target
from mailpulse.exporter.features.posture.status import MAX_ROWS, posture_section
from mailpulse.exporter.features.tracking_status import duration, quantile, tracking_section
from mailpulse.exporter.status import State, StatusSection, Table
from mailpulse.exporter.statuspage import render
from mailpulse.exporter.tracking.metrics import TrackingMetrics
from mailpulse.parsers.reports import Complaint, DmarcRecord, DmarcReport, Rejected, TlsPolicy, TlsReport
from mailpulse.probes.reports.config import ReportsConfig
from mailpulse.probes.reports.feature import Reports
from mailpulse.probes.reports.metrics import ReportMetrics
from mailpulse.probes.reports.status import SourceView, reports_section
from tests.unit.test_status_page import HOSTILE, parse

NOW = 1_800_000_000.0
Cells = list[tuple[str, str | None]]


def cells(table: Table) -> list[Cells]:
    return [[(c.text, c.state.value if c.state else None) for c in r] for r in table.rows]


def by_first(table: Table) -> dict[str, dict[str, tuple[str, str | None]]]:
    """Rows keyed by their first cell, each as column -> (text, state)."""
    return {r[0][0]: dict(zip(table.columns, r, strict=True)) for r in cells(table)}


def assert_text_only(section: StatusSection) -> str:
    """Rendered, the section adds no tag from its data; its visible text."""
    page = render([section], version="t", now=NOW)
    parsed = parse(page)
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert b"<script" not in page
    return " ".join(parsed.text)


# -- posture -------------------------------------------------------------------------------------------------
def result(check: str, domain: str = "", item: str = "", zone: str = "", *, ok: bool = True, reason: str = "ok",
           up: bool = True, values: dict[str, float] | None = None, infos: dict[str, str] | None = None,
           at: float = NOW - 60) -> CheckResult:  # fmt: skip
    return CheckResult(Target(check, domain, item, zone), ok, reason, up=up, values=values or {}, infos=infos or {},
                       finished_at=at)  # fmt: skip


def posture(*results: CheckResult, planned: tuple[Target, ...] = ()) -> StatusSection:
    metrics = PostureMetrics()
    for r in results:
        metrics.record(r)
    return posture_section(planned or tuple(r.target for r in results), metrics.last, NOW)


def test_posture_one_row_per_domain_with_each_checks_values() -> None:
    """A good domain's row: SPF lookups of 10, each DKIM selector's key and match, DMARC p=, the MTA-STS
    mode, each MX's TLS version and certificate days, TLSA matched under DNSSEC, clean zones, the age of
    its oldest check."""
    d = "good.example"
    section = posture(
        result("spf", d, values={"lookups": 3, "void_lookups": 0}, infos={"sender:out1": "pass"}),
        result("dkim", d, "sel1", values={"bits": 2048, "key_match": 1}, infos={"key_type": "rsa"}),
        result("dkim", d, "ed1", values={"bits": 256, "key_match": 1}, infos={"key_type": "ed25519"}),
        result("dmarc", d, infos={"p": "reject", "sp": "reject", "np": "reject"}),
        result("mta_sts", d, infos={"mode": "enforce"}, values={"max_age": 86400}),
        result("tlsrpt", d),
        result("mx_tls", d, "mx1.good.example", values={"not_after": NOW + 30 * 86400}, infos={"version": "TLSv1.3"}),
        result("dane", d, "mx1.good.example", values={"match": 1, "validated": 1, "records": 1}),
        result("dnsbl", d, "", "dbl", values={"listed": 0}, at=NOW - 600),
    )
    (domains,) = section.tables
    good = by_first(domains)[d]
    assert ("3/10 lookups", "ok") == good["SPF"]
    assert ("sel1: matches; ed1: matches", "ok") == good["DKIM"]
    assert ("p=reject", "ok") == good["DMARC"]
    assert ("enforce", "ok") == good["MTA-STS"]
    assert ("ok", "ok") == good["TLS-RPT"]
    assert ("TLSv1.3, 30 d left", "ok") == good["MX TLS, certificate"]
    assert ("TLSA matches", "ok") == good["DANE"]
    assert ("clean on 1 zone", "ok") == good["blocklists"]
    assert ("10 min ago", None) == good["oldest check"]
    assert State.OK == section.state


def test_posture_states_warn_fail_unknown_and_pending() -> None:
    """A failure is fail; DMARC p=none and an expiring certificate are warnings; a DNS timeout is unknown;
    a planned check without a result is pending; the worst domain comes first."""
    bad, meh = "bad.example", "meh.example"
    results = [
        result("spf", bad, ok=False, reason="too_many_lookups", values={"lookups": 12}),
        result("dkim", bad, "sel1", ok=False, reason="key_mismatch", values={"bits": 2048, "key_match": 0}),
        result("dmarc", meh, ok=False, reason="policy_none", infos={"p": "none", "sp": "none", "np": "none"}),
        result("mx_tls", meh, "mx.meh.example", ok=False, reason="certificate_expiring",
               values={"not_after": NOW + 5 * 86400}, infos={"version": "TLSv1.2"}),
        result("spf", meh, ok=False, reason="dns_timeout", up=False),
        result("dnsbl", bad, "", "dbl", ok=False, reason="listed", values={"listed": 1}),
        result("dnsbl", bad, "", "other", ok=False, reason="zone_error", up=True),
    ]  # fmt: skip
    section = posture(*results, planned=(*(r.target for r in results), Target("dmarc", bad)))
    (domains,) = section.tables
    assert [bad, meh] == [r[0][0] for r in cells(domains)]
    rows = by_first(domains)
    assert ("too_many_lookups (12/10 lookups)", "fail") == rows[bad]["SPF"]
    assert ("sel1: key_mismatch (rsa 2048)", "fail") == rows[bad]["DKIM"]
    assert ("pending", "unknown") == rows[bad]["DMARC"]
    assert ("listed: dbl; other: zone_error", "fail") == rows[bad]["blocklists"]
    assert ("-", None) == rows[bad]["MTA-STS"]
    assert ("policy_none (p=none)", "warn") == rows[meh]["DMARC"]
    assert ("certificate_expiring (TLSv1.2, 5 d left)", "warn") == rows[meh]["MX TLS, certificate"]
    assert ("dns_timeout", "unknown") == rows[meh]["SPF"]
    assert State.FAIL == section.state
    assert "7 of 8 checks have run" in section.note


def test_posture_senders_get_their_own_table() -> None:
    """A sending IP's reverse DNS and its blocklist zones: listed on one, an error on another."""
    section = posture(
        result("rdns", "", "out1", ok=False, reason="no_forward_match"),
        result("dnsbl", "", "out1", "zen", ok=False, reason="listed", values={"listed": 1}),
        result("dnsbl", "", "out1", "spamcop", values={"listed": 0}),
        result("dnsbl", "", "out1", "barracuda", ok=False, reason="dns_timeout", up=False),
    )
    domains, senders = section.tables
    assert [] == cells(domains)
    out1 = by_first(senders)["out1"]
    assert ("no_forward_match", "fail") == out1["reverse DNS"]
    assert ("listed: zen; barracuda: dns_timeout; clean on 1 zone", "fail") == out1["blocklists"]


def test_posture_empty_and_many_domains() -> None:
    """Nothing planned: an empty table that says so. More than MAX_ROWS domains: the failing ones are shown,
    and the caption says how many there are."""
    empty = posture()
    assert "no domains configured" in assert_text_only(empty)
    assert empty.state is None
    many = [result("spf", f"d{i:04}.example", values={"lookups": 1}) for i in range(MAX_ROWS + 50)]
    many.append(result("spf", "zz-broken.example", ok=False, reason="missing"))
    (domains,) = posture(*many).tables
    assert MAX_ROWS == len(domains.rows)
    assert "zz-broken.example" == domains.rows[0][0].text
    assert f"of {MAX_ROWS + 51}" in domains.caption


def test_posture_hostile_names_stay_text() -> None:
    """A domain, selector, MX and zone carrying markup (names come from the config and DNS) are escaped."""
    section = posture(
        result("dkim", HOSTILE, HOSTILE, values={"bits": 1024}),
        result("mx_tls", HOSTILE, HOSTILE, ok=False, reason="connect"),
        result("dnsbl", HOSTILE, "", HOSTILE, ok=False, reason="listed"),
        result("spf", HOSTILE, infos={f"sender:{HOSTILE}": "fail"}, values={"lookups": 1}),
    )
    assert HOSTILE in assert_text_only(section)


# -- reports -------------------------------------------------------------------------------------------------
def report_metrics(**config: object) -> ReportMetrics:
    metrics = ReportMetrics()
    metrics.configure(ReportsConfig(**config))  # type: ignore[arg-type]
    return metrics


def dmarc(reporter: str, end: int, *records: DmarcRecord) -> DmarcReport:
    return DmarcReport(reporter, f"noreply@{reporter}", f"id-{end}", end - 86400, end, "1.0", "example.com", records)


def test_reports_per_reporter_and_domain_by_source_class() -> None:
    """DMARC messages pass/fail per source class for each reporter and domain with the reporter's newest
    period end; TLS-RPT failures by result type; complaints by feedback type; rejected inputs by reason."""
    metrics = report_metrics(domains=("example.com",), networks=(ipaddress.ip_network("192.0.2.0/24"),))
    end = int(NOW - 2 * 86400)
    metrics.count(dmarc("google.com", end - 86400, DmarcRecord("192.0.2.1", 5, "none", "pass", "pass", "example.com")))
    metrics.count(dmarc("google.com", end,
                        DmarcRecord("192.0.2.1", 7, "none", "pass", "fail", "example.com"),
                        DmarcRecord("192.0.2.9", 2, "quarantine", "fail", "fail", "example.com"),
                        DmarcRecord("198.51.100.4", 3, "none", "pass", "fail", "mail.example.com"),
                        DmarcRecord("203.0.113.7", 40, "reject", "fail", "fail", "example.com")))  # fmt: skip
    metrics.count(
        TlsReport(
            "Google Inc.",
            "t1",
            end - 86400,
            end,
            (TlsPolicy("sts", "example.com", 90, 4, (("certificate-expired", 3), ("starttls-not-supported", 1))),),
        )
    )
    metrics.count(Complaint("abuse", "yahoo.com", "c1"))
    metrics.count(Complaint("abuse", "yahoo.com", "c2"))
    metrics.count(Rejected("dmarc", "bad_xml"))
    metrics.count(dmarc("google.com", end), duplicate=True)
    section = reports_section(metrics, [], NOW)
    sources, ingested, dmarc_t, tls, complaints = section.tables
    assert "no mailbox or directory configured" == sources.empty
    assert not sources.rows
    kinds = by_first(ingested)
    assert ("2", None) == kinds["dmarc"]["counted"]
    assert ("1", None) == kinds["dmarc"]["duplicates"]
    assert ("1", "warn") == kinds["dmarc"]["rejected"]
    assert ("bad_xml 1", None) == kinds["dmarc"]["rejected by reason"]
    google = by_first(dmarc_t)["google"]
    assert "example.com" == google["domain"][0]
    assert google["newest period ends"][0].endswith("UTC (2 d ago)")
    assert ("12 pass, 2 fail", "warn") == google["authorized senders"]
    assert ("3 pass, 0 fail", None) == google["forwarders"]
    assert ("0 pass, 40 fail", None) == google["unknown sources"]
    tls_google = by_first(tls)["google"]
    assert ("90", None) == tls_google["sessions ok"]
    assert ("4", "warn") == tls_google["failed"]
    assert ("certificate-expired 3, starttls-not-supported 1", None) == tls_google["failures by result"]
    assert [[("yahoo", None), ("2", None), ("abuse 2", None)]] == cells(complaints)
    assert State.WARN == section.state


def test_reports_sources_and_empty_tables() -> None:
    """A mailbox that is up, one that is down with its reason and error counts, a directory with an error;
    with no report yet every table says so."""
    metrics = report_metrics()
    metrics.mailbox_error("rua2", "imap_auth")
    metrics.mail_moved("rua", "processed")
    sources = [SourceView("mailbox", "rua", "127.0.0.1:993/INBOX", True, "up", 3),
               SourceView("mailbox", "rua2", "127.0.0.1:993/INBOX", False, "imap_auth", 0),
               SourceView("directory", "/srv/reports", "every 300 s", False, "/srv/reports: not a directory", 1)]  # fmt: skip
    section = reports_section(metrics, sources, NOW)
    table = section.tables[0]
    rows = cells(table)
    assert ("up", "ok") == rows[0][3]
    assert ("processed 1, failed 0", None) == rows[0][5]
    assert ("down: imap_auth", "fail") == rows[1][3]
    assert ("imap_auth 1", None) == rows[1][6]
    assert ("/srv/reports: not a directory", "fail") == rows[2][3]
    text = assert_text_only(section)
    for empty in ("no report read yet", "no DMARC report yet", "no TLS report yet", "no complaint received"):
        assert empty in text
    assert State.FAIL == section.state


def test_reports_hostile_strings_stay_text() -> None:
    """A header-from domain from a report (untrusted: labelled as seen when no domains are configured), a
    policy domain, a mailbox's reason and a directory's error carrying markup are escaped."""
    metrics = report_metrics()
    metrics.count(dmarc("google.com", int(NOW), DmarcRecord("192.0.2.1", 1, "none", "pass", "pass", HOSTILE)))
    metrics.count(TlsReport("Google", "t", NOW - 86400, NOW, (TlsPolicy("sts", HOSTILE, 1, 1, ((HOSTILE, 1),)),)))
    sources = [SourceView("mailbox", HOSTILE, HOSTILE, False, HOSTILE, 0),
               SourceView("directory", HOSTILE, HOSTILE, False, HOSTILE, 0)]  # fmt: skip
    text = assert_text_only(reports_section(metrics, sources, NOW))
    assert HOSTILE in text


# -- message tracking ----------------------------------------------------------------------------------------
def test_quantile_interpolates_within_buckets_like_prometheus() -> None:
    """Half of 10 observations in (0, 1] and half in (1, 2]: the median is 1, p90 1.8; all in +Inf: the
    highest bound; no observation: None."""
    assert 1.0 == quantile(0.5, (1.0, 2.0), [5, 5, 0])
    assert 1.8 == pytest.approx(quantile(0.9, (1.0, 2.0), [5, 5, 0]))
    assert 2.0 == quantile(0.5, (1.0, 2.0), [0, 0, 3])
    assert quantile(0.5, (1.0, 2.0), [0, 0, 0]) is None
    assert "> 6.0 d" == duration(6 * 86400, 6 * 86400)
    assert "12 min" == duration(720, 6 * 86400)


def test_tracking_outcomes_by_provider_evictions_and_percentiles() -> None:
    """Messages per provider by outcome (entries summed), delivered after a deferral, transit percentiles of
    the delivered ones, evictions by reason (capacity and ttl warn), in flight and kept."""
    m = TrackingMetrics()
    for i in range(10):
        m.finish("delivered", "smtpd", "gmail", 0.8 if i < 9 else 400.0, 1, 0, f"Q{i}")
    m.finish("delivered", "submission", "gmail", 3.0, 2, 1, "QA")
    m.finish("bounced", "smtpd", "gmail", 2.0, 1, 0, "QB")
    m.finish("expired", "smtpd", "microsoft", 5 * 86400, 30, 29, "QC")
    m.evict("capacity", 2)
    m.evict("restart")
    m.error("write")
    m.inflight, m.finished = 7, 3
    section = tracking_section(m)
    tracker, providers = section.tables
    ((inflight, kept, capacity, ttl, restart, _reused, _orphans, errors),) = cells(tracker)
    assert [("7", None), ("3", None), ("2", "warn"), ("0", None), ("1", None), ("write 1", "warn")] == [
        inflight, kept, capacity, ttl, restart, errors]  # fmt: skip
    rows = by_first(providers)
    assert ["gmail", "microsoft"] == [r[0][0] for r in cells(providers)]
    gmail = rows["gmail"]
    assert ("11", None) == gmail["delivered"]
    assert ("1", None) == gmail["of those deferred first"]
    assert ("1", None) == gmail["bounced"]
    assert ("0", None) == gmail["expired"]
    # 11 delivered: 9 in (0.5, 1], 1 in (2, 5], 1 in (300, 900]; p50 at rank 5.5 of 9 in (0.5, 1]: 0.81 s;
    # p99 at rank 10.89, 0.89 into (300, 900]: 834 s
    assert ("0.8 s", None) == gmail["transit p50"]
    assert ("14 min", None) == gmail["transit p99"]
    assert ("-", None) == rows["microsoft"]["transit p50"]
    assert ("1", "warn") == rows["microsoft"]["expired"]
    assert State.WARN == section.state


def test_tracking_empty_state() -> None:
    """Nothing finished yet: zeros and a table that says so."""
    section = tracking_section(TrackingMetrics())
    text = assert_text_only(section)
    assert "no message finished yet" in text
    assert section.state is None


# -- wired into the daemon's page ----------------------------------------------------------------------------
def test_the_daemons_page_has_the_three_sections(tmp_path: Path) -> None:
    """With posture, reports (a directory) and Postfix tracking configured, the page shows their sections;
    tracking off removes its section."""
    log = tmp_path / "mail.log"
    log.write_text("")
    (tmp_path / "reports").mkdir()
    data = {
        "state_dir": str(tmp_path / "state"),
        "http": {"listen": "127.0.0.1:9"},
        "sources": [{"name": "mail", "path": str(log)}],
        "posture": {"domains": [{"name": "example.com"}], "resolvers": ["127.0.0.1"]},
        "reports": {"directories": [{"path": str(tmp_path / "reports")}]},
    }
    features = mailpulse.features()
    app = App(mailpulse.parse_config(data, with_features=features), features)
    app._build(mailpulse.parse_config(data, with_features=features))
    text = " ".join(parse(app.status_page()).text)
    for title in ("Deliverability posture", "Receiver reports", "Message tracking", "Report sources"):
        assert title in text, title
    assert {Posture, Reports, PostfixLogs} <= {type(f) for f in features}
    data["postfix"] = {"tracking": {"enabled": False}}
    features = mailpulse.features()
    app = App(mailpulse.parse_config(data, with_features=features), features)
    app._build(mailpulse.parse_config(data, with_features=features))
    assert "Message tracking" not in " ".join(parse(app.status_page()).text)


def test_posture_names_mx_hosts_when_several_and_senders_spf_failing() -> None:
    """With two MX hosts each is named in its cell; a configured sender's SPF result shows when it is not a
    pass; the wide domains table may wrap its cells (class ``wrap``)."""
    d = "two.example"
    section = posture(
        result("spf", d, ok=False, reason="ip_not_authorized", values={"lookups": 1},
               infos={"sender:out-a": "pass", "sender:out-b": "softfail"}),
        result("mx_tls", d, "mx1.two.example", values={"not_after": NOW + 40 * 86400}, infos={"version": "TLSv1.3"}),
        result("mx_tls", d, "mx2.two.example", ok=False, reason="no_starttls"),
    )  # fmt: skip
    (domains,) = section.tables
    row_ = by_first(domains)[d]
    assert ("ip_not_authorized (1/10 lookups, out-b softfail)", "fail") == row_["SPF"]
    assert ("mx1.two.example: TLSv1.3, 40 d left; mx2.two.example: no_starttls", "fail") == row_["MX TLS, certificate"]
    assert b'<table class="wrap">' in render([section], version="t", now=NOW)
