"""DNS block- and allowlists: a curated zone table with each zone's return codes, and one lookup.

Unlike pydnsbl (any answer = listed) every zone says which codes mean a listing and which mean an error:
Spamhaus answers 127.255.255.252 (typo in the query), .254 (query through a public/open resolver) and
.255 (too many queries), and DBL 127.0.1.255 (bad query); those are errors, never listings. An answer
outside 127.0.0.0/8 means the zone is dead or wildcarded; a code the table does not know is reported as
``unknown_code``, not as a listing. Each zone also names a test point that must be listed (RFC 5782 §5:
127.0.0.2 for IP zones): a zone that does not list it is dead or refusing us, and says so.

Spamhaus DQS: with a key, the public Spamhaus zones are queried as ``<key>.zen.dq.spamhaus.net`` etc.;
the key never appears in labels or logs (the zone's name does).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from mailpulse.exporter.features.posture.dnsq import Resolver

_SPAMHAUS_ERRORS: Final = {"127.255.255.252": "typo", "127.255.255.254": "public_resolver",
                           "127.255.255.255": "over_limit"}  # fmt: skip


@dataclass(frozen=True)
class Zone:
    name: str  # label-safe, the `zone` label
    zone: str  # the DNS suffix queried
    kind: str = "ip"  # ip | domain
    list_type: str = "block"  # block | allow
    listed: tuple[tuple[str, str], ...] = (("127.0.0.2", "listed"),)  # code, meaning
    listed_ranges: tuple[str, ...] = ()  # networks whose every address is a listing (DNSWL's 127.0.x.y)
    errors: tuple[tuple[str, str], ...] = ()  # code, error class
    test_point: str = "127.0.0.2"
    dqs_zone: str = ""  # Spamhaus DQS suffix (after the key)

    def meaning(self, code: str) -> tuple[str, str]:
        """("listed", meaning) | ("error", class) | ("unknown", "")."""
        errors = dict(self.errors)
        if code in errors:
            return "error", errors[code]
        listed = dict(self.listed)
        if code in listed:
            return "listed", listed[code]
        try:
            address = ipaddress.ip_address(code)
        except ValueError:
            return "error", "bad_answer"
        if any(address in ipaddress.ip_network(net) for net in self.listed_ranges):
            return "listed", "listed"
        if address not in ipaddress.ip_network("127.0.0.0/8"):
            return "error", "not_loopback"  # a wildcard or a parked domain: the zone is dead
        return "unknown", ""

    def query_name(self, subject: str, dqs_key: str | None) -> str:
        suffix = f"{dqs_key}.{self.dqs_zone}" if dqs_key and self.dqs_zone else self.zone
        return f"{subject}.{suffix}"


_SBL = (("127.0.0.2", "sbl"), ("127.0.0.3", "css"), ("127.0.0.4", "xbl"), ("127.0.0.5", "xbl"), ("127.0.0.6", "xbl"),
        ("127.0.0.7", "xbl"), ("127.0.0.9", "drop"), ("127.0.0.10", "pbl"), ("127.0.0.11", "pbl"))  # fmt: skip
_DBL = tuple((f"127.0.1.{n}", m) for n, m in ((2, "spam"), (4, "phish"), (5, "malware"), (6, "botnet_cc"),
             (102, "abused_spam"), (103, "abused_redirector"), (104, "abused_phish"), (105, "abused_malware"),
             (106, "abused_botnet_cc")))  # fmt: skip

# The curated default table (checked against the operators' documentation; dead zones such as
# dnsbl.sorbs.net, *.msrbl.net and five-ten-sg.com, still in pydnsbl's list, are left out).
DEFAULT_ZONES: Final = MappingProxyType({z.name: z for z in (
    Zone("spamhaus-zen", "zen.spamhaus.org", listed=_SBL, errors=tuple(_SPAMHAUS_ERRORS.items()),
         dqs_zone="zen.dq.spamhaus.net"),
    Zone("spamhaus-dbl", "dbl.spamhaus.org", kind="domain", listed=_DBL,
         errors=(("127.0.1.255", "bad_query"), *_SPAMHAUS_ERRORS.items()), test_point="dbltest.com",
         dqs_zone="dbl.dq.spamhaus.net"),
    Zone("spamcop", "bl.spamcop.net"),
    Zone("mailspike", "bl.mailspike.net", listed=(("127.0.0.2", "listed"), ("127.0.0.10", "worst"),
         ("127.0.0.11", "very_bad"), ("127.0.0.12", "bad"), ("127.0.0.13", "suspicious"))),
    Zone("psbl", "psbl.surriel.com"),
    Zone("barracuda", "b.barracudacentral.org"),
    Zone("dnswl", "list.dnswl.org", list_type="allow", listed=(), listed_ranges=("127.0.0.0/16",),
         errors=(("127.0.0.255", "over_limit"),)),
)})  # fmt: skip


@dataclass
class Lookup:
    listed: bool = False
    meanings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # error classes
    unknown: list[str] = field(default_factory=list)  # codes the table does not know (details only)


def subject_name(subject: str, kind: str) -> str:
    """The query label for an IP (reversed nibbles/octets) or a domain (as is)."""
    if kind == "domain":
        return subject.rstrip(".")
    address = ipaddress.ip_address(subject)
    return address.reverse_pointer.rsplit(".", 2)[0]  # drop in-addr.arpa / ip6.arpa


async def lookup(resolver: Resolver, zone: Zone, subject: str, dqs_key: str | None) -> Lookup:
    answer = await resolver.query(zone.query_name(subject_name(subject, zone.kind), dqs_key), "A")
    out = Lookup()
    for rdata in answer.records:
        code = str(rdata.address)  # type: ignore[attr-defined]
        verdict, meaning = zone.meaning(code)
        if verdict == "listed":
            out.listed = True
            out.meanings.append(meaning)
        elif verdict == "error":
            out.errors.append(meaning)
        else:
            out.unknown.append(code)
    return out
