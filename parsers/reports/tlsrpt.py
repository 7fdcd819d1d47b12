"""SMTP TLS reports (RFC 8460 section 4), JSON.

Read as the RFC says, plus what reporters send instead: ``mx-host`` as a string (``mx_host_string``),
datetimes without a zone (``naive_datetime``, read as UTC), failure details that do not add up to the
summary's failure count (``failure_count_mismatch`` when they add up to more: the details are counted; a
summary count above their sum is counted as result ``unspecified``, details being optional). Policy and
result types outside the RFC's sets are ``other``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mailpulse.parsers.reports.dmarc import plausible
from mailpulse.parsers.reports.events import Rejected, TlsPolicy, TlsReport

POLICY_TYPES = ("sts", "tlsa", "no-policy-found")
RESULT_TYPES = (
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired", "certificate-not-trusted",
    "validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required", "sts-policy-fetch-error",
    "sts-policy-invalid", "sts-webpki-invalid",
)  # fmt: skip
MAX_SESSIONS = 10**12


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str):
        value = int(value) if value.isascii() and value.isdigit() and len(value) <= 13 else -1
    return value if 0 <= value <= MAX_SESSIONS else None


def _datetime(value: object, quirks: set[str]) -> float | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        quirks.add("naive_datetime")
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _enum(value: object, values: tuple[str, ...]) -> str:
    low = value.strip().lower() if isinstance(value, str) else ""
    return low if low in values else "other"


def load_json(data: bytes) -> tuple[Any, str, tuple[str, ...]]:
    """(document, reject reason or "", quirks)."""
    quirks: tuple[str, ...] = ()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text, quirks = data.decode("utf-8", "replace"), ("invalid_utf8",)
    try:
        return json.loads(text), "", quirks
    except (ValueError, RecursionError):  # ValueError also covers integers over 4300 digits
        return None, "json_syntax", quirks


def parse_tlsrpt(doc: dict[str, Any], now: float, max_policies: int, quirks_in: tuple[str, ...] = ()
                 ) -> TlsReport | Rejected:  # fmt: skip
    quirks = set(quirks_in)
    org = doc.get("organization-name")
    report_id = doc.get("report-id")
    dates = doc.get("date-range")
    policies = doc.get("policies")
    if not isinstance(policies, list):
        return Rejected("tlsrpt", "not_a_report", "no policies list")
    if not isinstance(report_id, str) or not report_id.strip():
        return Rejected("tlsrpt", "missing_field", "no report-id")
    if not isinstance(org, str):
        org = ""
    if not org.strip():
        quirks.add("empty_org")
    if not isinstance(dates, dict):
        return Rejected("tlsrpt", "missing_field", "no date-range")
    begin = _datetime(dates.get("start-datetime"), quirks)
    end = _datetime(dates.get("end-datetime"), quirks)
    if begin is None or end is None:
        return Rejected("tlsrpt", "missing_field", "no readable date-range")
    ok_dates = plausible(begin, end, now)
    if not ok_dates:
        quirks.add("implausible_dates")
    if len(policies) > max_policies:
        return Rejected("tlsrpt", "too_many_records", f"{len(policies)} policies")
    parsed: list[TlsPolicy] = []
    for entry in policies:
        policy = _policy(entry, quirks)
        if policy is None:
            quirks.add("bad_record")
        else:
            parsed.append(policy)
    return TlsReport(org.strip(), report_id.strip(), begin, end, tuple(parsed), ok_dates, tuple(sorted(quirks)))


def _policy(entry: object, quirks: set[str]) -> TlsPolicy | None:
    if not isinstance(entry, dict):
        return None
    policy = entry.get("policy")
    summary = entry.get("summary")
    if not isinstance(policy, dict) or not isinstance(summary, dict):
        return None
    ok = _count(summary.get("total-successful-session-count", 0))
    failed = _count(summary.get("total-failure-session-count", 0))
    if ok is None or failed is None:
        return None
    if isinstance(policy.get("mx-host"), str):
        quirks.add("mx_host_string")
    failures: dict[str, int] = {}
    details = entry.get("failure-details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        n = _count(detail.get("failed-session-count", 0))
        if n is None:
            continue
        result = _enum(detail.get("result-type"), RESULT_TYPES)
        failures[result] = failures.get(result, 0) + n
    detailed = sum(failures.values())
    if detailed > failed:  # details are optional and may be partial, never more than the total
        quirks.add("failure_count_mismatch")
    elif failed > detailed:
        failures["unspecified"] = failed - detailed
    domain = policy.get("policy-domain")
    return TlsPolicy(_enum(policy.get("policy-type"), POLICY_TYPES),
                     domain.strip().lower() if isinstance(domain, str) else "", ok, failed,
                     tuple(sorted(failures.items())))  # fmt: skip
