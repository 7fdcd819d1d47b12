"""Minimal SMTP sessions for the traffic driver (stdlib smtplib), one per message or attempt.

Every route is explicit about TLS, authentication and source address, and returns the server's
exact reply, so the report can quote it and tests can find it in the logs.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass

from lab.envfile import LabEnv

TIMEOUT_S = 20.0
_QUEUED_RE = re.compile(r"queued as ([0-9A-Za-z]+)")


@dataclass(frozen=True)
class Reply:
    """The outcome of one SMTP transaction: the first failing reply, or the final DATA reply."""

    stage: str  # connect | auth | mail | rcpt | data
    code: int
    text: str

    @property
    def accepted(self) -> bool:
        return self.stage == "data" and 200 <= self.code < 300

    @property
    def queue_id(self) -> str | None:
        m = _QUEUED_RE.search(self.text)
        return m.group(1) if m else None

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


def _ctx(env: LabEnv, client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=env["LAB_CA_FILE"])
    if client_cert:
        ctx.load_cert_chain(env["LAB_RELAY_CLIENT_CERT"], env["LAB_RELAY_CLIENT_KEY"])
    return ctx


@dataclass(frozen=True)
class Route:
    """How to reach one smtpd of the lab."""

    name: str  # submission | smtps | relay | mx
    port_key: str
    implicit_tls: bool = False
    sasl: bool = False
    client_cert: bool = False
    source: str = "127.0.0.1"
    helo: str = "probe.example.test"


SUBMISSION = Route("submission", "LAB_SUBMISSION_PORT", sasl=True)
SMTPS = Route("smtps", "LAB_SMTPS_PORT", implicit_tls=True, sasl=True)
RELAY = Route("relay", "LAB_RELAY_PORT", client_cert=True)
RELAY_NO_CERT = Route("relay", "LAB_RELAY_PORT")
MX_EXTERNAL = Route("mx", "LAB_MX_PORT", source="127.0.0.3", helo="mail.sender.test")


def open_session(env: LabEnv, route: Route) -> smtplib.SMTP:
    """Connect, TLS (implicit or STARTTLS, never plaintext), EHLO; no AUTH yet."""
    port = int(env[route.port_key])
    host = env["LAB_HOST"]
    src = (route.source, 0)
    conn: smtplib.SMTP
    if route.implicit_tls:
        conn = smtplib.SMTP_SSL(
            host,
            port,
            local_hostname=route.helo,
            timeout=TIMEOUT_S,
            source_address=src,
            context=_ctx(env, route.client_cert),
        )
    else:
        conn = smtplib.SMTP(host, port, local_hostname=route.helo, timeout=TIMEOUT_S, source_address=src)
        conn.starttls(context=_ctx(env, route.client_cert))
    conn.ehlo(route.helo)
    return conn


def auth_plain(conn: smtplib.SMTP, user: str, password: str) -> Reply:
    """Exactly one AUTH PLAIN (smtplib's login() would retry with LOGIN: two log lines per failure)."""
    conn.user, conn.password = user, password
    try:
        code, text = conn.auth("PLAIN", conn.auth_plain, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        err = exc.smtp_error
        failed = err.decode(errors="replace") if isinstance(err, bytes) else str(err)
        return Reply("auth", exc.smtp_code, failed)
    return Reply("auth", code, text.decode(errors="replace"))


def transaction(conn: smtplib.SMTP, mail_from: str, rcpts: list[str], data: bytes) -> Reply:
    """MAIL, RCPT..., DATA; stop at the first refusal and return it."""
    code, text = conn.mail(mail_from)
    if code >= 300:
        conn.rset()
        return Reply("mail", code, text.decode(errors="replace"))
    for rcpt in rcpts:
        code, text = conn.rcpt(rcpt)
        if code >= 300:
            conn.rset()
            return Reply("rcpt", code, text.decode(errors="replace"))
    code, text = conn.data(data)
    return Reply("data", code, text.decode(errors="replace"))


def send(env: LabEnv, route: Route, mail_from: str, rcpts: list[str], data: bytes) -> Reply:
    """One session: connect, TLS, AUTH if the route needs it, one transaction, QUIT."""
    conn = open_session(env, route)
    try:
        if route.sasl:
            reply = auth_plain(conn, env["LAB_SENDER"], env["LAB_PASSWORD"])
            if reply.code != 235:
                return reply
        return transaction(conn, mail_from, rcpts, data)
    finally:
        close(conn)


def close(conn: smtplib.SMTP) -> None:
    """QUIT politely (a bare close logs "lost connection after ..." instead)."""
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()
