"""What the report parsers produce: small frozen records. Source IPs and report IDs travel on them (the
aggregator needs them to classify and de-duplicate) but never become labels."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("dmarc", "tlsrpt", "arf", "unknown")

# Why an input was refused: a fixed set, so it can be a label.
REJECT_REASONS = (
    "too_large",  # the input or its decompressed content is over the size cap (zip bombs end here)
    "bad_gzip",  # not a complete gzip stream
    "bad_zip",  # not a readable zip archive (or a CRC/length mismatch, or encrypted)
    "zip_members",  # a zip without exactly one file in it
    "xml_dtd",  # a DOCTYPE or entity declaration (entity expansion is never attempted)
    "xml_syntax",  # XML that cannot be read even with the tolerated quirks
    "json_syntax",  # JSON that cannot be read
    "not_a_report",  # well-formed, but not a DMARC aggregate report, a TLS report or an ARF report
    "missing_field",  # a report without a field it cannot be counted without (report id, dates)
    "too_many_records",  # more records/policies than the cap
    "no_report",  # a mail without any report in it
    "unknown_format",  # content that is none of zip, gzip, XML, JSON or mail
    "parser_error",  # a bug: the parser raised on this input (logged with its traceback)
)

# What real reports get wrong and mailpulse reads anyway (docs/reports.md, "Messy reports").
QUIRKS = (
    "gzip_trailing_bytes",  # bytes after the end of the gzip stream (ignored)
    "unclosed_root",  # the outer element is never closed, everything inside is complete
    "trailing_text",  # text after the end of the document
    "invalid_utf8",  # bytes that are not UTF-8 (replaced with U+FFFD)
    "letter_case",  # `Pass`, `None`, `Reject`: enum values compared case-insensitively
    "empty_org",  # an empty org_name: the reporter is taken from the report's email address
    "implausible_dates",  # end before begin, a range over 31 days, far in the future or before 2000
    "bad_record",  # a record without a readable count (skipped, the rest of the report counts)
    "naive_datetime",  # a TLS-RPT datetime without a zone (read as UTC)
    "mx_host_string",  # a TLS-RPT mx-host given as a string instead of a list
    "failure_count_mismatch",  # TLS-RPT failure details adding up to more than the summary's failure count
    "base64_feedback",  # an ARF message/feedback-report part in base64
)


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    source_ip: str
    count: int
    disposition: str  # none | quarantine | reject | pass | other
    dkim: str  # DMARC-aligned DKIM result: pass | fail | other
    spf: str  # DMARC-aligned SPF result: pass | fail | other
    header_from: str  # lowercased
    reasons: tuple[str, ...] = ()  # policy override types, lowercased


@dataclass(frozen=True, slots=True)
class DmarcReport:
    org_name: str
    email: str
    report_id: str
    begin: int
    end: int
    schema: str  # "1.0" (RFC 7489) or "2.0" (RFC 9990)
    policy_domain: str
    records: tuple[DmarcRecord, ...]
    plausible_dates: bool = True
    quirks: tuple[str, ...] = ()
    kind: str = "dmarc"

    @property
    def reporter(self) -> str:
        return self.org_name or self.email.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    policy_type: str  # sts | tlsa | no-policy-found | other
    domain: str
    successful: int
    failed: int
    failures: tuple[tuple[str, int], ...]  # (result type, failed sessions); the rest of `failed` is unspecified


@dataclass(frozen=True, slots=True)
class TlsReport:
    org_name: str
    report_id: str
    begin: float
    end: float
    policies: tuple[TlsPolicy, ...]
    plausible_dates: bool = True
    quirks: tuple[str, ...] = ()
    kind: str = "tlsrpt"

    @property
    def reporter(self) -> str:
        return self.org_name


@dataclass(frozen=True, slots=True)
class Complaint:
    feedback_type: str  # lowercased as sent; the aggregator maps it to an enum
    reporter: str  # the complaint's From domain (or Reporting-MTA), lowercased
    report_id: str  # the mail's Message-ID, or a digest of the report part
    reported_domain: str = ""
    quirks: tuple[str, ...] = ()
    kind: str = "arf"


Report = DmarcReport | TlsReport | Complaint


@dataclass(frozen=True, slots=True)
class Rejected:
    kind: str  # one of KINDS
    reason: str  # one of REJECT_REASONS
    detail: str = ""  # for a log line: short, never a label
    quirks: tuple[str, ...] = field(default=())
