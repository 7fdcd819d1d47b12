"""Report mails for the lab: the fixtures under tests/fixtures/reports/own as real mail through the lab MX,
from the lab's well-configured outside sender, to postmaster@ (the lab's rua address)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from lab.envfile import LabEnv
from lab.layout import POSTMASTER
from lab.traffic.smtp import MX_EXTERNAL, send

OWN = Path(__file__).resolve().parents[1] / "fixtures" / "reports" / "own"
PROCESSED, FAILED = "Reports/Processed", "Reports/Failed"
# mails that are reports as they stand
EML = ("dmarc-octet-stream.eml", "tlsrpt-google.eml", "arf-base64-mixed.eml")
# a mail whose attachment is no report (the fixture bad-no-report.eml scores high enough at the lab MX to be
# greylisted, so the failed case is built from the lab's well-configured outside sender)
BAD_MAIL = (b"From: reports@sender.test\r\nTo: postmaster@example.test\r\nSubject: Report Domain: example.com "
            b"Submitter: sender.test Report-ID: 42\r\nMessage-ID: <bad-42@sender.test>\r\n"
            b"Date: Mon, 01 Dec 2025 06:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
            b"The aggregate report is attached.\r\n--b\r\nContent-Type: application/xml; name=report.xml\r\n"
            b"Content-Disposition: attachment; filename=report.xml\r\n\r\n<html><body>not a report</body></html>"
            b"\r\n--b--\r\n")  # fmt: skip


def wrap(name: str, n: int) -> bytes:
    """A report file as the attachment of a mail (base64, application/octet-stream, as Microsoft sends)."""
    data = base64.encodebytes((OWN / name).read_bytes()).replace(b"\n", b"\r\n")
    return (f"From: reports@sender.test\r\nTo: {POSTMASTER}\r\nSubject: Report {n}\r\n"
            f"Message-ID: <report-{n}@sender.test>\r\nDate: Mon, 01 Dec 2025 06:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n"
            f'--b\r\nContent-Type: application/octet-stream; name="{name}"\r\nContent-Transfer-Encoding: base64\r\n'
            f"\r\n").encode() + data + b"\r\n--b--\r\n"  # fmt: skip


def all_mails() -> list[tuple[str, bytes]]:
    """Every kind of report, a tolerated defect, a duplicate (the zip's report again) and a failed mail."""
    mails = [(n, (OWN / n).read_bytes()) for n in EML]
    mails += [(n, wrap(n, i)) for i, n in enumerate(
        ("dmarc-google.zip", "dmarc-gzip-trailing-bytes.xml.gz", "dmarc-duplicate-of-google.xml"))]  # fmt: skip
    return [*mails, ("bad", BAD_MAIL)]


def send_all(env: LabEnv, mails: list[tuple[str, bytes]]) -> None:
    """Through the lab MX. The lab's score header (-5) keeps rspamd's verdict deterministic: never greylisted
    (a report's score depends on what rspamd learnt from earlier traffic), never filed into Junk."""
    header = f"{env['LAB_SCORE_HEADER']}: -5\r\n".encode()
    for name, data in mails:
        reply = send(env, MX_EXTERNAL, "reports@sender.test", [POSTMASTER], header + data)
        assert reply.accepted, f"{name}: {reply}"


def mailbox(env: LabEnv, **extra: Any) -> dict[str, Any]:
    """A reports.mailboxes[] entry for the lab's postmaster@ mailbox (implicit TLS, IDLE)."""
    return {"name": "rua", "host": env["LAB_HOST"], "port": int(env["LAB_IMAPS_PORT"]), "tls": "implicit",
            "ca_file": env["LAB_CA_FILE"], "username": POSTMASTER, "password_file": env["LAB_PASSWORD_FILE"],
            "folder": "INBOX", "processed_folder": PROCESSED, "failed_folder": FAILED, "watch": "idle",
            **extra}  # fmt: skip
