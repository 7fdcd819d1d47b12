"""Dashboard 5, "What receivers report": DMARC aggregate reports, SMTP TLS reports and complaints.

Reports arrive once a day per reporter and describe the day before: the counters jump when a report is
ingested, so time series here are bars of ``increase`` (when reports came in), and the tables and pies sum
``increase`` over the dashboard's range (pick a range of days: "Last 7 days"). "Report data age" says which
day the newest report of each reporter covers (docs/reports.md explains the queries).
"""

from __future__ import annotations

from dashboards.grafana import RI, Json, Panel, Row, Target, dashboard, hide_columns, sel

UID = "mailpulse-reports"
S = sel()
MSG = "mailpulse_dmarc_messages_total"
TLS = "mailpulse_tlsrpt_sessions_total"
FAIL = sel('dkim!="pass"', 'spf!="pass"')
TLS_FAILED = sel('result!="success"')


def _range(metric: str, by: str, selector: str = S) -> str:
    return f"sum by ({by}) (increase({metric}{selector}[$__range]))"


def _bars(metric: str, by: str, selector: str = S) -> str:
    return f"sum by ({by}) (increase({metric}{selector}[{RI}]))"


DMARC: list[Panel | Row] = [
    Row("DMARC aggregate reports"),
    Panel(
        "DMARC pass rate by domain",
        "Share of the messages receivers reported for each of our domains that passed DMARC (an aligned DKIM "
        "or SPF pass), over the dashboard's range. Reports describe the previous day: use a range of days.",
        "percentunit",
        (
            Target(
                f"1 - ({_range(MSG, 'domain', FAIL)} or {_range(MSG, 'domain')} * 0) / ({_range(MSG, 'domain')} > 0)",
                "{{domain}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        width=8,
        min=0,
        max=1,
        thresholds=((None, "red"), (0.9, "orange"), (0.98, "green")),
    ),
    Panel(
        "Messages by source class",
        "Reported messages by where they came from: authorized (reports.authorized_networks), forwarder "
        "(DKIM survived but SPF did not, or the receiver said forwarded/mailing list), unknown.",
        "short",
        (Target(_range(MSG, "source"), "{{source}}", instant=True),),
        kind="piechart",
        width=8,
    ),
    Panel(
        "Messages by disposition",
        "What receivers did with the reported messages: none (delivered), quarantine, reject, pass (RFC 9990).",
        "short",
        (Target(_range(MSG, "disposition"), "{{disposition}}", instant=True),),
        kind="piechart",
        width=8,
    ),
    Panel(
        "DMARC failures from our hosts",
        "Messages from our authorized networks that failed DMARC, by domain and reporter, when the reports came "
        "in: our own misconfiguration (DmarcFailingFromAuthorizedSources).",
        "short",
        (
            Target(
                _bars(MSG, "domain, reporter", sel('source="authorized"', 'dkim!="pass"', 'spf!="pass"')),
                "{{domain}} ({{reporter}})",
            ),
        ),
        bars=True,
    ),
    Panel(
        "Unknown sources sending as us",
        "Messages from hosts outside our networks that are not forwarders, by domain and DMARC-aligned DKIM/SPF "
        "result (passing: a sender missing from the inventory; failing: spoofing).",
        "short",
        (Target(_bars(MSG, "domain, dkim, spf", sel('source="unknown"')), "{{domain}} dkim={{dkim}} spf={{spf}}"),),
        bars=True,
    ),
    Panel(
        "Messages by reporter",
        "Reported messages over the range by reporter, source class and DMARC-aligned results.",
        "short",
        (Target(_range(MSG, "reporter, domain, source, dkim, spf, disposition"), instant=True, fmt="table"),),
        kind="table",
        width=16,
        transformations=(hide_columns("Time"),),
    ),
    Panel(
        "Reports by reporter and schema",
        "DMARC aggregate reports ingested over the range, by reporter and schema (1.0: RFC 7489, 2.0: RFC 9990).",
        "short",
        (Target(_range("mailpulse_dmarc_reports_total", "reporter, schema"), instant=True, fmt="table"),),
        kind="table",
        width=8,
        transformations=(hide_columns("Time"),),
    ),
]

TLS_AND_COMPLAINTS: list[Panel | Row] = [
    Row("SMTP TLS reports and complaints"),
    Panel(
        "TLS sessions to our MX by result",
        "Sessions sending MTAs reported in their TLS reports (RFC 8460), by domain and result, when the reports "
        "came in; failures are named by their result type (TlsRptFailures).",
        "short",
        (Target(_bars(TLS, "domain, result"), "{{domain}} {{result}}"),),
        bars=True,
        stack=True,
    ),
    Panel(
        "TLS failure share by domain and policy",
        "Share of reported TLS sessions that failed over the range, by policy domain and policy type.",
        "percentunit",
        (
            Target(
                f"({_range(TLS, 'domain, policy_type', TLS_FAILED)} "
                f"or {_range(TLS, 'domain, policy_type')} * 0) / ({_range(TLS, 'domain, policy_type')} > 0)",
                "{{domain}} {{policy_type}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        width=6,
        min=0,
        max=1,
        thresholds=((None, "green"), (0.01, "orange"), (0.05, "red")),
    ),
    Panel(
        "Complaints by reporter and type",
        "ARF feedback reports (RFC 5965) forwarded by feedback loops, by reporter and feedback type (ComplaintSpike).",
        "short",
        (Target(_bars("mailpulse_arf_complaints_total", "reporter, feedback_type"), "{{reporter}} {{feedback_type}}"),),
        bars=True,
        width=6,
    ),
]

INGESTION: list[Panel | Row] = [
    Row("Ingestion"),
    Panel(
        "Report data age",
        "How old the end of the date range of each reporter's newest report is: a reporter whose reports "
        "stopped coming shows here (reports with implausible dates are not counted).",
        "s",
        (
            Target(
                f"time() - max by (kind, reporter) (mailpulse_reports_period_end_timestamp_seconds{S})",
                "{{kind}} {{reporter}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        width=8,
        thresholds=((None, "green"), (2 * 86400, "orange"), (4 * 86400, "red")),
    ),
    Panel(
        "Reports ingested, duplicates and rejected",
        "Reports counted by kind, reports already counted (a re-sent mail, a re-read folder), and inputs "
        "refused by kind and reason (too_large: bombs and oversized reports; xml_dtd; not_a_report ...).",
        "short",
        (
            Target(_bars("mailpulse_reports_ingested_total", "kind"), "ingested {{kind}}"),
            Target(_bars("mailpulse_reports_duplicates_total", "kind"), "duplicate {{kind}}"),
            Target(_bars("mailpulse_reports_rejected_total", "kind, reason"), "rejected {{kind}} {{reason}}"),
        ),
        bars=True,
        width=8,
    ),
    Panel(
        "Defects tolerated",
        "Reports read despite a known defect (gzip trailing bytes, unclosed root, letter case, invalid UTF-8, "
        "naive datetimes ...), by kind and defect.",
        "short",
        (Target(_bars("mailpulse_reports_quirks_total", "kind, quirk"), "{{kind}} {{quirk}}"),),
        bars=True,
        width=8,
    ),
    Panel(
        "Report mailboxes",
        "1 while mailpulse is connected to the report mailbox (ReportsMailboxDown); mails moved to the processed "
        "and failed folders are in mailpulse_reports_mails_total.",
        "short",
        (Target(f"max by (mailbox) (mailpulse_reports_mailbox_up{S})", "{{mailbox}}"),),
        kind="state-timeline",
        width=12,
        mappings=((1, "connected", "green"), (0, "down", "red")),
    ),
    Panel(
        "Mails taken from the mailboxes",
        "Mails moved to the processed folder (its reports counted, or already counted) and to the failed folder "
        "(no usable report).",
        "short",
        (Target(_bars("mailpulse_reports_mails_total", "mailbox, outcome"), "{{mailbox}} {{outcome}}"),),
        bars=True,
        width=12,
    ),
]


def build() -> Json:
    return dashboard(
        UID,
        "mailpulse / What receivers report",
        "DMARC aggregate, SMTP TLS and complaint reports receivers send about our mail: DMARC pass rate and "
        "failures by source class, unknown senders using our domains, TLS failures to our MX, complaints, and "
        "the health of report ingestion.",
        [*DMARC, *TLS_AND_COMPLAINTS, *INGESTION],
    )
