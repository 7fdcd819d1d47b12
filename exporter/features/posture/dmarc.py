"""DMARC (RFC 9989): the policy record, its tags, report addresses and their authorization.

The record is looked up at ``_dmarc.<domain>`` and, as RFC 9989's DNS tree walk does, at the parent
names up to the top (at most 8 labels), so a subdomain that inherits its organization's policy is
judged by it (``inherited`` says so). ``pct`` is gone from RFC 9989 (``t=y`` replaced ``pct=0``); a
record that still has it is read, its value exported, and a warning given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailpulse.exporter.features.posture.dnsq import Resolver, single_record
from mailpulse.exporter.features.posture.result import CheckFailed

POLICIES = ("none", "quarantine", "reject")
MAX_WALK = 8


@dataclass
class DmarcPolicy:
    p: str
    sp: str
    np: str
    testing: bool
    pct: int | None
    rua: list[str] = field(default_factory=list)
    ruf: list[str] = field(default_factory=list)
    adkim: str = "r"
    aspf: str = "r"
    inherited_from: str = ""
    warnings: list[str] = field(default_factory=list)


def parse_record(text: str) -> DmarcPolicy:
    parts = [p.strip() for p in text.split(";")]
    tags: dict[str, str] = {}
    for i, part in enumerate(parts):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep:
            raise CheckFailed("syntax", f"{part!r} is not tag=value")
        if i == 0 and (name != "v" or value.strip() != "DMARC1"):
            raise CheckFailed("syntax", "must start with v=DMARC1")
        if name in tags:
            raise CheckFailed("syntax", f"{name}= appears twice")
        tags[name] = value.strip()
    p = tags.get("p", "").lower()
    if p not in POLICIES:
        raise CheckFailed("syntax", "p= must be none, quarantine or reject" if p else "p= is missing")
    warnings = []
    values: dict[str, str] = {}
    for key, default in (("sp", p), ("np", "")):
        value = tags.get(key, default).lower()
        if value and value not in POLICIES:
            raise CheckFailed("syntax", f"{key}= must be none, quarantine or reject")
        values[key] = value
    sp = values["sp"]
    np = values["np"] or sp  # RFC 9989 §4.7: np defaults to sp
    testing = tags.get("t", "n").lower()
    if testing not in ("y", "n"):
        raise CheckFailed("syntax", "t= must be y or n")
    pct = None
    if "pct" in tags:
        if not tags["pct"].isdigit() or int(tags["pct"]) > 100:
            raise CheckFailed("syntax", "pct= must be 0..100")
        pct = int(tags["pct"])
        warnings.append("pct= is obsolete in RFC 9989 (use t=y for testing)")
    for key in ("rf", "ri"):
        if key in tags:
            warnings.append(f"{key}= is obsolete in RFC 9989")
    for key in ("adkim", "aspf"):
        if tags.get(key, "r").lower() not in ("r", "s"):
            raise CheckFailed("syntax", f"{key}= must be r or s")
    rua = _uris(tags.get("rua", ""), "rua")
    ruf = _uris(tags.get("ruf", ""), "ruf")
    return DmarcPolicy(p, sp, np, testing == "y", pct, rua, ruf, tags.get("adkim", "r").lower(),
                       tags.get("aspf", "r").lower(), warnings=warnings)  # fmt: skip


def _uris(value: str, key: str) -> list[str]:
    out = []
    for uri in (u.strip() for u in value.split(",") if u.strip()):
        if not uri.lower().startswith("mailto:") or "@" not in uri:
            raise CheckFailed("syntax", f"{key}= holds a URI that is not mailto:user@domain")
        out.append(uri[7:].split("!", 1)[0])  # drop the size limit suffix (!10m)
    return out


async def lookup(resolver: Resolver, domain: str) -> DmarcPolicy:
    labels = domain.rstrip(".").split(".")
    for i in range(min(len(labels) - 1, MAX_WALK)):
        name = ".".join(labels[i:])
        answer = await resolver.query(f"_dmarc.{name}", "TXT")
        records = single_record(answer.texts(), "v=DMARC1")
        if len(records) > 1:
            raise CheckFailed("multiple", f"_dmarc.{name} has {len(records)} DMARC records")
        if records:
            policy = parse_record(records[0])
            policy.inherited_from = name if i else ""
            return policy
    raise CheckFailed("missing", f"no DMARC record at _dmarc.{domain} or its parents")


def external(domain: str, address: str) -> str | None:
    """The report domain when it needs an authorization record (RFC 9989 §3 "external destination")."""
    target = address.rpartition("@")[2].lower().rstrip(".")
    own = domain.lower().rstrip(".")
    if target == own or target.endswith("." + own) or own.endswith("." + target):
        return None
    return target


async def authorized(resolver: Resolver, domain: str, report_domain: str) -> bool:
    answer = await resolver.query(f"{domain}._report._dmarc.{report_domain}", "TXT")
    return bool(single_record(answer.texts(), "v=DMARC1"))
