"""Messages the traffic driver sends: unique Message-ID and body nonce per message.

The nonce matters: rspamd's greylisting keys on a body hash, so identical bodies from different
senders would be greylisted as "too early" retries of each other.
"""

from __future__ import annotations

import email.utils
import itertools
import os
import time

_SEQ = itertools.count(1)

BODY = (
    "Hello,\r\n\r\n"
    "this is a message of the mailpulse lab traffic driver. The quarterly numbers are on the\r\n"
    "shared drive; please review section three before Thursday.\r\n\r\n"
    "Regards,\r\nthe lab\r\n"
)


def build(
    run_id: str,
    kind: str,
    header_from: str,
    to: str,
    *,
    extra_headers: dict[str, str] | None = None,
    body_lines: tuple[str, ...] = (),
) -> tuple[str, bytes]:
    """Return (Message-ID, RFC 5322 bytes with CRLF line ends)."""
    seq = next(_SEQ)
    domain = header_from.rsplit("@", 1)[1]
    mid = f"<lab-{run_id}-{seq:03d}-{kind}@{domain}>"
    headers = {
        "From": f"Lab Probe <{header_from}>",
        "To": f"<{to}>",
        "Subject": f"lab {kind} {run_id}-{seq:03d}",
        "Date": email.utils.formatdate(time.time(), localtime=False),
        "Message-ID": mid,
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=utf-8",
        **(extra_headers or {}),
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    nonce = f"nonce {run_id}-{seq:03d}-{os.urandom(6).hex()}\r\n"
    body = BODY + "".join(f"{line}\r\n" for line in body_lines) + nonce
    return mid, (head + "\r\n" + body).encode()
