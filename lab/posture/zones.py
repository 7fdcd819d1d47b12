"""The posture lab's DNS data: one good domain and broken ones, each broken in exactly one way.

Every test domain is ``<name>.posture.test`` (a DNSSEC-signed zone) and gets the good domain's full set
of records, then its one defect. :data:`EXPECTED` says which check fails on it and with which reason;
the lab test holds ``mailpulse posture`` to it. Senders (127.0.0.x) have PTR records in
``127.in-addr.arpa``; blocklists are ``zen.spamhaus.org``/``dbl.spamhaus.org`` (the built-in table's
zones, served locally), their DQS twins, and small ``*.test`` zones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ZONE = "posture.test"
INSECURE = "insecure.test"
OTHER = "other.test"  # an external DMARC report domain that authorizes nobody
DQS_KEY = "labdqskey0123456789abcdefgh"  # 26+ chars like a real key; lives in a secret file in tests

# loopback addresses of the lab's servers (all on the same ports, one address each)
GOOD_MX_IP = "127.0.0.1"
NOTLS_MX_IP = "127.0.0.2"
EXPIRING_MX_IP = "127.0.0.3"
BADCERT_HTTPS_IP = "127.0.0.4"


@dataclass
class Domain:
    name: str  # the label under posture.test
    expect: tuple[str, str] | None = None  # (check, reason) it fails; None: passes everything
    mx: str = f"mx.{ZONE}"
    dane: bool = False
    dkim_record: str | None = "good"  # good | other | testing | weak | revoked | None (missing)
    spf: list[str] | None = None  # TXT strings at the domain (None: the good one)
    dmarc: list[str] | None = None
    sts_txt: list[str] | None = None
    policy: str | None = "good"  # good | nomx | missing (404) | bad
    sts_ip: str = GOOD_MX_IP
    tlsrpt: list[str] | None = None
    extra: list[str] = field(default_factory=list)  # more records, zone-file lines relative to the domain
    senders: tuple[str, ...] = ("out-good",)

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{ZONE}"


def _good_spf(d: Domain) -> list[str]:
    return [f"v=spf1 mx include:_spf.{ZONE} -all"]


DOMAINS: list[Domain] = [
    Domain("good", dane=True),
    # SPF -----------------------------------------------------------------------------------------------
    Domain("spf-missing", ("spf", "missing"), spf=[]),
    Domain("spf-multiple", ("spf", "multiple"), spf=["v=spf1 -all", "v=spf1 ip4:127.0.0.10 -all"]),
    Domain("spf-syntax", ("spf", "syntax"), spf=["v=spf1 ip4:127.0.0.300 -all"]),
    Domain(
        "spf-lookups",
        ("spf", "too_many_lookups"),
        spf=["v=spf1 " + " ".join(f"a:h{i}.spf-lookups.{ZONE}" for i in range(10)) + f" include:_spf.{ZONE} -all"],
        extra=[f"h{i} A 127.0.0.200" for i in range(10)],
    ),
    Domain(
        "spf-voids",
        ("spf", "too_many_void_lookups"),
        spf=[f"v=spf1 a:nx1.{ZONE} a:nx2.{ZONE} exists:nx3.{ZONE} include:_spf.{ZONE} -all"],
    ),
    # 9 mx terms with 3 MX names each: 9 lookups (the 27 address lookups do not count), passes
    Domain(
        "spf-mx9",
        None,
        spf=["v=spf1 " + " ".join(["mx:three.spf-mx9." + ZONE] * 9) + " ip4:127.0.0.10 -all"],
        extra=[f"three MX {n} {h}.three.spf-mx9.{ZONE}." for n, h in ((10, "a"), (20, "b"), (30, "c"))]
        + ["a.three A 127.0.0.201", "b.three A 127.0.0.202", "c.three A 127.0.0.203"],
    ),
    Domain("spf-loop", ("spf", "loop"), spf=[f"v=spf1 include:spf-loop.{ZONE} -all"]),
    Domain("spf-unauth", ("spf", "ip_not_authorized"), senders=("out-other",)),
    # DKIM ----------------------------------------------------------------------------------------------
    Domain("dkim-missing", ("dkim", "missing"), dkim_record=None),
    Domain("dkim-mismatch", ("dkim", "key_mismatch"), dkim_record="other"),
    Domain("dkim-testing", ("dkim", "testing"), dkim_record="testing"),
    Domain("dkim-weak", ("dkim", "weak_key"), dkim_record="weak"),
    Domain("dkim-revoked", ("dkim", "revoked"), dkim_record="revoked"),
    # DMARC ---------------------------------------------------------------------------------------------
    Domain("dmarc-missing", ("dmarc", "missing"), dmarc=[]),
    Domain("dmarc-none", ("dmarc", "policy_none"), dmarc=[f"v=DMARC1; p=none; rua=mailto:d@{ZONE}"]),
    Domain("dmarc-norua", ("dmarc", "no_rua"), dmarc=["v=DMARC1; p=reject"]),
    Domain("dmarc-unauth", ("dmarc", "rua_not_authorized"), dmarc=[f"v=DMARC1; p=reject; rua=mailto:d@{OTHER}"]),
    Domain("dmarc-syntax", ("dmarc", "syntax"), dmarc=["v=DMARC1; p=block; rua=mailto:d@posture.test"]),
    # MTA-STS and TLS-RPT -------------------------------------------------------------------------------
    Domain("sts-missing", ("mta_sts", "missing"), sts_txt=[]),
    Domain("sts-nomx", ("mta_sts", "mx_not_covered"), policy="nomx"),
    Domain("sts-badcert", ("mta_sts", "certificate"), sts_ip=BADCERT_HTTPS_IP),
    Domain("sts-nopolicy", ("mta_sts", "fetch_failed"), policy="missing"),
    Domain("sts-badpolicy", ("mta_sts", "policy_syntax"), policy="bad"),
    Domain("tlsrpt-missing", ("tlsrpt", "missing"), tlsrpt=[]),
    # blocklists (domain zones; the IP zones are checked with the senders below) -------------------------
    Domain("dbl-listed", ("dnsbl", "listed")),
    Domain("dbl-error", ("dnsbl", "zone_error")),
    # MX TLS and DANE -----------------------------------------------------------------------------------
    Domain("mx-notls", ("mx_tls", "no_starttls"), mx=f"mx.notls.{ZONE}"),
    Domain("mx-wrongname", ("mx_tls", "certificate_name"), mx=f"mx.wrongname.{ZONE}"),
    Domain("mx-expiring", ("mx_tls", "certificate_expiring"), mx=f"mx.expiring.{ZONE}"),
    Domain("dane-mismatch", ("dane", "tlsa_mismatch"), mx=f"mx-danebad.{ZONE}", dane=True),
    Domain("dane-insecure", ("dane", "not_validated"), mx=f"mx.{INSECURE}", dane=True),
    Domain("dane-notlsa", ("dane", "no_tlsa"), mx=f"mx-notlsa.{ZONE}", dane=True),
]


@dataclass(frozen=True)
class Sender:
    name: str
    ip: str
    helo: str
    expect: tuple[str, str] | None = None  # the rdns verdict
    zones: tuple[tuple[str, str], ...] = ()  # (zone name, reason) where it is not ok


SENDERS = [
    Sender("out-good", "127.0.0.10", f"out.{ZONE}", zones=(("lab-err", "zone_error"), ("lab-dead", "zone_error"))),
    Sender(
        "out-other", "127.0.0.20", f"other-out.{ZONE}", zones=(("lab-err", "zone_error"), ("lab-dead", "zone_error"))
    ),
    Sender(
        "rdns-noptr",
        "127.0.0.11",
        f"noptr.{ZONE}",
        ("rdns", "no_ptr"),
        (("lab-err", "zone_error"), ("lab-dead", "zone_error")),
    ),
    Sender(
        "rdns-nofwd",
        "127.0.0.12",
        f"nofwd.{ZONE}",
        ("rdns", "no_forward_match"),
        (("lab-err", "zone_error"), ("lab-dead", "zone_error")),
    ),
    Sender(
        "rdns-helo",
        "127.0.0.13",
        f"wrong-helo.{ZONE}",
        ("rdns", "helo_mismatch"),
        (("lab-err", "zone_error"), ("lab-dead", "zone_error")),
    ),
    Sender(
        "bl-listed",
        "127.0.0.14",
        f"listed.{ZONE}",
        None,
        (("spamhaus-zen", "listed"), ("lab-err", "zone_error"), ("lab-dead", "zone_error")),
    ),
    Sender(
        "bl-error",
        "127.0.0.15",
        f"error.{ZONE}",
        None,
        (("spamhaus-zen", "zone_error"), ("lab-err", "zone_error"), ("lab-dead", "zone_error")),
    ),
    Sender(
        "bl-unknown",
        "127.0.0.16",
        f"unknown.{ZONE}",
        None,
        (("spamhaus-zen", "unknown_code"), ("lab-err", "zone_error"), ("lab-dead", "zone_error")),
    ),
]
PTR_NAMES = {"out-good": "out", "out-other": "other-out", "rdns-helo": "helo", "bl-listed": "listed",
             "bl-error": "error", "bl-unknown": "unknown"}  # fmt: skip
DBL_LISTED = "dbl-listed"  # a domain on dbl.spamhaus.org
DBL_ERROR = "dbl-error"  # a domain whose DBL lookup answers 127.0.1.255 (error)


def txt(strings: list[str]) -> list[str]:
    return [_quote(s) for s in strings]


def _quote(value: str) -> str:
    chunks = [value[i : i + 250] for i in range(0, len(value), 250)] or [""]
    return " ".join('"' + c.replace('"', '\\"') + '"' for c in chunks)


@dataclass
class Keys:
    """DNS values the PKI step computed."""

    dkim_good: str  # base64 SPKI of the key the signer has
    dkim_other: str
    dkim_weak: str
    tlsa_good: str  # hex SHA-256 of the good MX certificate's SPKI
    dkim_ed25519: str  # base64 raw ed25519 public key (rspamadm's record)


def domain_records(d: Domain, keys: Keys, sts_id: str) -> list[tuple[str, str]]:
    """(owner relative to the domain, "" for the apex; record) pairs."""
    records: list[tuple[str, str]] = [("", f"MX 10 {d.mx}.")]
    records += [("", f"TXT {t}") for t in txt(d.spf if d.spf is not None else _good_spf(d))]
    dkim = {"good": f"v=DKIM1; k=rsa; p={keys.dkim_good}", "other": f"v=DKIM1; k=rsa; p={keys.dkim_other}",
            "testing": f"v=DKIM1; k=rsa; t=y; p={keys.dkim_good}", "weak": f"v=DKIM1; k=rsa; p={keys.dkim_weak}",
            "revoked": "v=DKIM1; k=rsa; p="}  # fmt: skip
    if d.dkim_record is not None:
        records.append(("sel1._domainkey", "TXT " + _quote(dkim[d.dkim_record])))
    if d.name == "good":
        records.append(("ed1._domainkey", "TXT " + _quote(f"v=DKIM1; k=ed25519; p={keys.dkim_ed25519}")))
    # the good domain sends reports to an external domain that authorizes it; the others to their parent
    default_rua = f"d@{OTHER}" if d.name == "good" else f"d@{ZONE}"
    dmarc = d.dmarc if d.dmarc is not None else [f"v=DMARC1; p=reject; rua=mailto:{default_rua}"]
    records += [("_dmarc", f"TXT {t}") for t in txt(dmarc)]
    sts = d.sts_txt if d.sts_txt is not None else [f"v=STSv1; id={sts_id}"]
    records += [("_mta-sts", f"TXT {t}") for t in txt(sts)]
    records.append(("mta-sts", f"A {d.sts_ip}"))
    rpt = d.tlsrpt if d.tlsrpt is not None else [f"v=TLSRPTv1; rua=mailto:tlsrpt@{ZONE}"]
    records += [("_smtp._tls", f"TXT {t}") for t in txt(rpt)]
    records += [(r.split(" ", 1)[0], r.split(" ", 1)[1]) for r in d.extra]
    return records


def render_domain(d: Domain, keys: Keys, sts_id: str) -> list[str]:
    return [f"{owner + '.' if owner else ''}{d.fqdn}. 60 {rr}" for owner, rr in domain_records(d, keys, sts_id)]


def bench_domains(count: int) -> list[Domain]:
    """Good domains for the benchmark (b0000...), each with the good domain's records (no DANE)."""
    return [Domain(f"b{i:04d}") for i in range(count)]


def posture_zone_text(keys: Keys, domains: list[Domain], sts_id: str = "20260101") -> str:
    head = posture_zone_head(keys)
    body = [line for d in domains for line in render_domain(d, keys, sts_id)]
    return "\n".join(head + body) + "\n"


def posture_zone_head(keys: Keys) -> list[str]:
    lines = [f"$ORIGIN {ZONE}.", "$TTL 60", "@ SOA ns hostmaster 1 3600 600 86400 60", "@ NS ns", f"ns A {GOOD_MX_IP}",
             f"mx A {GOOD_MX_IP}", f"mx.notls A {NOTLS_MX_IP}", f"mx.wrongname A {GOOD_MX_IP}",
             f"mx.expiring A {EXPIRING_MX_IP}", f"mx-danebad A {GOOD_MX_IP}", f"mx-notlsa A {GOOD_MX_IP}",
             f"_25._tcp.mx TLSA 3 1 1 {keys.tlsa_good}", f"_25._tcp.mx-danebad TLSA 3 1 1 {'00' * 32}",
             '_spf TXT "v=spf1 ip4:127.0.0.10 -all"']  # fmt: skip
    for name, label in PTR_NAMES.items():
        ip = next(s.ip for s in SENDERS if s.name == name)
        lines.append(f"{label} A {ip}")
    return lines


def simple_zone(origin: str, records: list[str]) -> str:
    return "\n".join([f"$ORIGIN {origin}.", "$TTL 60", "@ SOA ns.posture.test. hostmaster.posture.test. 1 3600 600 "
                      "86400 60", "@ NS ns.posture.test.", *records]) + "\n"  # fmt: skip


def reverse(ip: str) -> str:
    return ".".join(reversed(ip.split(".")))


def other_zones(keys: Keys) -> dict[str, str]:
    ptr = []
    for s in SENDERS:
        label = PTR_NAMES.get(s.name)
        if label is not None:
            ptr.append(f"{reverse(s.ip)}.in-addr.arpa. PTR {label}.{ZONE}.")
    ptr.append(f"{reverse('127.0.0.12')}.in-addr.arpa. PTR nofwd.{ZONE}.")  # a name without an address
    zen = ["2.0.0.127 A 127.0.0.2", f"{reverse('127.0.0.14')} A 127.0.0.4",
           f"{reverse('127.0.0.15')} A 127.255.255.254", f"{reverse('127.0.0.16')} A 127.0.0.99"]  # fmt: skip
    dbl = ["dbltest.com A 127.0.1.2", f"{DBL_LISTED}.{ZONE} A 127.0.1.2", f"{DBL_ERROR}.{ZONE} A 127.0.1.255"]
    return {
        INSECURE: simple_zone(INSECURE, [f"mx A {GOOD_MX_IP}", f"_25._tcp.mx TLSA 3 1 1 {keys.tlsa_good}"]),
        OTHER: simple_zone(OTHER, [f'good.{ZONE}._report._dmarc TXT "v=DMARC1"']),
        "127.in-addr.arpa": simple_zone("127.in-addr.arpa", ptr),
        "zen.spamhaus.org": simple_zone("zen.spamhaus.org", zen),
        "dbl.spamhaus.org": simple_zone("dbl.spamhaus.org", dbl),
        "dq.spamhaus.net": simple_zone(
            "dq.spamhaus.net", [f"{r.split()[0]}.{DQS_KEY}.zen {' '.join(r.split()[1:])}" for r in zen]
        ),
        "errbl.test": simple_zone("errbl.test", ["* A 127.255.255.254"]),
        "deadbl.test": simple_zone("deadbl.test", []),
    }


PolicyFor = Callable[[str], str | None]


def policy_body(d: Domain) -> str | None:
    if d.policy == "missing":
        return None
    if d.policy == "bad":
        return "version: STSv1\nmode: enforce\nmax_age: 999999999\n"
    pattern = f"mx.elsewhere.{ZONE}" if d.policy == "nomx" else d.mx
    return f"version: STSv1\nmode: enforce\nmx: {pattern}\nmax_age: 604800\n"
