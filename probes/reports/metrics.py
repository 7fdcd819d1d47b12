"""The report families and the aggregator that counts parsed reports into them.

Counters increase when a report is *ingested*; the report describes its own date range (usually the
previous UTC day). ``mailpulse_reports_period_end_timestamp_seconds`` says which range the newest report
of each reporter covered (docs/reports.md explains the queries).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import Metric

from mailpulse.exporter.metrics.family import Family, Kind, bounded, enum, label_sets, named
from mailpulse.exporter.metrics.store import CappedLabels, Labels, Store
from mailpulse.parsers.reports import KINDS, QUIRKS, REJECT_REASONS, Complaint, DmarcReport, Rejected, TlsReport
from mailpulse.parsers.reports.dmarc import DISPOSITIONS
from mailpulse.parsers.reports.tlsrpt import POLICY_TYPES, RESULT_TYPES
from mailpulse.probes.reports.catalog import NAMES, OTHER
from mailpulse.probes.reports.config import Network, ReportsConfig

SOURCES = ("authorized", "forwarder", "unknown")
FORWARD_REASONS = frozenset(("forwarded", "trusted_forwarder", "mailing_list"))
FEEDBACK_TYPES = ("abuse", "auth-failure", "fraud", "not-spam", "other", "virus")
TLS_RESULTS = ("success", *RESULT_TYPES, "unspecified", "other")
MAILBOX_OUTCOMES = ("processed", "failed")
DOMAIN_CAP = 20  # header-from domains labelled when none are configured

DMARC_MESSAGES = Family(
    "mailpulse_dmarc_messages_total",
    "Messages receivers reported in DMARC aggregate reports (the records' count), by reporter, header-from "
    "domain, disposition, DMARC-aligned DKIM and SPF result and source class. Counted at ingest.",
    Kind.COUNTER, ("reporter", "domain", "disposition", "dkim", "spf", "source"),
)  # fmt: skip
DMARC_REPORTS = Family(
    "mailpulse_dmarc_reports_total", "DMARC aggregate reports ingested, by reporter and schema (1.0: RFC 7489, "
    "2.0: RFC 9990).", Kind.COUNTER, ("reporter", "schema"),
)  # fmt: skip
TLS_SESSIONS = Family(
    "mailpulse_tlsrpt_sessions_total",
    "TLS sessions receivers reported in SMTP TLS reports, by reporter, policy domain, policy type and result "
    "(`success`, or the failure's result type).", Kind.COUNTER, ("reporter", "domain", "policy_type", "result"),
)  # fmt: skip
COMPLAINTS = Family(
    "mailpulse_arf_complaints_total", "ARF feedback reports (complaints) received, by reporter and feedback type.",
    Kind.COUNTER, ("reporter", "feedback_type"),
)  # fmt: skip
PERIOD_END = Family(
    "mailpulse_reports_period_end_timestamp_seconds",
    "End of the date range covered by the newest report ingested from each reporter (reports with "
    "implausible dates are left out).", Kind.GAUGE, ("kind", "reporter"),
)  # fmt: skip
INGESTED = Family("mailpulse_reports_ingested_total", "Reports counted, by kind.", Kind.COUNTER, ("kind",))
REJECTED = Family(
    "mailpulse_reports_rejected_total", "Inputs that gave no usable report, by kind and reason.", Kind.COUNTER,
    ("kind", "reason"),
)  # fmt: skip
DUPLICATES = Family(
    "mailpulse_reports_duplicates_total", "Reports not counted because the same (reporter, report id) was "
    "already counted.", Kind.COUNTER, ("kind",),
)  # fmt: skip
QUIRK_COUNT = Family(
    "mailpulse_reports_quirks_total", "Reports read despite a known defect, by kind and defect.", Kind.COUNTER,
    ("kind", "quirk"),
)  # fmt: skip
SEEN = Family("mailpulse_reports_dedup_entries", "Reports remembered for de-duplication.", Kind.GAUGE)
STATE_ERRORS = Family(
    "mailpulse_reports_state_write_errors_total", "Failed saves of the de-duplication memory.", Kind.COUNTER
)
MAILBOX_UP = Family("mailpulse_reports_mailbox_up", "1 while the report mailbox is connected.", Kind.GAUGE,
                    ("mailbox",))  # fmt: skip
MAILBOX_ERRORS = Family(
    "mailpulse_reports_mailbox_errors_total", "Failed connections to (or commands in) a report mailbox, by reason.",
    Kind.COUNTER, ("mailbox", "reason"),
)  # fmt: skip
MAILS = Family(
    "mailpulse_reports_mails_total", "Mails taken from a report mailbox, by where they were moved.", Kind.COUNTER,
    ("mailbox", "outcome"),
)  # fmt: skip

FAMILIES = (DMARC_MESSAGES, DMARC_REPORTS, TLS_SESSIONS, COMPLAINTS, PERIOD_END, INGESTED, REJECTED, DUPLICATES,
            QUIRK_COUNT, SEEN, STATE_ERRORS, MAILBOX_UP, MAILBOX_ERRORS, MAILS)  # fmt: skip
_RECEIVE_REASONS = ("imap_dns", "imap_connect", "imap_tls", "imap_auth", "imap_credentials", "imap_timeout",
                    "imap_folder", "imap_protocol")  # fmt: skip
LABEL_SETS = label_sets(
    FAMILIES,
    {
        "reporter": named("reports.reporters[].name", *NAMES, OTHER),
        "domain": bounded(
            DOMAIN_CAP, "the names in `reports.domains`; without any, the header-from domains seen", OTHER
        ),
        "disposition": enum((*DISPOSITIONS, OTHER)),
        "dkim": enum(("pass", "fail", OTHER)),
        "spf": enum(("pass", "fail", OTHER)),
        "source": enum(SOURCES),
        "schema": enum(("1.0", "2.0")),
        "policy_type": enum((*POLICY_TYPES, OTHER)),
        "result": enum(TLS_RESULTS),
        "feedback_type": enum(FEEDBACK_TYPES),
        "kind": enum(KINDS),
        "reason": enum(REJECT_REASONS),
        "quirk": enum(QUIRKS),
        "mailbox": named("reports.mailboxes[].name"),
        "outcome": enum(MAILBOX_OUTCOMES),
    },
    {(MAILBOX_ERRORS, "reason"): enum(_RECEIVE_REASONS)},
)


def make_source_class(networks: Sequence[Network]) -> Callable[[str, str, str, tuple[str, ...]], str]:
    """(source IP, aligned DKIM, aligned SPF, override reasons) -> authorized | forwarder | unknown."""
    nets = tuple(networks)

    def classify(ip: str, dkim: str, spf: str, reasons: tuple[str, ...]) -> str:
        try:
            addr = ipaddress.ip_address(ip.strip())
        except ValueError:
            addr = None
        if addr is not None and any(addr in net for net in nets):
            return "authorized"
        # a forwarder breaks SPF but keeps a DKIM signature; receivers that know say so in an override
        if FORWARD_REASONS.intersection(reasons) or (dkim == "pass" and spf != "pass"):
            return "forwarder"
        return "unknown"

    return classify


class ReportMetrics:
    """Counts reports; read at scrape time under the kernel's lock (the caller holds it for ``count``)."""

    families = FAMILIES

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.store = Store(FAMILIES)
        self.mailboxes: tuple[str, ...] = ()
        self.seen_entries = 0
        self._now = now
        self._first_shown: dict[tuple[str, Labels], float] = {}  # counter series -> when first exported
        self.new_series_delay = 0.0
        self.configure(ReportsConfig())

    def configure(self, config: ReportsConfig) -> None:
        from mailpulse.probes.reports.catalog import make_reporter_label  # noqa: PLC0415

        self.reporter = make_reporter_label(dict(config.reporters))
        self.domains = config.domains
        self._open_domains = CappedLabels(DOMAIN_CAP)
        self.source_class = make_source_class(config.networks)
        self.new_series_delay = config.new_series_delay
        names = tuple(m.name for m in config.mailboxes)
        if names != self.mailboxes:  # mailboxes that left the config leave /metrics
            for fam in (MAILBOX_UP, MAILBOX_ERRORS, MAILS):
                values = self.store[fam]
                for labels in [k for k in values if k[0] not in names]:
                    del values[labels]
        self.mailboxes = names

    def domain(self, header_from: str) -> str:
        if not self.domains:
            return self._open_domains(header_from) if header_from else OTHER
        for d in self.domains:
            if header_from == d or header_from.endswith("." + d):
                return d
        return OTHER

    # -- counting -----------------------------------------------------------------------------------------
    def count(self, result: DmarcReport | TlsReport | Complaint | Rejected, duplicate: bool = False) -> None:
        s = self.store
        for quirk in result.quirks:
            s.inc(QUIRK_COUNT, (result.kind, quirk))
        if isinstance(result, Rejected):
            s.inc(REJECTED, (result.kind, result.reason))
            return
        if duplicate:
            s.inc(DUPLICATES, (result.kind,))
            return
        s.inc(INGESTED, (result.kind,))
        if isinstance(result, DmarcReport):
            self._dmarc(result)
        elif isinstance(result, TlsReport):
            self._tls(result)
        else:
            feedback = result.feedback_type if result.feedback_type in FEEDBACK_TYPES else OTHER
            s.inc(COMPLAINTS, (self.reporter(result.reporter), feedback))

    def _period(self, kind: str, reporter: str, end: float, plausible: bool) -> None:
        if plausible:
            gauge = self.store[PERIOD_END]
            key = (kind, reporter)
            gauge[key] = max(gauge.get(key, 0.0), float(end))

    def _dmarc(self, report: DmarcReport) -> None:
        reporter = self.reporter(f"{report.org_name} {report.email.rpartition('@')[2]}")
        self.store.inc(DMARC_REPORTS, (reporter, report.schema))
        self._period("dmarc", reporter, report.end, report.plausible_dates)
        messages = self.store[DMARC_MESSAGES]
        for r in report.records:
            key = (reporter, self.domain(r.header_from), r.disposition, r.dkim, r.spf,
                   self.source_class(r.source_ip, r.dkim, r.spf, r.reasons))  # fmt: skip
            messages[key] = messages.get(key, 0) + r.count

    def _tls(self, report: TlsReport) -> None:
        reporter = self.reporter(report.org_name)
        self._period("tlsrpt", reporter, report.end, report.plausible_dates)
        sessions = self.store[TLS_SESSIONS]
        for p in report.policies:
            domain = self.domain(p.domain)
            for result, n in (("success", p.successful), *p.failures):
                key = (reporter, domain, p.policy_type, result)
                sessions[key] = sessions.get(key, 0) + n

    # -- mailboxes ----------------------------------------------------------------------------------------
    def mailbox_state(self, mailbox: str, up: bool) -> None:
        self.store[MAILBOX_UP][(mailbox,)] = 1.0 if up else 0.0

    def mailbox_error(self, mailbox: str, reason: str) -> None:
        self.store.inc(MAILBOX_ERRORS, (mailbox, reason))

    def mail_moved(self, mailbox: str, outcome: str) -> None:
        self.store.inc(MAILS, (mailbox, outcome))

    def state_write_failed(self) -> None:
        self.store.inc(STATE_ERRORS)

    def collect(self) -> Iterator[Metric]:
        """Every family; a counter series is shown as 0 for ``new_series_delay`` after its first export.

        A report makes a series appear with its whole count at once (a reporter's first report of the
        day), and Prometheus's increase() and rate() see nothing in a series' first sample: they need a 0
        before it. So a new series is exported at 0 first and with its value once Prometheus has had time to
        scrape the 0 (docs/reports.md)."""
        self.store[SEEN][()] = float(self.seen_entries)
        up = self.store[MAILBOX_UP]
        for name in self.mailboxes:
            up.setdefault((name,), 0.0)  # a configured mailbox shows (as down) before its first connection
        now = self._now()
        delay = self.new_series_delay
        first = self._first_shown
        for family in FAMILIES:
            values = self.store[family]
            if family.kind is Kind.COUNTER and delay > 0:
                shown = {}
                for labels, value in values.items():
                    since = first.setdefault((family.name, labels), now)
                    shown[labels] = value if now - since >= delay else 0.0
                values = shown
            yield family.from_values(values)
