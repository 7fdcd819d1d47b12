"""Entry points: a file (``parse_file``) or a mail (``parse_message``) to reports and rejections.

A file may be a report (XML, JSON, gzip or zip of one) or a whole mail (``.eml``); a mail is walked with
the stdlib ``email`` package and every attachment that is a report is read (its MIME type is not
trusted: the bytes decide). ``message/rfc822`` parts (the original mail an ARF report carries) are not
entered. Every input is bounded: its size (``Limits.max_input_bytes``), its decompressed size
(``max_report_bytes``), the elements of its XML and the records or policies of a report
(``max_records``), the MIME parts walked (``max_parts``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

from mailpulse.parsers.reports.arf import parse_arf
from mailpulse.parsers.reports.dmarc import parse_dmarc
from mailpulse.parsers.reports.events import Rejected, Report
from mailpulse.parsers.reports.tlsrpt import load_json, parse_tlsrpt
from mailpulse.parsers.reports.unpack import sniff, unpack
from mailpulse.parsers.reports.xmltree import parse_xml

Result = Report | Rejected
_SKIP_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global", "message/delivery-status")
_TEXT_BODIES = ("text/plain", "text/html")
_FEEDBACK = "message/feedback-report"
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Limits:
    max_input_bytes: int = 25 << 20  # one file or one mail as read
    max_report_bytes: int = 20 << 20  # one report decompressed (parsedmarc: 100 MiB; real ones are < 1 MiB)
    max_records: int = 100_000  # DMARC records or TLS-RPT policies in one report
    max_parts: int = 64  # MIME parts walked in one mail


DEFAULT_LIMITS = Limits()


def _kind(content: str) -> str:
    return {"xml": "dmarc", "json": "tlsrpt"}.get(content, "unknown")


def _with_quirks(result: Result, quirks: tuple[str, ...]) -> Result:
    if not quirks:
        return result
    merged = tuple(sorted(set(result.quirks) | set(quirks)))
    return dataclasses.replace(result, quirks=merged)


def parse_blob(data: bytes, now: float, limits: Limits = DEFAULT_LIMITS) -> Result:
    """One report: XML or JSON, plain or in a gzip or zip."""
    content, unpacked = unpack(data, limits.max_report_bytes)
    if unpacked.reason:
        return Rejected(_kind(content) if content in ("xml", "json") else "unknown", unpacked.reason,
                        quirks=unpacked.quirks)  # fmt: skip
    if content == "xml":
        parsed = parse_xml(unpacked.data, 8 * limits.max_records + 64)
        if parsed.root is None:
            return Rejected("dmarc", parsed.reason, quirks=parsed.quirks)
        if parsed.root.tag != "feedback":
            return Rejected("dmarc", "not_a_report", f"root element {parsed.root.tag[:40]!r}")
        result: Result = parse_dmarc(parsed.root, parsed.namespaces, now, limits.max_records)
        return _with_quirks(result, unpacked.quirks + parsed.quirks)
    if content == "json":
        doc, reason, quirks = load_json(unpacked.data)
        if reason:
            return Rejected("tlsrpt", reason, quirks=quirks)
        if not isinstance(doc, dict) or "policies" not in doc:
            return Rejected("tlsrpt", "not_a_report", "not a TLS report object")
        return _with_quirks(parse_tlsrpt(doc, now, limits.max_records, quirks), unpacked.quirks)
    return Rejected("unknown", "unknown_format")


def parse_file(data: bytes, now: float, limits: Limits = DEFAULT_LIMITS) -> list[Result]:
    """A report file or a mail file (``.eml``), told apart by content."""
    if len(data) > limits.max_input_bytes:
        return [Rejected("unknown", "too_large")]
    if sniff(data) == "mail":
        return parse_message(data, now, limits)
    return [parse_blob(data, now, limits)]


def _leaves(part: Message, depth: int = 0) -> Iterator[Message]:
    ctype = part.get_content_type()
    if ctype == _FEEDBACK or not part.is_multipart():
        yield part
        return
    if ctype in _SKIP_TYPES or depth >= _MAX_DEPTH:
        return
    payload = part.get_payload()
    for sub in payload if isinstance(payload, list) else ():
        if isinstance(sub, Message):
            yield from _leaves(sub, depth + 1)


def parse_message(data: bytes, now: float, limits: Limits = DEFAULT_LIMITS) -> list[Result]:
    """Every report in one mail; ``no_report`` when there is none."""
    if len(data) > limits.max_input_bytes:
        return [Rejected("unknown", "too_large")]
    try:
        msg = message_from_bytes(data, policy=compat32)
    except (ValueError, LookupError, RecursionError) as exc:
        return [Rejected("unknown", "no_report", type(exc).__name__)]
    results: list[Result] = []
    for n, part in enumerate(_leaves(msg)):
        if n >= limits.max_parts:
            break
        ctype = part.get_content_type()
        if ctype == _FEEDBACK:
            results.append(parse_arf(msg, part))
            continue
        if ctype in _SKIP_TYPES or (ctype in _TEXT_BODIES and not part.get_filename()):
            continue
        try:
            payload = part.get_payload(decode=True)
        except (ValueError, LookupError, AssertionError):
            continue
        if not isinstance(payload, bytes) or sniff(payload) not in ("zip", "gzip", "xml", "json"):
            continue
        results.append(parse_blob(payload, now, limits))
    return results or [Rejected("unknown", "no_report")]
