"""mailpulse's own DKIM check of the received copy (dkimpy), with keys looked up by dnspython.

Why check ourselves when the receiver already says ``dkim=pass``? To tell "the receiver changed the
message" (their dkim=fail, ours fail too: broken in transit or at source) from "the receiver's checker
is off" (theirs fail, ours pass), and to have a verdict for receivers that write no
Authentication-Results at all.

The keys are resolved *before* dkimpy runs, with dnspython's asyncio resolver and the configured
nameservers and port (the lab's dnsmasq listens on a high port); dkimpy then gets a ``dnsfunc`` that
only reads that cache, so no blocking DNS call ever runs on the event loop.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import dkim
import dns.asyncresolver
import dns.exception
import dns.resolver

from mailpulse.probes.config import DnsConfig
from mailpulse.probes.verdicts import parse_headers, unfold

DKIM_RESULTS = ("pass", "fail", "none", "temperror", "permerror")
_TAG = re.compile(r"(?:^|;)\s*([a-z]+)\s*=\s*([^;]*)")
_quiet = logging.getLogger("mailpulse.dkimpy")  # dkimpy logs every hash at DEBUG; keep it out of ours
_quiet.setLevel(logging.WARNING)


@dataclass(frozen=True)
class DkimCheck:
    result: str  # pass | fail | none (unsigned) | temperror (DNS) | permerror (no key, bad key)
    domain: str | None = None  # d= of the signature that passed (or of the first one)
    selector: str | None = None
    detail: str = ""


def make_resolver(config: DnsConfig) -> dns.asyncresolver.Resolver:
    if config.nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = list(config.nameservers)
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.port = config.port
    resolver.lifetime = config.timeout
    resolver.timeout = config.timeout
    return resolver


class DkimChecker:
    def __init__(self, config: DnsConfig) -> None:
        self.resolver = make_resolver(config)

    async def check(self, raw: bytes) -> DkimCheck:
        sigs = signatures(raw)
        if not sigs:
            return DkimCheck("none", detail="no DKIM-Signature")
        keys: dict[str, bytes | None] = {}
        temp_errors: list[str] = []
        for domain, selector in sigs:
            name = f"{selector}._domainkey.{domain}"
            if name in keys:
                continue
            try:
                keys[name] = await self._txt(name)
            except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
                keys[name] = None
                temp_errors.append(f"{name}: {type(exc).__name__}")

        def dnsfunc(qname: bytes, timeout: int = 5) -> bytes | None:
            return keys.get(qname.decode("ascii", "replace").rstrip("."))

        checker = dkim.DKIM(raw, logger=_quiet, minkey=1024)
        for idx, (domain, selector) in enumerate(sigs):
            try:
                ok = checker.verify(idx=idx, dnsfunc=dnsfunc)
            except dkim.DKIMException:
                ok = False
            if ok:
                return DkimCheck("pass", domain, selector)
        domain, selector = sigs[0]
        if temp_errors:
            return DkimCheck("temperror", domain, selector, "; ".join(temp_errors))
        if all(keys.get(f"{s}._domainkey.{d}") is None for d, s in sigs):
            return DkimCheck("permerror", domain, selector, "no public key in DNS")
        return DkimCheck("fail", domain, selector, "signature does not verify")

    async def _txt(self, name: str) -> bytes | None:
        try:
            answer = await self.resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        for rr in answer:  # one record per selector; a second one would be a DNS mistake
            return b"".join(rr.strings)
        return None


def signatures(raw: bytes) -> list[tuple[str, str]]:
    """(d=, s=) of every DKIM-Signature header, in header order (dkimpy's idx order)."""
    msg = parse_headers(raw)
    out = []
    for value in msg.get_all("DKIM-Signature") or []:
        tags = {k: v.strip() for k, v in _TAG.findall(unfold(str(value)))}
        out.append((tags.get("d", "").replace(" ", "").lower(), tags.get("s", "").replace(" ", "")))
    return out
