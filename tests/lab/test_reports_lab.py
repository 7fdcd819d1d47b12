"""Reports as real mail: sent through the lab MX (smtplib, from the lab's "internet" address) to the lab's
postmaster@ mailbox in Dovecot, picked up by `mailpulse run` over IMAP IDLE, counted, moved to the processed
folder (or, without a usable report, the failed folder); after a restart, the same mails put back into the
INBOX count nothing again (the de-duplication memory in state_dir)."""

from __future__ import annotations

import imaplib
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lab.envfile import LabEnv
from lab.layout import POSTMASTER
from tests.helpers import free_port, scrape, value, wait_for
from tests.lab.reports_mail import BAD_MAIL, EML, FAILED, OWN, PROCESSED, mailbox, send_all

pytestmark = [pytest.mark.lab]
REPO = Path(__file__).resolve().parents[2]
GOOD = EML


def imap(env: LabEnv) -> imaplib.IMAP4_SSL:
    ctx = ssl.create_default_context(cafile=env["LAB_CA_FILE"])
    conn = imaplib.IMAP4_SSL(env["LAB_HOST"], int(env["LAB_IMAPS_PORT"]), ssl_context=ctx, timeout=10)
    conn.login(POSTMASTER, env["LAB_PASSWORD"])
    return conn


def count(conn: imaplib.IMAP4, folder: str) -> int:
    typ, data = conn.select(f'"{folder}"', readonly=True)
    return int(data[0] or 0) if typ == "OK" else -1


def empty(conn: imaplib.IMAP4, folder: str) -> None:
    typ, data = conn.select(f'"{folder}"')
    if typ == "OK" and int(data[0] or 0):
        conn.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()


def start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert 0 == proc.returncode, err[-2000:]
    return err


@pytest.mark.timeout(150)
def test_reports_over_imap_idle_are_counted_moved_and_not_counted_twice(mail_lab: LabEnv, tmp_path: Path) -> None:
    env = mail_lab
    conn = imap(env)
    for folder in ("INBOX", PROCESSED, FAILED):
        empty(conn, folder)
    port = free_port()
    config = tmp_path / "mailpulse.yaml"
    config.write_text(yaml.safe_dump({
        "log": {"level": "info", "format": "json"}, "state_dir": str(tmp_path / "state"),
        "http": {"listen": f"127.0.0.1:{port}"},
        "reports": {"domains": ["example.com"], "authorized_networks": ["192.0.2.0/24"],
                    "new_series_delay": "0s", "mailboxes": [mailbox(env)]},
    }))  # fmt: skip
    config.chmod(0o600)
    proc = start(config)
    try:
        wait_for(lambda: value(scrape(port), "mailpulse_reports_mailbox_up", mailbox="rua") == 1, 30)
        time.sleep(0.5)  # in IDLE by now: what follows arrives as a push, not at a start-up scan
        send_all(env, [*((n, (OWN / n).read_bytes()) for n in GOOD), ("bad", BAD_MAIL)])

        def moved() -> bool:
            s = scrape(port)
            return (value(s, "mailpulse_reports_mails_total", outcome="processed") == len(GOOD)
                    and value(s, "mailpulse_reports_mails_total", outcome="failed") == 1)  # fmt: skip

        wait_for(moved, 40)
        s = scrape(port)
        assert 22 == value(s, "mailpulse_dmarc_messages_total")
        assert 21 == value(s, "mailpulse_dmarc_messages_total", reporter="microsoft", source="authorized")
        assert 900 == value(
            s, "mailpulse_tlsrpt_sessions_total", reporter="google", policy_type="sts", result="success"
        )
        assert 1 == value(s, "mailpulse_arf_complaints_total", reporter="comcast", feedback_type="abuse")
        assert 1 == value(s, "mailpulse_reports_rejected_total", reason="not_a_report")
        assert (0, len(GOOD), 1) == (count(conn, "INBOX"), count(conn, PROCESSED), count(conn, FAILED))
    finally:
        stop(proc)
    assert (tmp_path / "state" / "reports-seen.json").exists()

    # a restart, and every processed mail back in the INBOX (a re-read mailbox): nothing counts again
    conn.select(f'"{PROCESSED}"')
    typ, fetched = conn.fetch("1:*", "(BODY.PEEK[])")
    assert "OK" == typ
    for item in fetched:
        if isinstance(item, tuple):
            conn.append("INBOX", None, None, item[1])
    empty(conn, PROCESSED)
    proc = start(config)
    try:
        wait_for(lambda: value(scrape(port), "mailpulse_reports_mails_total", outcome="processed") == len(GOOD), 40)
        s = scrape(port)
        assert 0 == value(s, "mailpulse_reports_ingested_total")
        assert len(GOOD) == value(s, "mailpulse_reports_duplicates_total")
        assert 0 == value(s, "mailpulse_dmarc_messages_total")
        assert (0, len(GOOD)) == (count(conn, "INBOX"), count(conn, PROCESSED))
    finally:
        stop(proc)
        conn.logout()


@pytest.mark.timeout(90)
def test_starttls_polling_mailbox_and_an_xoauth2_mailbox_the_server_refuses(mail_lab: LabEnv, tmp_path: Path) -> None:
    """A mailbox over STARTTLS (port 143) in poll mode ingests and moves; one with an XOAUTH2 token (the lab's
    Dovecot has no OAuth2 backend, so it refuses the token) is down with reason imap_auth, and /health says so."""
    import json
    import urllib.error
    import urllib.request

    env = mail_lab
    conn = imap(env)
    for folder in ("INBOX", PROCESSED, FAILED):
        empty(conn, folder)
    token = tmp_path / "token"
    token.write_text("not-a-valid-token\n")
    token.chmod(0o600)
    port = free_port()
    config = tmp_path / "mailpulse.yaml"
    xo = {k: v for k, v in mailbox(env, name="xo").items() if k != "password_file"}
    config.write_text(yaml.safe_dump({
        "log": {"level": "info", "format": "json"}, "state_dir": str(tmp_path / "state"),
        "http": {"listen": f"127.0.0.1:{port}"},
        "reports": {"new_series_delay": "0s", "mailboxes": [
            mailbox(env, name="plain143", port=int(env["LAB_IMAP_PORT"]), tls="starttls", watch="poll",
                    poll_interval="1s"),
            {**xo, "xoauth2": {"token_file": str(token)}}]},
    }))  # fmt: skip
    config.chmod(0o600)
    proc = start(config)
    try:
        wait_for(lambda: value(scrape(port), "mailpulse_reports_mailbox_up", mailbox="plain143") == 1, 30)
        send_all(env, [("arf", (OWN / "arf-yahoo.eml").read_bytes())])
        wait_for(lambda: value(scrape(port), "mailpulse_reports_mails_total", mailbox="plain143") == 1, 30)
        s = scrape(port)
        assert 1 == value(s, "mailpulse_arf_complaints_total", reporter="yahoo", feedback_type="abuse")
        assert 0 == value(s, "mailpulse_reports_mailbox_up", mailbox="xo")
        assert value(s, "mailpulse_reports_mailbox_errors_total", mailbox="xo", reason="imap_auth") >= 1
        with pytest.raises(urllib.error.HTTPError) as info:  # 503: degraded
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        assert 503 == info.value.code
        health = json.loads(info.value.read())
        assert "imap_auth" in json.dumps(health["reports"])
        assert (0, 1) == (count(conn, "INBOX"), count(conn, PROCESSED))
    finally:
        err = stop(proc)
        conn.logout()
    assert "not-a-valid-token" not in err
