"""One function per check: a :class:`Target` in, a :class:`CheckResult` out. Each raises
:class:`CheckFailed` for a verdict other than ok; :func:`run_check` turns that into the result."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mailpulse.exporter.features.posture import der, dkimkey, dmarc, dnsbl, mtasts, smtptls, spf
from mailpulse.exporter.features.posture.config import MAX_MX, Domain, PostureConfig, Sender
from mailpulse.exporter.features.posture.dnsq import DnsError, Resolver
from mailpulse.exporter.features.posture.result import CheckFailed, CheckResult, Target

Verdict = tuple[dict[str, float], dict[str, str], str, list[str]]  # values, infos, detail, warnings


@dataclass
class Env:
    """What every check needs, built once per (re)load."""

    config: PostureConfig
    resolver: Resolver
    verifying: ssl.SSLContext
    insecure: ssl.SSLContext
    dqs_key: str | None = None
    now: Callable[[], float] = time.time
    domains: dict[str, Domain] = field(default_factory=dict)
    senders: dict[str, Sender] = field(default_factory=dict)

    @classmethod
    def build(cls, config: PostureConfig) -> Env:
        resolver = Resolver(config.resolvers, config.resolver_port, config.dns_timeout)
        dqs = config.dqs_key.value if config.dqs_key else None
        domains = {d.name: d for d in config.domains}
        senders = {s.name: s for s in config.senders}
        return cls(config, resolver, smtptls.verifying_context(config.ca_file), smtptls.insecure_context(), dqs,
                   domains=domains, senders=senders)  # fmt: skip


def targets(config: PostureConfig, mx_hosts: dict[str, tuple[str, ...]] | None = None) -> list[Target]:
    """Every (check, target) the config asks for. MX checks take configured hosts, or the discovered ones
    given in ``mx_hosts``; a domain without either gets one ``mx_tls`` target with item ``""`` that
    discovers and reports ``no_mx``."""
    out: list[Target] = []
    on = {name for name, sched in config.checks.items() if sched.enabled}
    for d in config.domains:
        for check in ("spf", "dmarc"):
            out.append(Target(check, d.name))
        out.extend(Target("dkim", d.name, s.selector) for s in d.dkim)
        if d.mta_sts:
            out += [Target("mta_sts", d.name), Target("tlsrpt", d.name)]
        hosts = d.mx or (mx_hosts or {}).get(d.name, ())
        out.extend(Target("mx_tls", d.name, h) for h in hosts[:MAX_MX])
        if d.dane:
            out.extend(Target("dane", d.name, h) for h in hosts[:MAX_MX])
        if d.dnsbl:
            out.extend(Target("dnsbl", d.name, "", z.name) for z in config.zones if z.kind == "domain")
    for s in config.senders:
        out.append(Target("rdns", "", s.name))
        out.extend(Target("dnsbl", "", s.name, z.name) for z in config.zones if z.kind == "ip")
    return [t for t in out if t.check in on]


async def discover_mx(env: Env, domain: str) -> tuple[str, ...]:
    answer = await env.resolver.query(domain, "MX")
    ordered = sorted(answer.records, key=lambda r: (r.preference, str(r.exchange)))  # type: ignore[attr-defined]
    return tuple(str(r.exchange).rstrip(".").lower() for r in ordered if str(r.exchange) != ".")[:MAX_MX]  # type: ignore[attr-defined]


async def run_check(env: Env, target: Target, timeout: float) -> CheckResult:
    """Never raises (but on cancellation): every failure is a result with a bounded reason."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            values, infos, detail, warnings = await CHECK_FUNCS[target.check](env, target)
        result = CheckResult(target, True, "ok", values=values, infos=infos, detail=detail, warnings=tuple(warnings))
    except CheckFailed as exc:
        result = CheckResult(
            target, False, exc.reason, up=exc.up, detail=exc.detail, values=exc.values, infos=exc.infos
        )
    except TimeoutError:
        result = CheckResult(target, False, "timeout", up=False, detail=f"no verdict within {timeout:g}s")
    except Exception as exc:  # a bug in one check must not stop the others
        result = CheckResult(target, False, "internal", up=False, detail=f"{type(exc).__name__}: {exc}")
    result.duration = time.monotonic() - started
    result.finished_at = env.now()
    return result


def _fail(reason: str, detail: str, values: dict[str, float] | None = None,
          infos: dict[str, str] | None = None) -> CheckFailed:  # fmt: skip
    return CheckFailed(reason, detail, values=values, infos=infos)


# -- SPF -------------------------------------------------------------------------------------------------
async def check_spf(env: Env, target: Target) -> Verdict:
    domain = target.domain
    try:
        outcome = await spf.budget(env.resolver, domain)
    except spf.SpfError as exc:
        raise _fail(exc.reason, exc.detail) from exc
    values = {"lookups": float(outcome.lookups), "void_lookups": float(outcome.voids)}
    if outcome.error is not None:
        counted = f"{outcome.lookups} lookups, {outcome.voids} void lookups"
        raise _fail(outcome.error.reason, f"{outcome.error.detail}; {counted}", values)
    config = env.domains[domain]
    names = config.senders if config.senders is not None else tuple(env.senders)
    results: dict[str, str] = {}
    for name in names:
        for address in await sender_addresses(env, env.senders[name]):
            verdict = await spf.authorize(env.resolver, domain, address, helo=env.senders[name].helo or "")
            if verdict.result == "temperror":
                raise DnsError("dns_error", f"SPF evaluation for {name} hit a DNS error")
            if results.get(name, "pass") == "pass":
                results[name] = verdict.result
    infos = {f"sender:{n}": r for n, r in results.items()}
    bad = [f"{n} ({r})" for n, r in results.items() if r != "pass"]
    detail = f"{outcome.lookups} lookups, {outcome.voids} void lookups"
    if bad:
        raise _fail("ip_not_authorized", f"{detail}; not authorized: {', '.join(bad)}", values, infos)
    return values, infos, detail, []


async def sender_addresses(env: Env, sender: Sender) -> list[spf.IPAddress]:
    if sender.ip is not None:
        return [ipaddress.ip_address(sender.ip)]
    assert sender.host is not None
    answer = await env.resolver.query(sender.host, "A")
    return [ipaddress.ip_address(r.address) for r in answer.records]  # type: ignore[attr-defined]


# -- DKIM ------------------------------------------------------------------------------------------------
async def check_dkim(env: Env, target: Target) -> Verdict:
    name = f"{target.item}._domainkey.{target.domain}"
    answer = await env.resolver.query(name, "TXT")
    texts = answer.texts()
    if not texts:
        raise _fail("missing", f"no TXT record at {name}")
    if len(texts) > 1:
        raise _fail("syntax", f"{name} has {len(texts)} TXT records")
    record = dkimkey.parse_record(texts[0])
    values = {"bits": float(record.key.bits), "testing": float(record.testing)}
    infos = {"key_type": record.key.kind}
    if record.key.kind == "rsa" and record.key.bits < env.config.min_rsa_bits:
        raise _fail("weak_key", f"RSA key of {record.key.bits} bits", values, infos)
    selector = next(s for s in env.domains[target.domain].dkim if s.selector == target.item)
    if selector.key_file is not None:
        try:
            with open(selector.key_file, "rb") as fh:
                private = dkimkey.load_private(fh.read(65536))
        except OSError as exc:
            raise _fail("key_file_unreadable", f"{selector.key_file}: {exc.strerror}", values, infos) from exc
        match = dkimkey.same_key(record.key, private)
        values["key_match"] = float(match)
        if not match:
            raise _fail("key_mismatch", f"{name} does not publish the key in {selector.key_file}", values, infos)
    if record.testing:
        raise _fail("testing", f"{name} has t=y (verifiers may ignore failures)", values, infos)
    return values, infos, f"{record.key.kind} {record.key.bits} bits", []


# -- DMARC -----------------------------------------------------------------------------------------------
async def check_dmarc(env: Env, target: Target) -> Verdict:
    policy = await dmarc.lookup(env.resolver, target.domain)
    infos = {"p": policy.p, "sp": policy.sp, "np": policy.np}
    values = {"testing": float(policy.testing), "rua": float(len(policy.rua)), "ruf": float(len(policy.ruf))}
    if policy.pct is not None:
        values["pct"] = float(policy.pct)
    detail = f"p={policy.p} sp={policy.sp} np={policy.np}" + (f" (from {policy.inherited_from})"
                                                               if policy.inherited_from else "")  # fmt: skip
    if policy.p == "none":
        raise _fail("policy_none", f"{detail}: receivers take no action on failing mail", values, infos)
    if not policy.rua:
        raise _fail("no_rua", f"{detail}: no rua= (no aggregate reports)", values, infos)
    for address in (*policy.rua, *policy.ruf):
        report_domain = dmarc.external(policy.inherited_from or target.domain, address)
        if report_domain and not await dmarc.authorized(env.resolver, policy.inherited_from or target.domain,
                                                        report_domain):  # fmt: skip
            raise _fail("rua_not_authorized", f"{report_domain} has no {target.domain}._report._dmarc."
                        f"{report_domain} record", values, infos)  # fmt: skip
    return values, infos, detail, policy.warnings


# -- MTA-STS and TLS-RPT ---------------------------------------------------------------------------------
async def check_mta_sts(env: Env, target: Target) -> Verdict:
    domain = target.domain
    await mtasts.lookup_id(env.resolver, domain)
    body = await mtasts.fetch_policy(env.resolver, domain, env.verifying, env.config.https_port,
                                     env.config.dns_timeout * 3)  # fmt: skip
    policy = mtasts.parse_policy(body)
    values = {"max_age": float(policy.max_age)}
    infos = {"mode": policy.mode}
    warnings = [] if policy.mode == "enforce" else [f"mode is {policy.mode}"]
    hosts = env.domains[domain].mx or await discover_mx(env, domain)
    uncovered = [h for h in hosts if not any(mtasts.covers(p, h) for p in policy.mx)]
    if policy.mode != "none" and uncovered:
        raise _fail("mx_not_covered", f"no mx: pattern covers {', '.join(uncovered)}", values, infos)
    return values, infos, f"mode {policy.mode}, max_age {policy.max_age}", warnings


async def check_tlsrpt(env: Env, target: Target) -> Verdict:
    uris = await mtasts.lookup_tlsrpt(env.resolver, target.domain)
    return {"rua": float(len(uris))}, {}, f"{len(uris)} report URI(s)", []


# -- MX TLS and DANE -------------------------------------------------------------------------------------
async def _mx_address(env: Env, host: str) -> str:
    answer = await env.resolver.query(host, "A")
    if not answer.records:
        raise _fail("connect", f"{host} has no A record")
    return str(answer.records[0].address)  # type: ignore[attr-defined]


async def check_mx_tls(env: Env, target: Target) -> Verdict:
    host = target.item
    if not host:  # discovery found nothing (or failed): ask again, so a DNS error is reported as one
        found = await discover_mx(env, target.domain)
        detail = f"{target.domain}: MX records appeared, checked from the next discovery" if found else ""
        raise _fail("no_mx", detail or f"{target.domain} has no MX records")
    address = await _mx_address(env, host)
    port, helo, timeout = env.config.smtp_port, env.config.helo, env.config.dns_timeout * 3
    # first as a sender that checks names and trust; the certificate's dates come from a second session
    # when the first fails on trust, so an untrusted certificate still has its expiry exported
    try:
        session = await smtptls.starttls(address, port, host, env.verifying, helo, timeout)
        verified_error: CheckFailed | None = None
    except CheckFailed as exc:
        if exc.reason not in ("certificate_name", "certificate_expired", "certificate_untrusted"):
            raise
        verified_error = exc
        session = await smtptls.starttls(address, port, host, env.insecure, helo, timeout)
    not_after = der.not_after(session.leaf)
    values = {"not_after": not_after}
    infos = {"version": session.version}
    if verified_error is not None:
        raise _fail(verified_error.reason, verified_error.detail, values, infos)
    if session.version in smtptls.OLD_PROTOCOLS:
        raise _fail("old_protocol", f"{host} negotiated {session.version}", values, infos)
    left = not_after - env.now()
    if left < env.config.cert_warning:
        raise _fail("certificate_expiring", f"{host}: certificate expires in {left / 86400:.1f} days", values, infos)
    return values, infos, f"{session.version}, certificate valid {left / 86400:.0f} more days", []


async def check_dane(env: Env, target: Target) -> Verdict:
    host = target.item
    answer = await env.resolver.query(f"_25._tcp.{host}", "TLSA")
    records = [smtptls.Tlsa(r.usage, r.selector, r.mtype, bytes(r.cert)) for r in answer.records]  # type: ignore[attr-defined]
    values = {"validated": float(answer.authenticated), "records": float(len(records))}
    if not records:
        raise _fail("no_tlsa", f"no TLSA records at _25._tcp.{host}", values)
    if not answer.authenticated:
        raise _fail("not_validated", f"_25._tcp.{host}: the resolver did not set AD (not DNSSEC-validated)", values)
    address = await _mx_address(env, host)
    session = await smtptls.starttls(address, env.config.smtp_port, host, env.insecure, env.config.helo,
                                     env.config.dns_timeout * 3)  # fmt: skip
    ee = [r for r in records if r.usage in (1, 3)]
    if any(smtptls.tlsa_matches(r, session.leaf) for r in ee):
        values["match"] = 1.0
        return values, {"usage": "dane-ee"}, f"{len(records)} TLSA record(s), DANE-EE match", []
    ta = [r for r in records if r.usage in (0, 2)]
    if ta and env.config.posttls_finger:
        ok = await smtptls.posttls_finger(env.config.posttls_finger, host, env.config.smtp_port,
                                          env.config.dns_timeout * 5)  # fmt: skip
        values["match"] = float(ok)
        if ok:
            return values, {"usage": "dane-ta"}, "DANE-TA verified by posttls-finger", []
        raise _fail("tlsa_mismatch", f"posttls-finger could not verify {host} against its TLSA records", values)
    values["match"] = 0.0
    if ee:
        raise _fail("tlsa_mismatch", f"none of {len(ee)} DANE-EE record(s) matches {host}'s certificate", values)
    raise _fail("unusable_tlsa", f"{host}: only DANE-TA records and no posttls_finger configured", values)


# -- reverse DNS -----------------------------------------------------------------------------------------
async def check_rdns(env: Env, target: Target) -> Verdict:
    sender = env.senders[target.item]
    confirmed_all: list[str] = []
    for address in await sender_addresses(env, sender):
        ptr = await env.resolver.query(address.reverse_pointer, "PTR")
        names = [str(r.target).rstrip(".").lower() for r in ptr.records][:10]  # type: ignore[attr-defined]
        if not names:
            raise _fail("no_ptr", f"{target.item}: no PTR record")
        confirmed = []
        for name in names:
            forward = await env.resolver.query(name, "AAAA" if address.version == 6 else "A")
            if any(ipaddress.ip_address(r.address) == address for r in forward.records):  # type: ignore[attr-defined]
                confirmed.append(name)
        if not confirmed:
            raise _fail("no_forward_match", f"{target.item}: no PTR name resolves back to the address")
        if sender.helo and sender.helo.lower().rstrip(".") not in confirmed:
            raise _fail("helo_mismatch", f"{target.item}: HELO {sender.helo} is not its PTR name")
        confirmed_all += confirmed
    return {}, {}, f"PTR {', '.join(sorted(set(confirmed_all)))}", []


# -- DNSBL -----------------------------------------------------------------------------------------------
async def check_dnsbl(env: Env, target: Target) -> Verdict:
    zone = next(z for z in env.config.zones if z.name == target.zone)
    subjects: list[str]
    if zone.kind == "domain":
        subjects = [target.domain]
    else:
        subjects = [str(a) for a in await sender_addresses(env, env.senders[target.item])]
    test = await dnsbl.lookup(env.resolver, zone, zone.test_point, env.dqs_key)
    if test.errors:
        raise _fail("zone_error", f"{zone.name}: test point answered error {test.errors[0]}",
                    infos={"error_class": test.errors[0]})  # fmt: skip
    if not test.listed:
        raise _fail("zone_error", f"{zone.name}: test point {zone.test_point} is not listed (dead zone or "
                    "refused)", infos={"error_class": "dead"})  # fmt: skip
    for subject in subjects:
        found = await dnsbl.lookup(env.resolver, zone, subject, env.dqs_key)
        if found.errors:
            raise _fail("zone_error", f"{zone.name}: error {found.errors[0]}", infos={"error_class": found.errors[0]})
        if found.unknown:
            raise _fail("unknown_code", f"{zone.name}: return code {found.unknown[0]} is not in the table",
                        infos={"error_class": "unknown_code"})  # fmt: skip
        if found.listed:
            values = {"listed": 1.0}
            if zone.list_type == "allow":
                return values, {}, f"on allowlist {zone.name} ({', '.join(found.meanings)})", []
            raise _fail("listed", f"listed on {zone.name} ({', '.join(found.meanings)})", values,
                        {"meaning": found.meanings[0]})  # fmt: skip
    return {"listed": 0.0}, {}, f"not listed on {zone.name}", []


CHECK_FUNCS: dict[str, Callable[[Env, Target], Awaitable[Verdict]]] = {
    "spf": check_spf, "dkim": check_dkim, "dmarc": check_dmarc, "mta_sts": check_mta_sts, "tlsrpt": check_tlsrpt,
    "mx_tls": check_mx_tls, "dane": check_dane, "rdns": check_rdns, "dnsbl": check_dnsbl,
}  # fmt: skip
