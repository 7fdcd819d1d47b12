"""An SPF evaluator (RFC 7208) that counts DNS-querying terms and void lookups the way §4.6.4 says.

Counting rules (where checkdmarc has had bugs, #94, #197, #211):

* ``include``, ``a``, ``mx``, ``ptr``, ``exists`` and ``redirect`` each count one lookup, wherever they
  are in the include/redirect tree; ``all``, ``ip4``, ``ip6`` and ``exp`` count none.
* The address lookups an ``mx`` term makes for its MX names, and the forward lookups a ``ptr`` term makes
  for the PTR names, do NOT count toward the 10; instead at most 10 MX names are allowed (more is a
  permerror) and only the first 10 PTR names are used.
* A void lookup is a term whose own query returns NXDOMAIN or no records (the ``include``/``redirect``
  TXT query, the ``a``/``exists`` address query, the ``mx`` MX query). More than 2 is a permerror.

Two modes share one walk: :func:`authorize` evaluates the record for a sending IP (limits enforced, stops
at the first match, like a receiver); :func:`budget` walks it as a client that matches nothing would make
a receiver walk it (the worst case a receiver sees), counting past the limits so the metric shows the
real number. Without a client address, ``a`` queries A (an IPv4 client) and macros use 192.0.2.1.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from mailpulse.exporter.features.posture.dnsq import Answer, DnsError, Resolver, single_record

LOOKUP_LIMIT = 10
VOID_LIMIT = 2
MX_NAME_LIMIT = 10
PTR_NAME_LIMIT = 10
WALK_CAP = 40  # budget mode keeps counting past 10, but a runaway tree stops here
NO_CLIENT = ipaddress.ip_address("192.0.2.1")  # RFC 5737; used only to expand macros in budget mode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_COUNTED = {"include", "a", "mx", "ptr", "exists"}
_MODIFIER_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9_.-]*)=(.*)$")
_MACRO_RE = re.compile(r"%\{([slodiphcrtvSLODIPHCRTV])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-|%")
_CIDR_RE = re.compile(r"^(.*?)(?:/(\d+))?(?://(\d+))?$")


class SpfError(Exception):
    """A permerror: ``reason`` is ``syntax``, ``too_many_lookups``, ``too_many_void_lookups``, ``loop`` or
    ``include_missing``; ``missing``/``multiple`` for the top record."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Term:
    qualifier: str  # + - ~ ?
    name: str  # mechanism or modifier name, lower case
    value: str  # the domain-spec or address (may hold macros)
    cidr4: int | None = None
    cidr6: int | None = None
    modifier: bool = False


@dataclass
class Walk:
    """Counters of one evaluation (shared by the whole include/redirect tree)."""

    client: IPAddress | None
    sender: str
    helo: str
    enforce: bool
    lookups: int = 0
    voids: int = 0
    first_error: SpfError | None = None
    lookup_terms: list[str] = field(default_factory=list)  # "domain: term" for each counted lookup
    void_terms: list[str] = field(default_factory=list)

    def count(self, where: str, term: Term) -> None:
        self.lookups += 1
        self.lookup_terms.append(f"{where}: {term.name}{':' + term.value if term.value else ''}")
        if self.lookups > LOOKUP_LIMIT:
            self.fail(SpfError("too_many_lookups", f"more than {LOOKUP_LIMIT} DNS lookups (at {where})"))
        if self.lookups > WALK_CAP:
            raise SpfError("too_many_lookups", f"stopped counting at {WALK_CAP} lookups")

    def void(self, where: str, term: Term) -> None:
        self.voids += 1
        self.void_terms.append(f"{where}: {term.name}:{term.value}")
        if self.voids > VOID_LIMIT:
            self.fail(SpfError("too_many_void_lookups", f"more than {VOID_LIMIT} void lookups (at {where})"))

    def fail(self, error: SpfError) -> None:
        if self.enforce:
            raise error
        if self.first_error is None:
            self.first_error = error


@dataclass(frozen=True)
class Outcome:
    result: str  # pass fail softfail neutral none permerror temperror
    lookups: int
    voids: int
    error: SpfError | None = None
    lookup_terms: tuple[str, ...] = ()
    void_terms: tuple[str, ...] = ()


_QUALIFIER_RESULT = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


def parse(record: str) -> list[Term]:
    """The terms of ``v=spf1 ...``; raises :class:`SpfError` ``syntax``."""
    words = record.split()
    if not words or words[0].lower() != "v=spf1":
        raise SpfError("syntax", "does not start with v=spf1")
    terms: list[Term] = []
    seen_mods: set[str] = set()
    for raw in words[1:]:
        word = raw
        mod = _MODIFIER_RE.match(word)
        if mod and mod[1].lower() not in _MECHANISMS:
            name = mod[1].lower()
            if name in ("redirect", "exp"):
                if name in seen_mods:
                    raise SpfError("syntax", f"{name}= appears twice")
                seen_mods.add(name)
                _check_macros(mod[2], word)
                if not mod[2]:
                    raise SpfError("syntax", f"{name}= needs a domain")
            terms.append(Term("+", name, mod[2], modifier=True))
            continue
        qualifier = "+"
        if word[0] in "+-~?":
            qualifier, word = word[0], word[1:]
        name, sep, arg = word.partition(":")
        slash = ""
        if not sep and "/" in name:
            name, slash_sep, rest = name.partition("/")
            slash = slash_sep + rest
        name = name.lower()
        if name not in _MECHANISMS:
            raise SpfError("syntax", f"unknown mechanism {name!r}")
        terms.append(_mechanism(qualifier, name, arg + slash, bool(sep)))
    return terms


def _mechanism(qualifier: str, name: str, arg: str, had_colon: bool) -> Term:
    if name == "all":
        if arg or had_colon:
            raise SpfError("syntax", "all takes no argument")
        return Term(qualifier, name, "")
    if name in ("ip4", "ip6"):
        try:
            net = ipaddress.ip_network(arg, strict=False)
        except ValueError as exc:
            raise SpfError("syntax", f"{name}:{arg} is not an address") from exc
        if (name == "ip4") != (net.version == 4):
            raise SpfError("syntax", f"{name}:{arg} has the wrong address family")
        return Term(qualifier, name, arg)
    if name in ("include", "exists") and not arg:
        raise SpfError("syntax", f"{name} needs a domain")
    if had_colon and not arg:
        raise SpfError("syntax", f"{name}: needs a domain after the colon")
    cidr4 = cidr6 = None
    if name in ("a", "mx"):
        m = _CIDR_RE.match(arg)
        assert m is not None
        arg = m[1]
        cidr4 = int(m[2]) if m[2] else None
        cidr6 = int(m[3]) if m[3] else None
        if (cidr4 is not None and cidr4 > 32) or (cidr6 is not None and cidr6 > 128):
            raise SpfError("syntax", f"{name}: prefix length out of range")
    elif "/" in arg and name in ("include", "exists", "ptr"):
        raise SpfError("syntax", f"{name} takes no prefix length")
    _check_macros(arg, name)
    return Term(qualifier, name, arg, cidr4, cidr6)


def _check_macros(value: str, where: str) -> None:
    for m in _MACRO_RE.finditer(value):
        if m[0] == "%":
            raise SpfError("syntax", f"{where}: a lone % must be written %%")


def expand(value: str, walk: Walk, domain: str) -> str:
    """Macro expansion (RFC 7208 §7) for domain-specs."""
    client = walk.client or NO_CLIENT
    local, _, sender_domain = walk.sender.rpartition("@")
    local = local or "postmaster"
    sender_domain = sender_domain or walk.helo
    ip_text = str(client) if client.version == 4 else ".".join(client.exploded.replace(":", ""))
    letters = {"s": f"{local}@{sender_domain}", "l": local, "o": sender_domain, "d": domain, "i": ip_text,
               "p": "unknown", "v": "in-addr" if client.version == 4 else "ip6", "h": walk.helo}  # fmt: skip

    def one(m: re.Match[str]) -> str:
        if m[0] == "%%":
            return "%"
        if m[0] == "%_":
            return " "
        if m[0] == "%-":
            return "%20"
        letter = m[1].lower()
        if letter not in letters:
            raise SpfError("syntax", f"macro %{{{m[1]}}} is only allowed in exp=")
        parts = re.split("[" + re.escape(m[4] or ".") + "]", letters[letter])
        if m[3]:
            parts.reverse()
        if m[2]:
            if int(m[2]) == 0:
                raise SpfError("syntax", "macro digit transformer must not be 0")
            parts = parts[-int(m[2]) :]
        return ".".join(parts)

    return _MACRO_RE.sub(one, value)


async def fetch_record(resolver: Resolver, domain: str) -> str | None:
    """The domain's one SPF record, None without one; :class:`SpfError` ``multiple`` with two."""
    answer = await resolver.query(domain, "TXT")
    records = single_record(answer.texts(), "v=spf1")
    if len(records) > 1:
        raise SpfError("multiple", f"{domain} publishes {len(records)} SPF records")
    return records[0] if records else None


async def budget(resolver: Resolver, domain: str, helo: str = "") -> Outcome:
    """Walk the whole tree as a non-matching client; the top record must exist."""
    walk = Walk(None, f"postmaster@{domain}", helo or domain, enforce=False)
    record = await fetch_record(resolver, domain)
    if record is None:
        raise SpfError("missing", f"{domain} has no SPF record")
    try:
        result = await _check_host(resolver, walk, domain, record, frozenset({domain.lower()}))
    except SpfError as exc:  # loop, cap, syntax deeper in the tree
        walk.fail(exc)
        result = "permerror"
    if walk.first_error is not None:
        result = "permerror"
    return Outcome(result, walk.lookups, walk.voids, walk.first_error, tuple(walk.lookup_terms),
                   tuple(walk.void_terms))  # fmt: skip


async def authorize(resolver: Resolver, domain: str, client: IPAddress, sender: str = "", helo: str = "") -> Outcome:
    """check_host() for one sending IP, as a receiver would run it (limits enforced)."""
    walk = Walk(client, sender or f"postmaster@{domain}", helo or domain, enforce=True)
    try:
        record = await fetch_record(resolver, domain)
        if record is None:
            return Outcome("none", 0, 0)
        result = await _check_host(resolver, walk, domain, record, frozenset({domain.lower()}))
    except SpfError as exc:
        return Outcome("permerror", walk.lookups, walk.voids, exc)
    except DnsError:
        return Outcome("temperror", walk.lookups, walk.voids)
    return Outcome(result, walk.lookups, walk.voids)


async def _check_host(resolver: Resolver, walk: Walk, domain: str, record: str, chain: frozenset[str]) -> str:
    try:
        terms = parse(record)
    except SpfError as exc:
        walk.fail(SpfError("syntax", f"{domain}: {exc.detail}"))
        return "permerror"
    has_all = any(t.name == "all" for t in terms)
    redirect: Term | None = None
    for term in terms:
        if term.modifier:
            if term.name == "redirect":
                redirect = term
            continue
        if term.name in _COUNTED:
            walk.count(domain, term)
        matched = await _matches(resolver, walk, domain, term, chain)
        if matched is None:
            return "permerror"  # the include's error was recorded; budget mode goes on in the caller
        if matched:
            return _QUALIFIER_RESULT[term.qualifier]
    if redirect is not None and not has_all:  # RFC 7208 §6.1: ignored when the record has "all"
        walk.count(domain, redirect)
        target = expand(redirect.value, walk, domain)
        return await _child(resolver, walk, domain, redirect, target, chain, redirect=True)
    return "neutral"


async def _matches(resolver: Resolver, walk: Walk, domain: str, term: Term, chain: frozenset[str]) -> bool | None:
    name = term.name
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        return walk.client is not None and walk.client in ipaddress.ip_network(term.value, strict=False)
    target = expand(term.value, walk, domain) if term.value else domain
    if name == "include":
        result = await _child(resolver, walk, domain, term, target, chain, redirect=False)
        if result == "permerror":
            return None if walk.enforce else False
        return result == "pass"
    if name == "exists":
        answer = await resolver.query(target, "A")
        _void(walk, domain, term, answer)
        return bool(answer.records)
    if name == "a":
        return _in(walk, await _addresses(resolver, walk, domain, term, target, count_void=True), term)
    if name == "mx":
        answer = await resolver.query(target, "MX")
        _void(walk, domain, term, answer)
        names = sorted({str(r.exchange).rstrip(".") for r in answer.records if str(r.exchange) != "."})  # type: ignore[attr-defined]
        if len(names) > MX_NAME_LIMIT:
            walk.fail(SpfError("too_many_lookups", f"{domain}: mx:{target} has {len(names)} MX names (> 10)"))
            return False
        for mx in names:
            if _in(walk, await _addresses(resolver, walk, domain, term, mx, count_void=False), term):
                return True
        return False
    if name == "ptr":
        return await _ptr(resolver, walk, target)
    return False


async def _child(resolver: Resolver, walk: Walk, domain: str, term: Term, target: str, chain: frozenset[str],
                 *, redirect: bool) -> str:  # fmt: skip
    key = target.lower().rstrip(".")
    if key in chain:
        walk.fail(SpfError("loop", f"{domain}: {term.name} {target} loops back"))
        return "permerror"
    answer = await resolver.query(target, "TXT")
    records = single_record(answer.texts(), "v=spf1")
    if not records:
        _void(walk, domain, term, answer)
        walk.fail(SpfError("include_missing", f"{domain}: {term.name} {target} has no SPF record"))
        return "permerror"
    if len(records) > 1:
        walk.fail(SpfError("include_missing", f"{domain}: {term.name} {target} has {len(records)} SPF records"))
        return "permerror"
    result = await _check_host(resolver, walk, target, records[0], chain | {key})
    if redirect and result == "none":
        return "permerror"
    return result


def _void(walk: Walk, domain: str, term: Term, answer: Answer) -> None:
    if answer.empty:
        walk.void(domain, term)


async def _addresses(resolver: Resolver, walk: Walk, domain: str, term: Term, name: str,
                     *, count_void: bool) -> list[IPAddress]:  # fmt: skip
    rdtype = "AAAA" if walk.client is not None and walk.client.version == 6 else "A"
    answer = await resolver.query(name, rdtype)
    if count_void:
        _void(walk, domain, term, answer)
    return [ipaddress.ip_address(r.address) for r in answer.records]  # type: ignore[attr-defined]


def _in(walk: Walk, addresses: list[IPAddress], term: Term) -> bool:
    if walk.client is None:
        return False
    prefix = term.cidr4 if walk.client.version == 4 else term.cidr6
    for address in addresses:
        if address.version != walk.client.version:
            continue
        bits = prefix if prefix is not None else address.max_prefixlen
        if walk.client in ipaddress.ip_network(f"{address}/{bits}", strict=False):
            return True
    return False


async def _ptr(resolver: Resolver, walk: Walk, target: str) -> bool:
    """RFC 7208 §5.5: validated PTR names (first 10) equal to or under ``target``."""
    if walk.client is None:
        return False
    answer = await resolver.query(walk.client.reverse_pointer, "PTR")
    names = [str(r.target).rstrip(".").lower() for r in answer.records][:PTR_NAME_LIMIT]  # type: ignore[attr-defined]
    want = target.lower().rstrip(".")
    for name in names:
        try:
            back = await resolver.query(name, "AAAA" if walk.client.version == 6 else "A")
        except DnsError:
            continue  # §5.5: a failing forward lookup skips that name
        confirmed = any(ipaddress.ip_address(r.address) == walk.client for r in back.records)  # type: ignore[attr-defined]
        if confirmed and (name == want or name.endswith("." + want)):
            return True
    return False
