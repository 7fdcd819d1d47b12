"""SMTP STARTTLS to an MX: is TLS offered, the certificate's name, trust and expiry, the protocol; and
DANE: do the MX's TLSA records match the certificate it presents.

Python 3.11's ``ssl`` hands over the leaf certificate only (the chain arrives in 3.13), which is all
DANE-EE (usage 3) needs: the leaf, or its SubjectPublicKeyInfo, exact or hashed with SHA-256/512.
DANE-TA (usage 2) needs the chain: it is delegated to Postfix's ``posttls-finger`` when configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass

from mailpulse.exporter.features.posture import der
from mailpulse.exporter.features.posture.result import CheckFailed

MAX_REPLY = 16384
_VERIFY_REASONS = {
    62: "certificate_name",  # X509_V_ERR_HOSTNAME_MISMATCH
    10: "certificate_expired",  # X509_V_ERR_CERT_HAS_EXPIRED
}
OLD_PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1")


@dataclass(frozen=True)
class Session:
    leaf: bytes  # DER
    version: str  # TLSv1.3, TLSv1.2, ...


async def _reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    lines = []
    total = 0
    while True:
        line = await reader.readline()
        total += len(line)
        if not line or total > MAX_REPLY:
            raise CheckFailed("connect", "connection closed or reply too long")
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        lines.append(text[4:])
        if len(text) < 4 or text[3] != "-":
            try:
                return int(text[:3]), lines
            except ValueError as exc:
                raise CheckFailed("connect", "not an SMTP reply") from exc


async def starttls(address: str, port: int, server_name: str, context: ssl.SSLContext, helo: str,
                   timeout: float) -> Session:  # fmt: skip
    """EHLO, STARTTLS, handshake with ``context``; QUIT. Raises :class:`CheckFailed` with an mx_tls reason."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address, port)
            try:
                return await _session(reader, writer, server_name, context, helo)
            finally:
                writer.close()
    except TimeoutError as exc:
        raise CheckFailed("timeout", f"{server_name}: no answer in {timeout:g}s", up=False) from exc
    except ssl.SSLCertVerificationError as exc:
        reason = _VERIFY_REASONS.get(exc.verify_code, "certificate_untrusted")
        raise CheckFailed(reason, f"{server_name}: {exc.verify_message}") from exc
    except ssl.SSLError as exc:
        raise CheckFailed("handshake", f"{server_name}: TLS handshake failed ({exc.reason})") from exc
    except OSError as exc:
        raise CheckFailed("connect", f"{server_name}: {type(exc).__name__}") from exc


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str,
                   context: ssl.SSLContext, helo: str) -> Session:  # fmt: skip
    code, _ = await _reply(reader)
    if code != 220:
        raise CheckFailed("connect", f"{server_name}: greeting {code}")
    writer.write(f"EHLO {helo}\r\n".encode())
    code, lines = await _reply(reader)
    if code != 250:
        raise CheckFailed("connect", f"{server_name}: EHLO answered {code}")
    if not any(line.upper().split(" ")[0] == "STARTTLS" for line in lines):
        raise CheckFailed("no_starttls", f"{server_name} does not offer STARTTLS")
    writer.write(b"STARTTLS\r\n")
    code, _ = await _reply(reader)
    if code != 220:
        raise CheckFailed("no_starttls", f"{server_name}: STARTTLS answered {code}")
    await writer.start_tls(context, server_hostname=server_name)
    sslobj = writer.get_extra_info("ssl_object")
    assert isinstance(sslobj, ssl.SSLObject)
    leaf = sslobj.getpeercert(binary_form=True) or b""
    version = sslobj.version() or "unknown"
    writer.write(b"QUIT\r\n")
    return Session(leaf, version)


def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    # the system's minimum protocol stays: an MX that offers only TLS 1.0/1.1 fails the handshake
    # (reason handshake), as it would for a sending Postfix on the same system
    return ssl.create_default_context(cafile=ca_file)


def insecure_context() -> ssl.SSLContext:
    """For DANE and expiry: the certificate is judged by TLSA or by its dates, not by WebPKI."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class Tlsa:
    usage: int
    selector: int
    mtype: int
    data: bytes


def tlsa_matches(record: Tlsa, leaf: bytes) -> bool:
    """RFC 6698 §2.1 / RFC 7218 for an end-entity record (usage 1 or 3)."""
    if record.selector == 0:
        material = leaf
    elif record.selector == 1:
        material = der.spki(leaf)
    else:
        return False
    if record.mtype == 0:
        return material == record.data
    if record.mtype == 1:
        return hashlib.sha256(material).digest() == record.data
    if record.mtype == 2:
        return hashlib.sha512(material).digest() == record.data
    return False


async def posttls_finger(binary: str, host: str, port: int, timeout: float) -> bool:
    """DANE-TA through ``posttls-finger -c -l dane-only``: True when it verified the chain against the
    TLSA records. It resolves through the system resolver (libc), not the configured one."""
    try:
        proc = await asyncio.create_subprocess_exec(
            binary, "-c", "-l", "dane-only", "-L", "summary", f"[{host}]:{port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    except OSError as exc:
        raise CheckFailed("posttls_finger", f"{binary}: {type(exc).__name__}") from exc
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise CheckFailed("timeout", f"posttls-finger {host}: no result in {timeout:g}s", up=False) from exc
    text = out.decode(errors="replace")
    return "Verified TLS connection established" in text
