"""Target kind "autoresponder": mailpulse sends to a verifier address, finds the verifier's reply in its
own mailbox and reports the results the reply states.

The lab has no verifier, so this test starts one itself, on loopback, against the real lab: a thread
that watches probe@partner.test over IMAPS, reads the receiving MX's Authentication-Results of each
probe that arrives there, and answers through the lab's submission port with a report in the style of
port25's check-auth verifier ("SPF check: pass" lines) plus the quoted header. The reply travels back
through the lab MX into probe@example.test, which mailpulse watches.
"""

from __future__ import annotations

import email
import re
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.policy import default
from email.utils import make_msgid
from pathlib import Path

import pytest

from lab.envfile import LabEnv
from tests.lab.test_probes_e2e import imap, imap_probe_uids, lab_config, lab_probes, probe, run_cli

pytestmark = [pytest.mark.lab]


def verifier(env: LabEnv, stop: threading.Event, answered: list[str]) -> None:
    """Answer every message of the probe ``check-auth`` in probe@partner.test with an authentication report,
    then delete it. (Only that probe's: the session lab's mailbox may receive a late probe of another test.)"""
    conn = imap(env, "probe@partner.test")
    try:
        conn.select("INBOX")
        while not stop.wait(0.2):
            conn.noop()
            typ, data = conn.uid("SEARCH", None, "HEADER", "X-Mailpulse-Probe", "probe=check-auth;")  # type: ignore[arg-type]
            for uid in data[0].split() if typ == "OK" else []:
                typ, parts = conn.uid("FETCH", uid.decode(), "(BODY.PEEK[HEADER])")
                raw = parts[0][1]
                assert isinstance(raw, bytes)
                _reply(env, email.message_from_bytes(raw, policy=default))
                answered.append(uid.decode())
                conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
                conn.expunge()
    finally:
        conn.logout()


def _reply(env: LabEnv, original: email.message.Message) -> None:
    header = " ".join(str(original["Authentication-Results"]).split())
    results = dict(re.findall(r"\b(dkim|spf|dmarc)=(\w+)", header))
    report = EmailMessage()
    report["From"] = "probe@partner.test"
    report["To"] = str(original["From"])
    report["Subject"] = f"Re: {original['Subject']}"
    report["Message-ID"] = make_msgid(domain="partner.test")
    report["In-Reply-To"] = report["References"] = str(original["Message-ID"])
    report["Auto-Submitted"] = "auto-replied"
    lines = ["Summary of Results", "=" * 40]
    lines += [f"{m.upper()} check:{' ' * 10}{results.get(m, 'none')}" for m in ("spf", "dkim", "dmarc")]
    lines += ["", "The message you sent carried:", f"Authentication-Results: {header}"]
    report.set_content("\n".join(lines) + "\n")
    ctx = ssl.create_default_context(cafile=env["LAB_CA_FILE"])
    with smtplib.SMTP(env["LAB_HOST"], int(env["LAB_SUBMISSION_PORT"]), timeout=10) as smtp:
        smtp.starttls(context=ctx)
        smtp.login("probe@partner.test", env["LAB_PASSWORD"])
        smtp.send_message(report)


@pytest.mark.timeout(120)
def test_autoresponder_report_is_read_back(mail_lab: LabEnv, tmp_path: Path) -> None:
    """The probe goes out, the verifier answers, mailpulse matches the reply by the HMAC'd Message-ID it
    quotes and reports the verifier's dkim/spf/dmarc results; the reply is cleaned up."""
    lab = lab_probes(mail_lab)
    remote = next(t for t in lab["targets"] if t["name"] == "remote-inbox")
    target = {**remote, "name": "verifier", "kind": "autoresponder", "address": "probe@partner.test",
              "username": "probe@example.test"}  # fmt: skip
    config = lab_config(mail_lab, tmp_path, targets=[target],
                        probes=[probe("check-auth", route="relay-cert", target="verifier", deadline="40s")])  # fmt: skip
    stop, answered = threading.Event(), list[str]()
    thread = threading.Thread(target=verifier, args=(mail_lab, stop, answered), daemon=True)
    thread.start()
    try:
        code, lines, stderr = run_cli(config)
    finally:
        stop.set()
        thread.join(15)
    (line,) = lines
    assert code == 0, stderr[-2000:]
    assert 1 == len(answered)
    assert ("delivered", "autoresponder") == (line["outcome"], line["auth_source"])
    assert ("pass", "pass", "pass") == (line["dkim"], line["spf"], line["dmarc"])
    assert mail_lab["LAB_MX_HOSTNAME"] == line["authserv_id"]
    assert line["latency_seconds"] > 0
    assert [] == imap_probe_uids(mail_lab, "probe@example.test", marker="Re: mailpulse probe")["INBOX"]
    with imap(mail_lab, "probe@partner.test") as conn:
        conn.select("INBOX", readonly=True)
        assert [b""] == conn.uid("SEARCH", None, "HEADER", "X-Mailpulse-Probe", "probe=check-auth;")[1]  # type: ignore[arg-type]
