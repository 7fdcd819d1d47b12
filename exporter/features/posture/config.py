"""The ``posture:`` section: domains (with DKIM selectors, MX hosts, expectations), sending hosts,
blocklist zones, the resolver, and each check's interval and time limit."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from mailpulse.exporter.configtools import NAME_RE, Node, Secret
from mailpulse.exporter.features.posture.dnsbl import DEFAULT_ZONES, Zone
from mailpulse.exporter.features.posture.metrics import ZONE_ERROR_CLASSES
from mailpulse.exporter.features.posture.result import CHECKS

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
SELECTOR_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$")
DEFAULT_INTERVALS = {"spf": 3600.0, "dkim": 3600.0, "dmarc": 3600.0, "mta_sts": 3600.0, "tlsrpt": 3600.0,
                     "mx_tls": 3600.0, "dane": 3600.0, "rdns": 3600.0, "dnsbl": 900.0}  # fmt: skip
DEFAULT_ZONE_NAMES = ("spamhaus-zen", "spamhaus-dbl", "spamcop", "mailspike", "psbl")
MAX_MX = 10  # discovered MX hosts per domain (labels stay bounded)

KEY_DOCS: dict[str, str] = {
    "posture": "Deliverability posture: SPF, DKIM, DMARC, MTA-STS, TLS-RPT, MX TLS, DANE, reverse DNS and "
    "blocklists of your domains and sending hosts, checked on a schedule; the guide is "
    "[posture.md](posture.md). Absent: no checks.",
    "posture.resolvers": "Resolver addresses (tried in order). For DANE use a validating resolver (the AD bit "
    "says an answer was DNSSEC-validated); for blocklists not a public one (Spamhaus refuses those).",
    "posture.resolver_port": "Their port.",
    "posture.dns_timeout": "Time limit of each DNS query.",
    "posture.concurrency": "Checks running at once per lane (the domain checks share one lane, each blocklist "
    "zone has its own, so a zone that never answers cannot hold up the others).",
    "posture.ca_file": "CA bundle (PEM) for MTA-STS policy servers and MX certificates; default: the system store.",
    "posture.helo": "The EHLO name mailpulse uses when it connects to an MX.",
    "posture.smtp_port": "The port MX hosts are connected to (25; another only for tests). TLSA is always "
    "looked up at `_25._tcp`.",
    "posture.https_port": "The port of MTA-STS policy servers (443; another only for tests).",
    "posture.posttls_finger": "Path of Postfix's `posttls-finger`, used for DANE-TA (usage 2) records; none: "
    "those are reported `unusable_tlsa` when no DANE-EE record matches.",
    "posture.cert_warning": "An MX certificate with less time left fails `mx_tls` with `certificate_expiring`.",
    "posture.min_rsa_bits": "A DKIM RSA key shorter than this fails with `weak_key` (RFC 8301: 1024).",
    "posture.checks": "Per check (`spf`, `dkim`, `dmarc`, `mta_sts`, `tlsrpt`, `mx_tls`, `dane`, `rdns`, "
    "`dnsbl`): `enabled`, `interval`, `timeout`.",
    **{
        k: v
        for check in CHECKS
        for k, v in (
            (f"posture.checks.{check}", f"The `{check}` check ([posture.md](posture.md#{check.replace('_', '-')}))."),
            (f"posture.checks.{check}.enabled", "Run it."),
            (f"posture.checks.{check}.interval", "How often (each target on its own schedule)."),
            (f"posture.checks.{check}.timeout", "Time limit of one run for one target."),
        )
    },
    "posture.domains": "Your mail domains.",
    "posture.domains[].name": "The domain; the `domain` label.",
    "posture.domains[].dkim": "DKIM selectors to check.",
    "posture.domains[].dkim[].selector": "The selector; the `selector` label.",
    "posture.domains[].dkim[].key_file": "The signer's private key (OpenDKIM or rspamd, PEM or rspamd's base64 "
    "ed25519): the published key must be its public half.",
    "posture.domains[].mx": "MX hosts to check; empty: the domain's MX records (at most 10).",
    "posture.domains[].senders": "Names of `senders` whose IPs SPF must authorize; default: all.",
    "posture.domains[].mta_sts": "Expect MTA-STS and TLS-RPT (false: skip both for this domain).",
    "posture.domains[].dane": "Expect DANE (TLSA records for each MX).",
    "posture.domains[].dnsbl": "Look the domain up in the domain blocklists.",
    "posture.senders": "Your sending hosts.",
    "posture.senders[].name": "Unique; the `ip` label.",
    "posture.senders[].ip": "Its address (give `ip` or `host`).",
    "posture.senders[].host": "A host name whose A records are its addresses.",
    "posture.senders[].helo": "The name it says in HELO: must be a forward-confirmed PTR name of its address.",
    "posture.dnsbl": "Blocklist and allowlist zones.",
    "posture.dnsbl.zones": "Names from the built-in table ([posture.md](posture.md#dnsbl)).",
    "posture.dnsbl.custom": "Zones of your own.",
    "posture.dnsbl.custom[].name": "Unique; the `zone` label.",
    "posture.dnsbl.custom[].zone": "The DNS suffix.",
    "posture.dnsbl.custom[].kind": "`ip` or `domain`.",
    "posture.dnsbl.custom[].type": "`block` or `allow`.",
    "posture.dnsbl.custom[].listed": "Return codes that mean listed, with their meaning.",
    "posture.dnsbl.custom[].errors": "Return codes that mean an error, with a class: `typo`, `public_resolver`, "
    "`over_limit`, `bad_query` or `other` (the `class` label).",
    "posture.dnsbl.custom[].test_point": "A name the zone must always list (RFC 5782 §5).",
    "posture.dnsbl.dqs_key": "Spamhaus DQS key (`dqs_key_file` or `dqs_key_env`): the Spamhaus zones are then "
    "queried through DQS.",
}


@dataclass(frozen=True)
class CheckSchedule:
    enabled: bool
    interval: float
    timeout: float


@dataclass(frozen=True)
class Selector:
    selector: str
    key_file: str | None


@dataclass(frozen=True)
class Domain:
    name: str
    dkim: tuple[Selector, ...] = ()
    mx: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    mta_sts: bool = True
    dane: bool = False
    dnsbl: bool = True


@dataclass(frozen=True)
class Sender:
    name: str
    ip: str | None
    host: str | None
    helo: str | None


@dataclass(frozen=True)
class PostureConfig:
    resolvers: tuple[str, ...]
    resolver_port: int = 53
    dns_timeout: float = 3.0
    concurrency: int = 32
    ca_file: str | None = None
    helo: str = "mailpulse.invalid"
    smtp_port: int = 25
    https_port: int = 443
    posttls_finger: str | None = None
    cert_warning: float = 14 * 86400.0
    min_rsa_bits: int = 1024
    checks: dict[str, CheckSchedule] = field(default_factory=dict)
    domains: tuple[Domain, ...] = ()
    senders: tuple[Sender, ...] = ()
    zones: tuple[Zone, ...] = ()
    dqs_key: Secret | None = None


def parse_posture(node: Node) -> PostureConfig:
    resolvers = tuple(node.str_list("resolvers", ("127.0.0.1",)))
    for i, address in enumerate(resolvers):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            node.problem(f"{address!r} is not an IP address", f"resolvers[{i}]")
    if not resolvers:
        node.problem("needs at least one address", "resolvers")
    checks_node = node.child("checks")
    checks = {}
    for check in CHECKS:
        c = checks_node.child(check)
        checks[check] = CheckSchedule(c.boolean("enabled", True), c.duration("interval", DEFAULT_INTERVALS[check],
                                      minimum=1.0), c.duration("timeout", 60.0, minimum=0.1))  # fmt: skip
        c.finish()
    checks_node.finish()
    domains = node.list_of("domains", _domain)
    senders = node.list_of("senders", _sender)
    _unique(node, "domains", [d.name for d in domains])
    _unique(node, "senders", [s.name for s in senders])
    known = {s.name for s in senders}
    for i, domain in enumerate(domains):
        for name in domain.senders or ():
            if name not in known:
                node.problem(f"unknown sender {name!r}", f"domains[{i}].senders")
    zones, dqs_key = _dnsbl(node.child("dnsbl"))
    return PostureConfig(
        resolvers=resolvers, resolver_port=node.integer("resolver_port", 53, minimum=1, maximum=65535),
        dns_timeout=node.duration("dns_timeout", 3.0, minimum=0.05),
        concurrency=node.integer("concurrency", 32, minimum=1, maximum=1024),
        ca_file=node.path_str("ca_file", None, must_exist=True), helo=node.string("helo", "mailpulse.invalid"),
        smtp_port=node.integer("smtp_port", 25, minimum=1, maximum=65535),
        https_port=node.integer("https_port", 443, minimum=1, maximum=65535),
        posttls_finger=node.path_str("posttls_finger", None, must_exist=True),
        cert_warning=node.duration("cert_warning", 14 * 86400.0), min_rsa_bits=node.integer("min_rsa_bits", 1024),
        checks=checks, domains=tuple(domains), senders=tuple(senders), zones=zones, dqs_key=dqs_key,
    )  # fmt: skip


def _domain(node: Node) -> Domain:
    name = node.string("name", pattern=DOMAIN_RE)
    dkim = tuple(node.list_of("dkim", _selector))
    mx = node.str_list("mx")
    for i, host in enumerate(mx):
        if not DOMAIN_RE.match(host):
            node.problem(f"{host!r} is not a host name", f"mx[{i}]")
    senders = node.str_list("senders", None)
    return Domain(name, dkim, tuple(mx), tuple(senders) if senders is not None else None,
                  node.boolean("mta_sts", True), node.boolean("dane", False), node.boolean("dnsbl", True))  # fmt: skip


def _selector(node: Node) -> Selector:
    return Selector(node.string("selector", pattern=SELECTOR_RE), node.path_str("key_file", None, must_exist=True))


def _sender(node: Node) -> Sender:
    name = node.string("name", pattern=NAME_RE)
    ip = node.string("ip", None)
    host = node.string("host", None)
    if (ip is None) == (host is None):
        node.problem("give exactly one of ip and host", "ip")
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            node.problem(f"{ip!r} is not an IP address", "ip")
    return Sender(name, ip, host, node.string("helo", None))


def _dnsbl(node: Node) -> tuple[tuple[Zone, ...], Secret | None]:
    names = node.str_list("zones", DEFAULT_ZONE_NAMES)
    zones: list[Zone] = []
    for i, name in enumerate(names):
        if name not in DEFAULT_ZONES:
            node.problem(f"unknown zone {name!r} (built in: {', '.join(DEFAULT_ZONES)}; define others under "
                         "custom)", f"zones[{i}]")  # fmt: skip
        else:
            zones.append(DEFAULT_ZONES[name])
    zones.extend(node.list_of("custom", _zone))
    _unique(node, "custom", [z.name for z in zones])
    dqs = node.secret("dqs_key", required=False)
    node.finish()
    return tuple(zones), dqs


def _zone(node: Node) -> Zone:
    kind = node.string("kind", "ip", choices=("ip", "domain"))
    listed = node.str_map("listed", {"127.0.0.2": "listed"})
    errors = node.str_map("errors")
    for code, cls in errors.items():
        if cls not in ZONE_ERROR_CLASSES:  # a label value: from a fixed set
            node.problem(f"must be one of {', '.join(ZONE_ERROR_CLASSES)} (got {cls!r})", f"errors.{code}")
    for key, codes in (("listed", listed), ("errors", errors)):
        for code in codes:
            try:
                ipaddress.IPv4Address(code)
            except ValueError:
                node.problem(f"{code!r} is not an IPv4 return code", f"{key}.{code}")
    return Zone(
        node.string("name", pattern=NAME_RE), node.string("zone", pattern=DOMAIN_RE), kind,
        node.string("type", "block", choices=("block", "allow")), tuple(listed.items()), (), tuple(errors.items()),
        node.string("test_point", "127.0.0.2" if kind == "ip" else "test"),
    )  # fmt: skip


def _unique(node: Node, key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            node.problem(f"{name!r} is used twice", f"{key}[{i}].name")
        seen.add(name)
