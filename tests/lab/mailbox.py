"""Test helpers: send through a lab route, read the copy back over IMAP, check DKIM via lab DNS."""

from __future__ import annotations

import email
import email.message
import imaplib
import ssl
import time
from email.policy import default as default_policy

import dkim
import dns.resolver

from lab.envfile import LabEnv
from lab.traffic import mail, smtp
from lab.traffic.smtp import Reply, Route


def send(
    env: LabEnv, route: Route, rcpt: str, kind: str = "test", *, body_lines: tuple[str, ...] = ()
) -> tuple[str, Reply]:
    """Send one message; return its Message-ID and the final SMTP reply."""
    mid, data = mail.build("pytest", kind, env["LAB_SENDER"], rcpt, body_lines=body_lines)
    return mid, smtp.send(env, route, env["LAB_SENDER"], [rcpt], data)


def imap_connect(env: LabEnv, user: str, starttls: bool = False) -> imaplib.IMAP4:
    ctx = ssl.create_default_context(cafile=env["LAB_CA_FILE"])
    conn: imaplib.IMAP4
    if starttls:
        conn = imaplib.IMAP4(env["LAB_HOST"], int(env["LAB_IMAP_PORT"]), timeout=10)
        conn.starttls(ssl_context=ctx)
    else:
        conn = imaplib.IMAP4_SSL(env["LAB_HOST"], int(env["LAB_IMAPS_PORT"]), ssl_context=ctx, timeout=10)
    conn.login(user, env["LAB_PASSWORD"])
    return conn


def special_use_folder(conn: imaplib.IMAP4, flag: str) -> str:
    """The folder flagged with a SPECIAL-USE attribute (RFC 6154), e.g. \\Junk."""
    typ, lines = conn.list()
    assert typ == "OK"
    for raw in lines:
        line = raw.decode() if isinstance(raw, bytes) else str(raw)
        if flag in line.split(")")[0]:
            return line.rsplit(" ", 1)[1].strip('"')
    raise AssertionError(f"no folder flagged {flag}: {lines}")


def fetch(
    env: LabEnv, user: str, message_id: str, folder: str = "INBOX", *, starttls: bool = False, timeout: float = 20.0
) -> bytes:
    """Poll `folder` of `user` until the message with `message_id` is there; return its bytes."""
    conn = imap_connect(env, user, starttls)
    try:
        deadline = time.monotonic() + timeout
        while True:
            conn.select(special_use_folder(conn, "\\Junk") if folder == "\\Junk" else folder, readonly=True)
            typ, data = conn.search(None, "HEADER", "Message-ID", message_id)
            if typ == "OK" and data[0]:
                num = data[0].split()[-1]
                typ, parts = conn.fetch(num, "(BODY.PEEK[])")
                assert typ == "OK"
                first = parts[0]
                assert isinstance(first, tuple)
                return bytes(first[1])
            if time.monotonic() > deadline:
                raise AssertionError(f"{message_id} not in {user}/{folder} after {timeout:.0f} s")
            time.sleep(0.1)
    finally:
        conn.logout()


def lab_dns_txt(env: LabEnv, name: str) -> str | None:
    """A TXT record from the lab's dnsmasq (chunks joined), or None."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [env["LAB_HOST"]]
    res.port = int(env["LAB_DNS_PORT"])
    res.lifetime = 3.0
    try:
        answer = res.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    return "".join(b.decode() for rr in answer for b in rr.strings)


def dkim_verifies(env: LabEnv, raw: bytes) -> bool:
    """dkimpy verification with the key looked up in the lab DNS (not in a file)."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        txt = lab_dns_txt(env, name.decode().rstrip("."))
        return txt.encode() if txt else None

    return bool(dkim.verify(raw, dnsfunc=dnsfunc))


def parse(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, email.message.EmailMessage)
    return msg
