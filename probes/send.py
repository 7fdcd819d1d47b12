"""Hand a probe to a route's SMTP server with aiosmtplib, and say exactly where it failed if it did.

``tls: implicit`` → ``use_tls=True``; ``tls: starttls`` → ``start_tls=True``, which fails when the server
does not offer STARTTLS (aiosmtplib's default ``None`` would silently continue in plain text: a stripped
STARTTLS must fail the probe). Certificates are always verified, against ``ca_file`` if given; a client
certificate goes into the same SSL context. TLS 1.2 is the minimum.

The steps are driven one by one (connect, auth, MAIL, RCPT, DATA) so a failure names its step; the
time of the 250 after DATA is the start of the delivery latency, and its text carries the queue ID.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass

import aiosmtplib
import structlog

from mailpulse.probes.config import RouteConfig
from mailpulse.probes.credentials import TokenSource
from mailpulse.probes.errors import CredentialError, SendError

log = structlog.get_logger(__name__)

# Postfix/Exim/most: "2.0.0 Ok: queued as 4XyZ12"; Gmail: "2.0.0 OK  1700000000 a1-2b.3 - gsmtp";
# Exchange: "2.6.0 <id> [InternalId=12345, Hostname=...] Queued mail for delivery"
_QUEUE_ID_RES = (
    re.compile(r"queued as ([0-9A-Za-z._-]+)", re.IGNORECASE),
    re.compile(r"OK\s+\d+\s+(\S+)\s+-\s+gsmtp"),
    re.compile(r"InternalId=(\d+)"),
)


@dataclass(frozen=True)
class SendResult:
    accepted_at: float  # wall clock when the server answered 250 to DATA
    queue_id: str | None
    tls_version: str | None  # e.g. "TLSv1.3"
    reply: str
    duration: float  # connect to accepted


def queue_id_of(reply: str) -> str | None:
    for regex in _QUEUE_ID_RES:
        m = regex.search(reply)
        if m:
            return m.group(1)
    return None


def tls_context(ca_file: str | None, client_cert: str | None = None, client_key: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert and client_key:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


class Sender:
    """Sends through one route; the SSL context is built once (loading a CA file costs ~1 MB each time)."""

    def __init__(self, route: RouteConfig, tokens: TokenSource | None = None) -> None:
        self.route = route
        self.tokens = tokens
        self._ctx: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._ctx is None:
            r = self.route
            try:
                self._ctx = tls_context(r.ca_file, r.client_cert, r.client_key)
            except (OSError, ssl.SSLError) as exc:
                raise SendError(f"cannot load the TLS files of route {r.name}: {exc}", reason="tls") from exc
        return self._ctx

    async def send(self, rcpt: str, data: bytes) -> SendResult:
        r = self.route
        smtp = aiosmtplib.SMTP(
            hostname=r.host, port=r.port, use_tls=r.tls == "implicit", start_tls=r.tls == "starttls",
            tls_context=self._context(), timeout=r.timeout, local_hostname=r.helo,
            source_address=(r.source_address, 0) if r.source_address else None,
        )  # fmt: skip
        started = time.monotonic()
        step = "connect"
        try:
            await smtp.connect(timeout=r.connect_timeout)
            tls_version = _tls_version(smtp)
            step = "auth"
            await self._login(smtp)
            step = "mail"
            await smtp.mail(r.mail_from)
            step = "rcpt"
            await smtp.rcpt(rcpt)
            step = "data"
            response = await smtp.data(data)
            accepted_at = time.time()
        except CredentialError as exc:
            raise SendError(str(exc), reason="credentials") from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            reason = classify(exc, step)
            raise SendError(f"{step}: {_describe(exc)}", reason=reason) from exc
        finally:
            await _close(smtp)
        return SendResult(accepted_at, queue_id_of(response.message), tls_version, response.message,
                          time.monotonic() - started)  # fmt: skip

    async def _login(self, smtp: aiosmtplib.SMTP) -> None:
        r = self.route
        if r.oauth2 is not None and self.tokens is not None:
            token = await self.tokens.token()
            try:
                await smtp.auth_xoauth2(r.username or "", token)
            except aiosmtplib.SMTPAuthenticationError:
                self.tokens.invalidate()
                raise
        elif r.password is not None:
            await smtp.login(r.username or "", r.password.value)


def classify(exc: BaseException, step: str) -> str:
    """The bounded reason for an SMTP-side exception raised at ``step``."""
    chain = _chain(exc)
    if any(isinstance(e, TimeoutError | aiosmtplib.SMTPTimeoutError) for e in chain):
        return "timeout"
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain) or "STARTTLS" in str(exc):
        return "tls"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "dns"
    if isinstance(exc, aiosmtplib.SMTPResponseException) and 400 <= exc.code < 600:
        if step == "auth" or isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return "auth"
        return "rejected_4xx" if exc.code < 500 else "rejected_5xx"
    if step == "auth":
        return "auth"  # e.g. "No suitable authentication method found"
    if step == "connect" and any(isinstance(e, OSError) for e in chain):
        return "connect"
    return "protocol"


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


def _tls_version(smtp: aiosmtplib.SMTP) -> str | None:
    obj = smtp.get_transport_info("ssl_object")
    version = obj.version() if obj is not None else None
    return str(version) if version else None


async def _close(smtp: aiosmtplib.SMTP) -> None:
    if not smtp.is_connected:
        return
    try:
        await smtp.quit(timeout=5)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        smtp.close()
