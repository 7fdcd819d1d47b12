"""The posture section of the status page: one row per domain (checks as columns) and one per sender.

Built from the last result of every target (:class:`PostureMetrics.last`) and the targets the service
plans (a planned target without a result yet shows ``pending``). A cell holds every target of its check
for the row (a domain's DKIM selectors, its MX hosts, its blocklist zones) with the values a mail admin
looks for first: SPF lookups out of 10, DMARC ``p=``, whether each DKIM key matches its key file, the
MTA-STS mode, the TLS version and days until the MX certificate expires, whether TLSA matches, where a
name is listed. Its state is the worst of them: ``ok``; ``unknown`` when DNS, the network or the time
limit stopped the check; ``warn`` for the reasons in :data:`WARN_REASONS`; ``fail`` otherwise. Rows are
capped at :data:`MAX_ROWS` per table, the worst first, so a thousand domains do not make a page nobody reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mailpulse.exporter.features.posture.result import CheckResult, Target
from mailpulse.exporter.status import Cell, State, StatusSection, Table, age, row, worst

MAX_ROWS = 100
# a check that did not pass for one of these reasons is worth a look, not a page: the mail still flows
WARN_REASONS = frozenset(("policy_none", "no_rua", "rua_not_authorized", "testing", "certificate_expiring",
                          "old_protocol", "weak_key"))  # fmt: skip
DOMAIN_CHECKS = (("spf", "SPF"), ("dkim", "DKIM"), ("dmarc", "DMARC"), ("mta_sts", "MTA-STS"), ("tlsrpt", "TLS-RPT"),
                 ("mx_tls", "MX TLS, certificate"), ("dane", "DANE"), ("dnsbl", "blocklists"))  # fmt: skip
SENDER_CHECKS = (("rdns", "reverse DNS"), ("dnsbl", "blocklists"))
_SEVERITY = {None: -1, State.OK: 0, State.UNKNOWN: 1, State.WARN: 2, State.FAIL: 3}

Key = tuple[str, str, str, str]


def result_state(result: CheckResult) -> State:
    if result.ok:
        return State.OK
    if not result.up:
        return State.UNKNOWN
    return State.WARN if result.reason in WARN_REASONS else State.FAIL


def _values(r: CheckResult, now: float) -> str:
    """The check's key numbers and enums, short; empty when it measured nothing worth showing."""
    v, i, check = r.values, r.infos, r.target.check
    parts: list[str] = []
    if check == "spf" and "lookups" in v:
        parts.append(f"{v['lookups']:.0f}/10 lookups")
        if v.get("void_lookups"):
            parts.append(f"{v['void_lookups']:.0f} void")
        # a configured sender's own result only when it is not a pass (the check fails on it: ip_not_authorized)
        parts += [f"{name[7:]} {result}" for name, result in sorted(i.items())
                  if name.startswith("sender:") and result != "pass"]  # fmt: skip
    elif check == "dkim":
        # the key's size only when it is the problem (weak_key) or there is nothing else to say
        if "key_match" in v and r.reason != "key_mismatch":
            parts.append("matches" if v["key_match"] == 1.0 else "key differs")
        if "bits" in v and (not r.ok or "key_match" not in v):
            parts.append(f"{i.get('key_type', 'rsa')} {v['bits']:.0f}")
        if v.get("testing"):
            parts.append("t=y")
    elif check == "dmarc":
        if "p" in i:
            parts.append(f"p={i['p']}" + (f" sp={i['sp']}" if i.get("sp") and i.get("sp") != i["p"] else ""))
        if v.get("testing"):
            parts.append("t=y")
    elif check == "mta_sts" and "mode" in i:
        parts.append(i["mode"])
    elif check == "mx_tls" and "not_after" in v:
        parts.append(f"{i.get('version', '?')}, {(v['not_after'] - now) / 86400:.0f} d left")
    elif check == "dane" and v.get("match") == 1.0:
        # a match counts only DNSSEC-validated (else the check fails not_validated): "DNSSEC" is implied;
        # no match is said by the reason (tlsa_mismatch)
        parts.append("TLSA matches")
    return ", ".join(parts)


def _brief(r: CheckResult, now: float) -> str:
    values = _values(r, now)
    if r.ok:
        return values or "ok"
    return f"{r.reason} ({values})" if values else r.reason


def _cell(check: str, keys: Sequence[Key], last: Mapping[Key, CheckResult], now: float) -> Cell:
    """Every target of one check for one row; a target without a result yet is pending."""
    if not keys:
        return Cell("-")
    if check == "dnsbl":
        return _blocklists(keys, last)
    results = [last.get(k) for k in keys]
    # say which selector, always; which MX host, when the domain has several
    named = check == "dkim" or (check in ("mx_tls", "dane") and len(keys) > 1)
    parts, states = [], []
    for key, r in zip(keys, results, strict=True):
        text = "pending" if r is None else _brief(r, now)
        states.append(State.UNKNOWN if r is None else result_state(r))
        parts.append(f"{key[2]}: {text}" if named and key[2] else text)
    return Cell("; ".join(parts), worst(states))


def _blocklists(keys: Sequence[Key], last: Mapping[Key, CheckResult]) -> Cell:
    """``listed: zen`` / ``clean on 3 zones`` / ``zone: dns_timeout``, over every zone of the row."""
    listed, errors, clean, pending = [], [], 0, 0
    for key in keys:
        r = last.get(key)
        if r is None:
            pending += 1
        elif r.ok:
            clean += 1
        elif r.reason == "listed":
            listed.append(key[3])
        else:
            errors.append(f"{key[3]}: {r.reason}")
    parts = [f"listed: {', '.join(listed)}"] if listed else []
    parts += errors
    if clean:
        parts.append(f"clean on {clean} zone{'s' if clean > 1 else ''}")
    if pending:
        parts.append(f"{pending} pending")
    state = State.FAIL if listed else State.UNKNOWN if errors or pending else State.OK
    return Cell("; ".join(parts), state)


def _oldest(keys: Iterable[Key], last: Mapping[Key, CheckResult], now: float) -> Cell:
    done = [last[k].finished_at for k in keys if k in last]
    return Cell(age(min(done), now) if done else "not yet")


def _table(name_col: str, checks: Sequence[tuple[str, str]], groups: Mapping[str, list[Key]],
           last: Mapping[Key, CheckResult], now: float, caption: str, empty: str) -> Table:  # fmt: skip
    rows = []
    for name, keys in groups.items():
        cells = [_cell(check, [k for k in keys if k[0] == check], last, now) for check, _ in checks]
        rows.append((_SEVERITY[worst([c.state for c in cells])], name, row(name, *cells, _oldest(keys, last, now))))
    rows.sort(key=lambda r: (-r[0], r[1]))
    shown = tuple(r[2] for r in rows[:MAX_ROWS])
    if len(rows) > MAX_ROWS:
        caption += f" (the {MAX_ROWS} worst of {len(rows)}; every one is in the posture metrics)"
    return Table((name_col, *(title for _, title in checks), "oldest check"), shown, caption=caption, empty=empty,
                 wrap=True)  # fmt: skip


def posture_section(planned: Iterable[Target], last: Mapping[Key, CheckResult], now: float) -> StatusSection:
    """The section from the planned targets and the last result of each (read under the kernel's lock)."""
    keys = list(dict.fromkeys([*(t.key for t in planned), *last]))
    domains: dict[str, list[Key]] = {}
    senders: dict[str, list[Key]] = {}
    for key in keys:
        check, domain, item, _zone = key
        if domain:
            domains.setdefault(domain, []).append(key)
        elif check in ("rdns", "dnsbl"):
            senders.setdefault(item, []).append(key)
    tables = [_table("domain", DOMAIN_CHECKS, domains, last, now, "Domains", "no domains configured")]
    if senders:
        tables.append(_table("sender", SENDER_CHECKS, senders, last, now, "Sending IPs", ""))
    done = sum(k in last for k in keys)
    note = (f"{done} of {len(keys)} checks have run. Each cell: the check's values, or the reason it failed; "
            "unknown when DNS or the network stopped it.")  # fmt: skip
    return StatusSection("Deliverability posture", tuple(tables), note=note)
