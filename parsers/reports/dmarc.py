"""DMARC aggregate reports: RFC 7489 Appendix C (``1.0``) and RFC 9990 (``2.0``) shapes.

The 2.0 shape is told by its namespace (``urn:ietf:params:xml:ns:dmarc-2.0``) or, since reporters send it
without one, by its fields: ``np``, ``testing`` or ``discovery_method`` in ``policy_published``,
``generator`` in ``report_metadata``, or a ``pass`` disposition. Both shapes are read by the same code:
the fields that are counted (org, report id, dates, source IP, count, disposition, aligned DKIM/SPF,
header_from, override reasons) mean the same in both. Enums are compared case-insensitively (``Pass``);
values outside the RFCs' sets become ``other``.
"""

from __future__ import annotations

from mailpulse.parsers.numbers import uint
from mailpulse.parsers.reports.events import DmarcRecord, DmarcReport, Rejected
from mailpulse.parsers.reports.xmltree import Node

NS_2 = "urn:ietf:params:xml:ns:dmarc-2.0"
DISPOSITIONS = ("none", "quarantine", "reject", "pass")
RESULTS = ("pass", "fail")
_V2_POLICY_FIELDS = ("np", "testing", "discovery_method")
MAX_COUNT = 10**9  # messages in one record
MAX_EPOCH = 10**11
EARLIEST = 946684800  # 2000-01-01: DMARC did not exist before 2012
MAX_SPAN = 31 * 86400
FUTURE_SLACK = 2 * 86400


def _enum(text: str, values: tuple[str, ...], quirks: set[str]) -> str:
    low = text.strip().lower()
    if low != text.strip():
        quirks.add("letter_case")
    return low if low in values else "other"


def plausible(begin: float, end: float, now: float) -> bool:
    return EARLIEST <= begin <= end <= now + FUTURE_SLACK and end - begin <= MAX_SPAN


def parse_dmarc(root: Node, namespaces: tuple[str, ...], now: float, max_records: int) -> DmarcReport | Rejected:
    quirks: set[str] = set()
    meta = root.find("report_metadata")
    policy = root.find("policy_published")
    if meta is None:
        return Rejected("dmarc", "not_a_report", "no report_metadata")
    org = meta.get("org_name")
    email = meta.get("email").lower()
    report_id = meta.get("report_id")
    if not report_id:
        return Rejected("dmarc", "missing_field", "no report_id")
    if not org:
        quirks.add("empty_org")
        if "@" not in email:
            return Rejected("dmarc", "missing_field", "neither org_name nor email")
    begin = uint(meta.get("date_range", "begin"), MAX_EPOCH)
    end = uint(meta.get("date_range", "end"), MAX_EPOCH)
    if begin is None or end is None:
        return Rejected("dmarc", "missing_field", "no readable date_range")
    ok_dates = plausible(begin, end, now)
    if not ok_dates:
        quirks.add("implausible_dates")
    record_nodes = root.findall("record")
    if len(record_nodes) > max_records:
        return Rejected("dmarc", "too_many_records", f"{len(record_nodes)} records")
    records: list[DmarcRecord] = []
    dispositions: set[str] = set()
    for rec in record_nodes:
        parsed = _record(rec, quirks)
        if parsed is None:
            quirks.add("bad_record")
            continue
        dispositions.add(parsed.disposition)
        records.append(parsed)
    v2 = (any(NS_2 in ns for ns in namespaces)
          or (policy is not None and any(policy.find(f) is not None for f in _V2_POLICY_FIELDS))
          or meta.find("generator") is not None or "pass" in dispositions)  # fmt: skip
    return DmarcReport(
        org_name=org, email=email, report_id=report_id, begin=begin, end=end, schema="2.0" if v2 else "1.0",
        policy_domain=policy.get("domain").lower() if policy is not None else "", records=tuple(records),
        plausible_dates=ok_dates, quirks=tuple(sorted(quirks)),
    )  # fmt: skip


def _record(rec: Node, quirks: set[str]) -> DmarcRecord | None:
    row = rec.find("row")
    if row is None:
        return None
    count = uint(row.get("count"), MAX_COUNT)
    if count is None:
        return None
    evaluated = row.find("policy_evaluated") or Node("policy_evaluated")
    ids = rec.find("identifiers") or rec.find("identities") or Node("identifiers")
    reasons = tuple(r.get("type").lower() for r in evaluated.findall("reason") if r.get("type"))
    return DmarcRecord(
        source_ip=row.get("source_ip"), count=count,
        disposition=_enum(evaluated.get("disposition"), DISPOSITIONS, quirks),
        dkim=_enum(evaluated.get("dkim"), RESULTS, quirks), spf=_enum(evaluated.get("spf"), RESULTS, quirks),
        header_from=ids.get("header_from").lower().rstrip("."), reasons=reasons,
    )  # fmt: skip
