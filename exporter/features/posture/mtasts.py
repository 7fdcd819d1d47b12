"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460).

The policy is fetched the way a sender does: ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` with a
certificate valid for that name (against a configurable CA bundle), no redirects (§3.3), at most 64 KiB,
the host's address from the configured resolver (not the system one). HTTP/1.1 is spoken directly over
``asyncio`` streams: one GET needs no HTTP library.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field

from mailpulse.exporter.features.posture.dnsq import Resolver, single_record
from mailpulse.exporter.features.posture.result import CheckFailed

MAX_POLICY = 65536
MAX_AGE_LIMIT = 31557600  # RFC 8461 §3.2
_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")


@dataclass
class StsPolicy:
    mode: str
    max_age: int
    mx: list[str] = field(default_factory=list)


def parse_txt(text: str) -> str:
    """The ``id`` of a ``v=STSv1; id=...`` record."""
    tags = _tags(text)
    if tags.get("v") != "STSv1":
        raise CheckFailed("syntax", "must start with v=STSv1")
    ident = tags.get("id", "")
    if not _ID_RE.match(ident):
        raise CheckFailed("syntax", "id= must be 1-32 letters or digits")
    return ident


def _tags(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out.setdefault(name.strip(), value.strip())
    return out


def parse_policy(body: str) -> StsPolicy:
    fields: dict[str, list[str]] = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise CheckFailed("policy_syntax", "a line is not key: value")
        fields.setdefault(key.strip(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise CheckFailed("policy_syntax", "version must be STSv1")
    mode = (fields.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        raise CheckFailed("policy_syntax", "mode must be enforce, testing or none")
    age = (fields.get("max_age") or [""])[0]
    if not age.isdigit() or int(age) > MAX_AGE_LIMIT:
        raise CheckFailed("policy_syntax", f"max_age must be 0..{MAX_AGE_LIMIT}")
    mx = fields.get("mx", [])
    if mode != "none" and not mx:
        raise CheckFailed("policy_syntax", "an enforce or testing policy needs mx lines")
    return StsPolicy(mode, int(age), mx)


def covers(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: exact, or ``*.`` matching exactly one leftmost label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


async def lookup_id(resolver: Resolver, domain: str) -> str:
    answer = await resolver.query(f"_mta-sts.{domain}", "TXT")
    records = single_record(answer.texts(), "v=STSv1")
    if not records:
        raise CheckFailed("missing", f"no MTA-STS record at _mta-sts.{domain}")
    if len(records) > 1:
        raise CheckFailed("multiple", f"_mta-sts.{domain} has {len(records)} records")
    return parse_txt(records[0])


async def fetch_policy(resolver: Resolver, domain: str, context: ssl.SSLContext, port: int, timeout: float) -> str:
    host = f"mta-sts.{domain}"
    addresses = await resolver.query(host, "A")
    if not addresses.records:
        raise CheckFailed("fetch_failed", f"{host} has no address")
    address = str(addresses.records[0].address)  # type: ignore[attr-defined]
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address, port, ssl=context, server_hostname=host)
            try:
                writer.write(f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                             "User-Agent: mailpulse\r\n\r\n".encode())  # fmt: skip
                raw = await reader.read(MAX_POLICY + 4096)
            finally:
                writer.close()
    except ssl.SSLCertVerificationError as exc:
        raise CheckFailed("certificate", f"{host}: {exc.verify_message}") from exc
    except TimeoutError as exc:
        raise CheckFailed("fetch_failed", f"{host}: no answer in {timeout:g}s") from exc
    except (OSError, ssl.SSLError) as exc:
        raise CheckFailed("fetch_failed", f"{host}: {type(exc).__name__}") from exc
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        code = status[1].decode(errors="replace") if len(status) > 1 else "?"
        raise CheckFailed("fetch_failed", f"{host}: HTTP status {code} (redirects are not followed)")
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    if len(body) > MAX_POLICY:
        raise CheckFailed("policy_syntax", "policy larger than 64 KiB")
    return body.decode("utf-8", errors="replace")


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


async def lookup_tlsrpt(resolver: Resolver, domain: str) -> list[str]:
    """The ``rua`` URIs of ``_smtp._tls.<domain>``."""
    answer = await resolver.query(f"_smtp._tls.{domain}", "TXT")
    records = single_record(answer.texts(), "v=TLSRPTv1")
    if not records:
        raise CheckFailed("missing", f"no TLS-RPT record at _smtp._tls.{domain}")
    if len(records) > 1:
        raise CheckFailed("multiple", f"_smtp._tls.{domain} has {len(records)} records")
    rua = _tags(records[0]).get("rua", "")
    uris = [u.strip() for u in rua.split(",") if u.strip()]
    if not uris or not all(u.startswith(("mailto:", "https://")) for u in uris):
        raise CheckFailed("syntax", "rua= needs mailto: or https: URIs")
    return uris
