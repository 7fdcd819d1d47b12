"""ARF complaints (RFC 5965): the ``message/feedback-report`` part of a ``multipart/report`` mail.

Feedback loops differ in the details: the report part may be base64 (inside ``multipart/mixed`` too),
which the stdlib parser leaves encoded inside a ``message/*`` part (``base64_feedback``). The reporter is
the complaint mail's From domain (``fbl@comcast.net``), else the ``Reporting-MTA`` host. There is no
report id in ARF: de-duplication uses the mail's Message-ID, else a digest of the report part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from mailpulse.parsers.reports.events import Complaint, Rejected

MAX_FIELDS_BYTES = 64 << 10


def _part_text(part: Message) -> tuple[bytes, bool]:
    """The report part's fields as bytes, and whether they were base64."""
    payload = part.get_payload()
    if isinstance(payload, list):  # compat32 parses message/* as a nested message
        raw = b"".join(p.as_bytes() if isinstance(p, Message) else str(p).encode("utf-8", "replace")
                       for p in payload)  # fmt: skip
    else:
        raw = str(payload).encode("utf-8", "replace")
    raw = raw[:MAX_FIELDS_BYTES]
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64" or (b":" not in raw.split(b"\n", 1)[0] and raw.strip()):
        try:
            return base64.b64decode(b"".join(raw.split()), validate=False), True
        except (binascii.Error, ValueError):
            return raw, False
    return raw, False


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()


def parse_arf(msg: Message, part: Message) -> Complaint | Rejected:
    raw, was_base64 = _part_text(part)
    fields = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if not feedback_type:
        return Rejected("arf", "missing_field", "no Feedback-Type")
    sender = getaddresses([str(msg.get("From", ""))])
    reporter = _domain(sender[0][1]) if sender and "@" in sender[0][1] else ""
    if not reporter:
        reporter = str(fields.get("Reporting-MTA", "")).partition(";")[2].strip().lower()
    message_id = str(msg.get("Message-ID", "")).strip()
    report_id = message_id or hashlib.sha256(raw).hexdigest()[:32]
    return Complaint(feedback_type=feedback_type, reporter=reporter, report_id=report_id,
                     reported_domain=str(fields.get("Reported-Domain", "")).strip().lower(),
                     quirks=("base64_feedback",) if was_base64 else ())  # fmt: skip
