"""Reading an autoresponder's report (a verifier address that mails back what it saw).

Two report styles are understood, from the reply's text part:

* summary lines in the style of port25's check-auth verifier::

      SPF check:          pass
      DKIM check:         pass
      DMARC check:        pass

* Authentication-Results headers quoted in the body (possibly folded), as a responder that echoes the
  headers of the received probe writes them; the first quoted header is taken as the responder's
  own (it is the topmost header of the copy it received).

Summary lines win over quoted headers for the same method.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32

from mailpulse.probes.verdicts import METHODS, RESULTS, parse_auth_results, summarize

_CHECK_LINE = re.compile(r'^\s*"?([A-Za-z]+)"?\s+check:\s*([A-Za-z_-]+)', re.MULTILINE)
_SCORE_LINE = re.compile(r"^\s*(?:spam\s*)?score:\s*(-?\d+(?:\.\d+)?)", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class Report:
    auth: dict[str, str] = field(default_factory=dict)
    authserv_id: str | None = None
    spam_score: float | None = None


def parse_report(raw: bytes) -> Report:
    text = report_text(email.message_from_bytes(raw, policy=compat32))
    auth: dict[str, str] = {}
    authserv_id = None
    quoted = _quoted_auth_results(text)
    if quoted:
        header = parse_auth_results(quoted[0])
        auth.update(summarize(header))
        authserv_id = header.authserv_id
    for method_text, result_text in _CHECK_LINE.findall(text):
        method, result = method_text.lower(), result_text.lower()
        if method in METHODS:
            auth[method] = result if result in RESULTS else "other"
    score = _SCORE_LINE.search(text)
    return Report(auth, authserv_id, float(score.group(1)) if score else None)


def report_text(msg: Message) -> str:
    """The first text/plain part (decoded), or the whole payload if there is none."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    payload = msg.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _quoted_auth_results(text: str) -> list[str]:
    """Authentication-Results headers quoted in ``text``, unfolded (continuation lines start with space)."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].lstrip("> ")
        if line.lower().startswith("authentication-results:"):
            value = [line.split(":", 1)[1]]
            i += 1
            while i < len(lines) and lines[i][:1] in (" ", "\t") and lines[i].strip():
                value.append(lines[i].strip())
                i += 1
            out.append(" ".join(v.strip() for v in value))
            continue
        i += 1
    return out
