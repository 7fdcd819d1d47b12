"""DNS queries with a time limit each, the AD bit kept, and failures turned into bounded reasons.

dnspython's stub resolver hides the AD flag and retries on its own schedule; posture needs both the
flag (DANE is only as good as the validation behind it) and a hard per-query limit, so this sends the
query itself (``dns.asyncquery``) to each configured resolver in turn, UDP with a TCP retry when the
answer is truncated. NXDOMAIN and NODATA are answers (SPF counts them as void lookups); SERVFAIL,
REFUSED and silence are errors, raised as :class:`DnsError` with a reason from ``ERROR_REASONS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from dns.rdata import Rdata

from mailpulse.exporter.features.posture.result import CheckFailed


class DnsError(CheckFailed):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail, up=False)


@dataclass(frozen=True)
class Answer:
    name: str
    rdtype: str
    rcode: int
    records: tuple[Rdata, ...]
    authenticated: bool  # the AD bit: a validating resolver checked the DNSSEC chain

    @property
    def nxdomain(self) -> bool:
        return self.rcode == dns.rcode.NXDOMAIN

    @property
    def empty(self) -> bool:
        """No records of the type: NXDOMAIN or NODATA (RFC 7208 §4.6.4 calls both a void lookup)."""
        return not self.records

    def texts(self) -> list[str]:
        """TXT records as strings, each one's character-strings joined (RFC 7208 §3.3)."""
        out = []
        for rdata in self.records:
            strings = getattr(rdata, "strings", None)
            if strings is not None:
                out.append(b"".join(strings).decode("utf-8", errors="replace"))
        return out


CACHE_SECONDS = 10.0  # answers shared by checks running within this window (the same include, MX, zone test point)
CACHE_MAX = 50_000


@dataclass
class _Cache:
    """Answers (and queries in flight) by (name, type) for a few seconds: a thousand domains that include
    the same SPF record, or share an MX, ask the resolver once. Failures are not kept."""

    entries: dict[tuple[str, str], tuple[float, asyncio.Future[Answer]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolver:
    """Where queries go: resolver addresses (a validating one for DANE), their port, a per-query limit."""

    nameservers: tuple[str, ...]
    port: int = 53
    timeout: float = 3.0
    cache_seconds: float = CACHE_SECONDS
    _cache: _Cache = field(default_factory=_Cache, compare=False, repr=False)

    async def query(self, name: str, rdtype: str) -> Answer:
        if self.cache_seconds <= 0:
            return await self._query(name, rdtype)
        loop = asyncio.get_running_loop()
        key = (name.lower().rstrip("."), rdtype)
        now = loop.time()
        entry = self._cache.entries.get(key)
        if entry is not None and entry[0] > now and entry[1].get_loop() is loop:
            try:
                return await asyncio.shield(entry[1])
            except asyncio.CancelledError:
                if not entry[1].cancelled():
                    raise  # this task itself is being cancelled
            return await self._query(name, rdtype)  # the task that asked first was cancelled: ask again
        if len(self._cache.entries) >= CACHE_MAX:
            self._cache.entries = {k: e for k, e in self._cache.entries.items() if e[0] > now}
            if len(self._cache.entries) >= CACHE_MAX:
                self._cache.entries.clear()
        future: asyncio.Future[Answer] = loop.create_future()
        self._cache.entries[key] = (now + self.cache_seconds, future)
        try:
            answer = await self._query(name, rdtype)
        except BaseException as exc:
            self._cache.entries.pop(key, None)
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            else:
                future.cancel()
            raise
        future.set_result(answer)
        return answer

    async def _query(self, name: str, rdtype: str) -> Answer:
        qname = dns.name.from_text(name)
        request = dns.message.make_query(qname, dns.rdatatype.from_text(rdtype), use_edns=0, payload=1232)
        request.flags |= dns.flags.AD  # RFC 6840 §5.7: ask for the AD bit without DO
        last: DnsError | None = None
        for server in self.nameservers:
            try:
                response = await self._send(request, server)
            except DnsError as exc:
                last = exc
                continue
            rcode = response.rcode()
            if rcode == dns.rcode.SERVFAIL:
                last = DnsError("dns_servfail", f"{name} {rdtype}: SERVFAIL")
                continue
            if rcode == dns.rcode.REFUSED:
                last = DnsError("dns_refused", f"{name} {rdtype}: REFUSED")
                continue
            if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                last = DnsError("dns_error", f"{name} {rdtype}: {dns.rcode.to_text(rcode)}")
                continue
            wanted = dns.rdatatype.from_text(rdtype)
            records: list[Rdata] = []
            for rrset in response.answer:
                if rrset.rdtype == wanted:
                    records.extend(rrset)
            return Answer(name, rdtype, rcode, tuple(records), bool(response.flags & dns.flags.AD))
        assert last is not None, "no nameservers configured"
        raise last

    async def _send(self, request: dns.message.Message, server: str) -> dns.message.Message:
        try:
            async with asyncio.timeout(self.timeout):
                response = await dns.asyncquery.udp(request, server, port=self.port, timeout=self.timeout)
                if response.flags & dns.flags.TC:
                    response = await dns.asyncquery.tcp(request, server, port=self.port, timeout=self.timeout)
                return response
        except (TimeoutError, dns.exception.Timeout) as exc:
            raise DnsError("dns_timeout", f"{request.question[0].name} via {server}: no answer in "
                           f"{self.timeout:g}s") from exc  # fmt: skip
        except (OSError, dns.exception.DNSException) as exc:
            raise DnsError("dns_error", f"{request.question[0].name} via {server}: {type(exc).__name__}") from exc


def single_record(texts: Sequence[str], prefix: str) -> list[str]:
    """The TXT strings that start with ``prefix`` (case-insensitive), e.g. ``v=spf1``."""
    low = prefix.lower()
    return [t for t in texts if t.lower().startswith(low) and (len(t) == len(low) or t[len(low)] in " ;\t")]
