"""The status page in a real browser: headless Chromium loads / from mailpulse running on the lab (HTTPS with
the lab's certificate, basic auth), and the DOM it built shows every section with real data: the probes'
runs, the posture checks of the posture lab (lab/posture: real DNS with DNSSEC, SMTP and HTTPS servers),
the report mails sent through the lab MX into postmaster@, and the messages the tracker followed."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.envfile import LabEnv
from lab.posture import zones
from mailpulse.exporter.features.posture.status import WARN_REASONS
from tests.browser import (
    FAILING_PROBE,
    PASSWORD,
    USER,
    Cells,
    StatusDaemon,
    chromium,
    posture_and_reports,
    run_chromium,
    send_report_mails,
    spki_sha256,
    tables,
)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def daemon(mail_lab: LabEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StatusDaemon]:
    if chromium() is None:
        pytest.fail("chromium is not installed: scripts/setup installs it (Debian package chromium)")
    work = tmp_path_factory.mktemp("status-browser")
    with posture_and_reports(mail_lab.dir, work) as extra, StatusDaemon(mail_lab.dir, work, extra) as running:
        running.wait_for_every_probe()
        running.wait_for_report_mails(send_report_mails(mail_lab.dir))
        running.wait_for_posture()
        yield running


@pytest.fixture(scope="module")
def page(daemon: StatusDaemon) -> dict[str, list[Cells]]:
    """The page's tables as Chromium built them, once every probe, posture check and report mail is done."""
    return tables(run_chromium(daemon.browser_url, "--dump-dom", spki=spki_sha256(daemon.cert)).decode())


def test_chromium_renders_the_status_page_of_the_lab(daemon: StatusDaemon, tmp_path: Path) -> None:
    """Chromium, trusting only the lab server's key and sending the credentials, gets the page: the lab's
    log sources are up, the queue was listed, every lab probe delivered to the Inbox with DKIM, SPF and
    DMARC passing, the closed-port probe fails at send with connect, and the mailbox watchers are up."""
    spki = spki_sha256(daemon.cert)
    dom = run_chromium(daemon.browser_url, "--dump-dom", spki=spki).decode()
    assert "<title>mailpulse status</title>" in dom
    page = tables(dom)
    sources = {r[0][0]: r for r in page["source"]}
    assert {"postfix", "rspamd"} == set(sources)
    assert all(("up", "ok") == r[1] for r in sources.values())
    assert all(int(r[5][0]) > 0 for r in sources.values())  # lines parsed
    ((listing, _failed),) = page["postqueue -j"]
    assert "ok" == listing[1]
    assert listing[0].startswith("ok, "), listing
    assert {"active", "deferred", "hold", "incoming", "maildrop"} <= {r[0][0] for r in page["queue"]}

    lab_config = yaml.safe_load((daemon.lab_dir / "mailpulse.yaml").read_text())["probes"]
    summary = {r[0][0]: r for r in page["Probes"]}
    lab_probes = [p for p in summary if p != FAILING_PROBE]
    assert {p["name"] for p in lab_config["probes"]} == set(lab_probes)
    for probe in lab_probes:
        assert ("delivered", "ok") == summary[probe][2], summary[probe]
    assert ("failing", "fail") == summary[FAILING_PROBE][2]
    streak, streak_state = summary[FAILING_PROBE][5]  # failures in a row (1, or more after a minute)
    assert int(streak) >= 1
    assert "fail" == streak_state

    (runs_caption,) = [c for c in page if c.startswith("Last runs")]
    runs: dict[str, list[list[tuple[str, str | None]]]] = {}
    for r in page[runs_caption]:
        runs.setdefault(r[0][0], []).append(r)
    for probe in lab_probes:
        newest = runs[probe][0]
        assert ("delivered", "ok") == newest[2]
        assert newest[3][0].endswith(" s")  # latency
        assert ("Inbox", "ok") == newest[4]
        assert ("dkim=pass spf=pass dmarc=pass", "ok") == newest[5]
    failed = runs[FAILING_PROBE][0]
    assert ("failed", "fail") == failed[2]
    assert failed[7][0].startswith("send/connect: "), failed

    watchers = {r[0][0]: r for r in page["Mailbox watchers"]}
    assert {t["name"] for t in lab_config["targets"]} == set(watchers)
    assert all(("up", "ok") == r[3] for r in watchers.values())

    # without the credentials the browser gets no page
    anonymous = run_chromium(daemon.browser_url.replace(f"{USER}:{PASSWORD}@", ""), "--dump-dom", spki=spki)
    assert b"mailpulse status" not in anonymous
    # and a screenshot is a real picture of it, at the window's size
    shot = tmp_path / "page.png"
    run_chromium(daemon.browser_url, "--window-size=1280,1500", f"--screenshot={shot}", spki=spki)
    header = shot.read_bytes()[:24]
    assert b"\x89PNG\r\n\x1a\n" == header[:8]
    assert (1280, 1500) == struct.unpack(">II", header[16:24])


DOMAIN_COLUMNS = {"spf": 1, "dkim": 2, "dmarc": 3, "mta_sts": 4, "tlsrpt": 5, "mx_tls": 6, "dane": 7, "dnsbl": 8}


def test_posture_section_shows_each_lab_domain_and_sender(page: dict[str, list[Cells]]) -> None:
    """One row per posture lab domain: the good one passes every check with its values (SPF lookups of 10,
    both DKIM keys matching their files, DMARC p=reject, MTA-STS enforce, TLS 1.3 and the certificate's
    days left, a (DNSSEC-validated) TLSA match, clean on the DBL); each broken one shows its one failing
    check's reason in that check's column (warn or fail; a blocklist error is unknown) and ok elsewhere.
    Each sending IP shows its reverse DNS verdict and every blocklist zone's error."""
    domains = {r[0][0]: r for r in page["Domains"]}
    assert {d.fqdn for d in zones.DOMAINS} == set(domains)
    good = domains["good.posture.test"]
    assert ("2/10 lookups", "ok") == good[1]
    assert ("sel1: matches; ed1: matches", "ok") == good[2]
    assert ("p=reject", "ok") == good[3]
    assert ("enforce", "ok") == good[4]
    assert good[6][0].startswith("TLSv1.3, ")
    assert good[6][0].endswith((" 29 d left", " 30 d left"))  # the lab signs it for 30 days
    assert ("TLSA matches", "ok") == good[7]
    assert ("clean on 1 zone", "ok") == good[8]
    assert good[9][0].endswith(" s ago")
    for domain in zones.DOMAINS:
        cells = domains[domain.fqdn]
        expected = {}
        if domain.expect is not None:
            check, reason = domain.expect
            state = (
                "unknown" if check == "dnsbl" and reason != "listed" else "warn" if reason in WARN_REASONS else "fail"
            )
            expected[DOMAIN_COLUMNS[check]] = state
            assert reason in cells[DOMAIN_COLUMNS[check]][0], (domain.fqdn, cells)
        states = {i: cells[i][1] for i in DOMAIN_COLUMNS.values() if cells[i][1] is not None}
        assert {**dict.fromkeys(states, "ok"), **expected} == states, (domain.fqdn, cells)

    senders = {r[0][0]: r for r in page["Sending IPs"]}
    assert {s.name for s in zones.SENDERS} == set(senders)
    for sender in zones.SENDERS:
        rdns, blocklists = senders[sender.name][1], senders[sender.name][2]
        if sender.expect is None:
            assert ("ok", "ok") == rdns
        else:
            assert (sender.expect[1], "fail") == rdns
        for zone, reason in sender.zones:
            assert (f"listed: {zone}" if reason == "listed" else f"{zone}: {reason}") in blocklists[0], blocklists


class _Scrape:
    """One read of /metrics, summed by label filters."""

    def __init__(self, daemon: StatusDaemon, *names: str) -> None:
        self.samples = {name: daemon.samples(name) for name in names}

    def __call__(self, name: str, **where: str) -> float:
        return sum(v for labels, v in self.samples[name] if all(labels.get(k) == w for k, w in where.items()))


def test_reports_section_agrees_with_the_metrics(daemon: StatusDaemon, page: dict[str, list[Cells]]) -> None:
    """The report mails sent through the lab MX: the mailbox is up and moved them (one failed); per kind
    what was counted, the duplicate and the refused mail by reason; per reporter and domain the DMARC
    messages by source class (Microsoft's from the authorized network), TLS-RPT sessions and failures and
    the complaint: every number as /metrics has it."""
    _sum = _Scrape(daemon, "mailpulse_reports_mails_total", "mailpulse_reports_ingested_total",
                   "mailpulse_dmarc_messages_total", "mailpulse_tlsrpt_sessions_total", "mailpulse_arf_complaints_total")  # fmt: skip
    ((kind, name, _where, state, _passes, mails, _errors),) = page["Report sources"]
    assert (("mailbox", None), ("rua", None), ("up", "ok")) == (kind, name, state)
    processed = _sum("mailpulse_reports_mails_total", outcome="processed")
    assert f"processed {processed:.0f}, failed 1" == mails[0]
    kinds = {r[0][0]: r for r in page["Reports ingested since start"]}
    assert {"dmarc", "tlsrpt", "arf"} <= set(kinds)
    for k, r in kinds.items():
        assert f"{_sum('mailpulse_reports_ingested_total', kind=k):.0f}" == r[1][0]
    assert "1" == kinds["dmarc"][2][0]  # the duplicate of Google's report
    assert "not_a_report 1" in [r[4][0] for r in kinds.values()]

    dmarc_rows = page["DMARC aggregate reports: messages by source class"]
    seen = {(labels["reporter"], labels["domain"]) for labels, _ in _sum.samples["mailpulse_dmarc_messages_total"]}
    assert seen == {(r[0][0], r[1][0]) for r in dmarc_rows}
    for r in dmarc_rows:
        reporter, domain = r[0][0], r[1][0]
        assert r[2][0].endswith(" d ago)")  # the newest report's period end (the fixtures' dates)
        for i, source in enumerate(("authorized", "forwarder", "unknown"), start=3):
            where = {"reporter": reporter, "domain": domain, "source": source}
            total = _sum("mailpulse_dmarc_messages_total", **where)
            passed = _sum("mailpulse_dmarc_messages_total", dkim="pass", **where) + sum(
                _sum("mailpulse_dmarc_messages_total", dkim=d, spf="pass", **where) for d in ("fail", "other")
            )
            failed = total - passed
            assert (f"{passed:.0f} pass, {failed:.0f} fail" if total else "-") == r[i][0], (reporter, r)
    microsoft = [r for r in dmarc_rows if r[0][0] == "microsoft"]
    assert microsoft
    assert microsoft[0][3][1] in ("ok", "warn")  # judged: mail from the authorized network

    tls = {(r[0][0], r[1][0]): r for r in page["SMTP TLS reports (TLS-RPT)"]}
    assert tls
    for (reporter, domain), r in tls.items():
        ok = _sum("mailpulse_tlsrpt_sessions_total", reporter=reporter, domain=domain, result="success")
        every = _sum("mailpulse_tlsrpt_sessions_total", reporter=reporter, domain=domain)
        assert (f"{ok:.0f}", f"{every - ok:.0f}") == (r[3][0], r[4][0])
    complaints = {r[0][0]: r for r in page["Complaints (ARF feedback reports)"]}
    for reporter, r in complaints.items():
        assert f"{_sum('mailpulse_arf_complaints_total', reporter=reporter):.0f}" == r[1][0]
    assert complaints


def test_tracking_section_counts_the_lab_messages(daemon: StatusDaemon) -> None:
    """The messages the lab's probes and report mails made, followed through the lab's Postfix: the page's
    delivered count per provider lies between /metrics read before and after it, with transit percentiles."""

    def delivered() -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, v in daemon.samples("mailpulse_postfix_messages_total"):
            if labels["outcome"] == "delivered":
                out[labels["provider"]] = out.get(labels["provider"], 0.0) + v
        return out

    before = delivered()
    assert sum(before.values()) > 0
    page = tables(run_chromium(daemon.browser_url, "--dump-dom", spki=spki_sha256(daemon.cert)).decode())
    after = delivered()
    ((inflight, *_rest),) = page["Tracker"]
    assert int(inflight[0]) >= 0
    providers = {r[0][0]: r for r in page["Finished messages by destination provider"]}
    assert set(before) <= set(providers) <= set(after)
    for provider, r in providers.items():
        assert before.get(provider, 0) <= int(r[1][0]) <= after[provider]
        if int(r[1][0]):
            assert r[6][0].endswith((" s", " min", " h", " d")), r  # transit p50
