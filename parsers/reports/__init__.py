"""Parsers of the reports receivers send about our mail: DMARC aggregate (RFC 7489, RFC 9990), SMTP TLS
reports (RFC 8460) and ARF complaints (RFC 5965). Pure functions over bytes, no I/O, never raising on input:
every input gives reports (with the quirks that were tolerated) or a rejection with a bounded reason.

``parse_file(data, now)`` reads one report file (xml, gzip, zip, json or a whole mail);
``parse_message(data, now)`` one mail.
"""

from mailpulse.parsers.reports.events import (
    KINDS,
    QUIRKS,
    REJECT_REASONS,
    Complaint,
    DmarcRecord,
    DmarcReport,
    Rejected,
    Report,
    TlsPolicy,
    TlsReport,
)  # fmt: skip
from mailpulse.parsers.reports.top import Limits, parse_file, parse_message

__all__ = [
    "KINDS", "QUIRKS", "REJECT_REASONS", "Complaint", "DmarcRecord", "DmarcReport", "Limits", "Rejected", "Report",
    "TlsPolicy", "TlsReport", "parse_file", "parse_message",
]  # fmt: skip
