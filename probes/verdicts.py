"""What the receiving side said about a probe: Authentication-Results, spam headers, Microsoft's verdicts.

Authentication-Results (RFC 8601) are parsed with authres first; it rejects real-world headers
(Microsoft's have no authserv-id and stray ``; domain;`` tokens, Yahoo's end in ``;``), so a lenient
tokenizer takes over when it raises. Values are RFC 2047-decoded first (Microsoft encodes the header
when the From domain is not ASCII).

Trust: many receivers split their results over several headers (Fastmail: one for x-csa/x-me-sender/
x-ptr, one each for bimi, arc and the rest; iCloud: one per method from dkim-verifier/spf/dmarc/arc
.icloud.com; Proton: one per method from mailinNNN.protonmail.ch; Posteo, Infomaniak). Every header
of the receiver's domain is merged: the domain of the target's ``authserv_id`` (shell pattern) when
set, else of the receiver's topmost header (see :mod:`probes.hops` for the receiver's part of the
header block). Microsoft writes no authserv-id: its topmost header is taken alone.

Spam headers: only the receiver's count. SpamAssassin-style headers must be in the receiver's part
(the sender's own filter's X-Spam-Status sits below the receiver's Received lines); rspamd's milter
appends at the bottom, so its headers count when they are in the receiver's part or carry the queue id
of one of the receiver's Received lines; Microsoft's X-Forefront-Antispam-Report counts unless it says
``DIR:OUT`` (a sending tenant's). Microsoft junked the message when ``dest:J``, ``SFV:SPM`` (or
SKS/SKB/BLK) or ``OFR:SpamFilterAuthJ`` say so, whatever the SCL.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

import authres

from mailpulse.probes.hops import Layout, header_text, layout, registrable

METHODS = ("dkim", "spf", "dmarc", "arc", "compauth")
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy", "bestguesspass",
           "softpass")  # fmt: skip
SPAM_ENGINES = ("rspamd", "spamassassin", "microsoft_scl")

_AUTHRES = authres.all_features()
_ARC_INSTANCE = re.compile(r"^\s*i\s*=\s*\d+\s*;\s*")
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")
_METHOD = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*=\s*([A-Za-z0-9_-]+)")
_PROP = re.compile(r"([A-Za-z0-9-]+)\.([A-Za-z0-9._-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)")
_FLOAT = r"(-?\d+(?:\.\d+)?)"
_SPAMD_RESULT = re.compile(rf"^\s*\w+:\s*(True|False)\s*\[\s*{_FLOAT}\s*/")
_SA_STATUS = re.compile(rf"^\s*(Yes|No)\b.*?\bscore={_FLOAT}", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class AuthResult:
    method: str
    result: str
    props: dict[str, str] = field(default_factory=dict)  # "header.d" -> "example.test"


@dataclass(frozen=True)
class AuthHeader:
    authserv_id: str | None
    results: tuple[AuthResult, ...]
    lenient: bool  # authres refused it; the fallback parsed it
    raw: str


def unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).replace("\r", "").replace("\n", " ").strip()


def parse_auth_results(value: str) -> AuthHeader:
    text = _ARC_INSTANCE.sub("", header_text(value))  # ARC-Authentication-Results: i=1; ...
    try:
        parsed = _AUTHRES.parse_value(text)
        # inside the try: authres also accepts shapes whose results lack fields ("...; dkim=pass...; none"
        # gives a NoneAuthenticationResult without a method among the others)
        results = tuple(
            AuthResult(r.method.lower(), str(r.result).lower(),
                       {f"{p.type}.{p.name}".lower(): str(p.value) for p in r.properties})
            for r in parsed.results
        )  # fmt: skip
    except Exception:  # authres raises SyntaxError and friends on real-world headers
        return _lenient(text)
    return AuthHeader(parsed.authserv_id, results, False, text)


def _lenient(text: str) -> AuthHeader:
    """Split on ``;`` outside comments, keep ``method=result`` and ``ptype.prop=value``, skip the rest."""
    bare = _COMMENT.sub(lambda m: " " * len(m.group(0)), text)  # same offsets, no ';' inside comments
    segments, start = [], 0
    for i, ch in enumerate(bare):
        if ch == ";":
            segments.append(bare[start:i])
            start = i + 1
    segments.append(bare[start:])
    authserv_id = None
    if segments and "=" not in segments[0]:
        first = segments.pop(0).split()
        authserv_id = first[0] if first else None
    results = []
    for seg in segments:
        m = _METHOD.match(seg)
        if not m or "." in m.group(1):  # "smtp.mailfrom=..." after a stray ';' is not a method
            continue
        props = {f"{p[0]}.{p[1]}".lower(): p[2].strip('"') for p in _PROP.findall(seg[m.end() :])}
        results.append(AuthResult(m.group(1).lower(), m.group(2).lower(), props))
    return AuthHeader(authserv_id, tuple(results), True, text)


def trusted_header(headers: list[str], authserv_id: str | None) -> AuthHeader | None:
    """The receiver's Authentication-Results among ``headers`` (top to bottom), merged into one."""
    return merge_trusted([parse_auth_results(h) for h in headers], authserv_id)


def merge_trusted(parsed: list[AuthHeader], authserv_id: str | None, anchor: AuthHeader | None = None,
                  ) -> AuthHeader | None:  # fmt: skip
    """Merge every header of the receiver's domain.

    With ``authserv_id`` (a shell pattern), the headers it matches set the domain; without it the
    ``anchor`` (the topmost header in the receiver's part) or else the topmost header does. A header
    without authserv-id (Microsoft) is never merged with others.
    """
    if authserv_id:
        pattern = authserv_id.lower()
        matched = [h for h in parsed if h.authserv_id and fnmatch.fnmatchcase(h.authserv_id.lower(), pattern)]
        if not matched:
            return None  # the expected receiver did not vouch for anything: report "none"
        first = matched[0]
    else:
        if not parsed:
            return None
        first = anchor if anchor is not None else parsed[0]
        if first.authserv_id is None:
            return first
    domain = registrable(first.authserv_id)
    same = [h for h in parsed if h is first or (domain is not None and registrable(h.authserv_id) == domain)]
    if len(same) == 1:
        return first
    results = tuple(r for h in same for r in h.results)
    raw = " | ".join(h.raw for h in same)
    return AuthHeader(first.authserv_id, results, any(h.lenient for h in same), raw)


def summarize(header: AuthHeader | None) -> dict[str, str]:
    """Method → bounded result. Several results for one method (two signatures): any pass wins."""
    out: dict[str, str] = {}
    if header is None:
        return out
    for r in header.results:
        if r.method not in METHODS:
            continue
        result = r.result if r.result in RESULTS else "other"
        if out.get(r.method) != "pass":
            out[r.method] = "pass" if result == "pass" else out.get(r.method, result)
    return out


@dataclass(frozen=True)
class SpamVerdict:
    score: float | None = None
    engine: str | None = None  # rspamd | spamassassin | microsoft_scl
    flagged: bool | None = None  # the receiver's filter called it spam
    action: str | None = None  # rspamd action, e.g. "add header"
    provider_dest: str | None = None  # Microsoft's dest:J/I/C → junk/inbox/custom


_MS_JUNK_SFV = frozenset({"SPM", "SKS", "SKB", "BLK"})  # spam, by transport rule, blocked sender, blocked by user
_MS_JUNK_OFR = frozenset({"SpamFilterAuthJ"})  # junked for failed sender authentication
_MS_FIELD = re.compile(r"(?:^|;)\s*([A-Za-z]+):([^;]*)")


def spam_verdict(msg: Message, receiver_domains: frozenset[str] = frozenset()) -> SpamVerdict:
    return _spam(layout(msg, receiver_domains))


def _spam(lay: Layout) -> SpamVerdict:
    score: float | None = None
    engine: str | None = None
    flagged: bool | None = None

    def take(value: float | None, name: str) -> None:
        nonlocal score, engine
        if score is None and value is not None:
            score, engine = value, name

    rspamd = _rspamd_headers(lay)
    spamd = _last_of(rspamd, "x-spamd-result")
    if spamd and (m := _SPAMD_RESULT.match(spamd)):
        take(float(m.group(2)), "rspamd")
        flagged = m.group(1) == "True"
    take(_number(_last_of(rspamd, "x-rspamd-score")), "rspamd")
    status = _first(lay.receiver("x-spam-status"))
    if status and (m := _SA_STATUS.match(status)):
        take(float(m.group(2)), "spamassassin")
        flagged = m.group(1).lower() == "yes" if flagged is None else flagged
    take(_number(_first(lay.receiver("x-spam-score"))), "spamassassin")
    ms = _microsoft(lay)
    take(ms.scl, "microsoft_scl")
    if ms.scl is not None and flagged is None:
        flagged = ms.scl >= 5
    if ms.junk:
        flagged = True
    for value in (_last_of(rspamd, "x-spam"), _first(lay.receiver("x-spam-flag"))):
        if value is not None:
            flagged = value.strip().lower() in ("yes", "true") or bool(flagged)
    action = _last_of(rspamd, "x-rspamd-action")
    return SpamVerdict(score, engine, flagged, action.lower() if action else None, ms.dest)


def _rspamd_headers(lay: Layout) -> list[tuple[str, str]]:
    """rspamd's headers that are the receiver's: in its part, or (appended at the bottom) all of them when
    an X-Rspamd-Queue-Id names a queue id of the receiver's Received lines; the sender's otherwise."""
    names = ("x-spamd-result", "x-rspamd-score", "x-rspamd-action", "x-spam", "x-rspamd-queue-id")
    mine = [(n, v) for n, v in lay.fields[: lay.end] if n in names]
    if any(n == "x-spamd-result" for n, _ in mine):
        return mine
    if any(v.strip() in lay.queue_ids for v in lay.everywhere("x-rspamd-queue-id")):
        return [(n, v) for n, v in lay.fields if n in names]
    return mine


@dataclass(frozen=True)
class _Microsoft:
    scl: float | None = None
    junk: bool = False
    dest: str | None = None


def _microsoft(lay: Layout) -> _Microsoft:
    """The receiving tenant's verdict. A sending tenant's X-Forefront-Antispam-Report (DIR:OUT) travels
    with the message and says nothing about the receiver; X-Forefront-Antispam-Report-Untrusted is the
    renamed copy of another tenant's and is not read at all."""
    scl = _number(_first(lay.everywhere("x-ms-exchange-organization-scl")))
    junk = False
    for report in lay.everywhere("x-forefront-antispam-report"):
        fields = {k.upper(): v.strip() for k, v in _MS_FIELD.findall(report)}
        if fields.get("DIR", "").upper() == "OUT":
            continue
        if scl is None and (m := re.match(r"-?\d+", fields.get("SCL", ""))):
            scl = float(m.group(0))
        junk = junk or fields.get("SFV", "").upper() in _MS_JUNK_SFV
        break  # the first inbound report is the receiving tenant's
    dest = None
    for delivery in lay.everywhere("x-microsoft-antispam-mailbox-delivery"):
        fields = {k.lower(): v.strip() for k, v in _MS_FIELD.findall(delivery)}
        if "dest" in fields:
            dest = {"J": "junk", "I": "inbox", "C": "custom"}.get(fields["dest"].upper(), "other")
        junk = junk or dest == "junk" or fields.get("ofr", "") in _MS_JUNK_OFR
        break
    return _Microsoft(scl, junk, dest)


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _last_of(fields: list[tuple[str, str]], name: str) -> str | None:
    values = [v for n, v in fields if n == name]
    return values[-1] if values else None


def _number(value: object) -> float | None:
    if value is None:
        return None
    m = re.match(rf"\s*{_FLOAT}", str(value))
    return float(m.group(1)) if m else None


def parse_headers(raw: bytes) -> Message:
    """Headers only, compat32 (keeps folded values as sent; never raises on odd input)."""
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


@dataclass(frozen=True)
class Verdict:
    auth: dict[str, str]  # method -> result, from the trusted receiver headers (merged)
    authserv_id: str | None
    auth_lenient: bool
    spam: SpamVerdict
    spf_domain: str | None = None  # domain of the receiver's SPF smtp.mailfrom (a forwarder's SRS domain)


def spf_domain(header: AuthHeader | None) -> str | None:
    """The domain SPF was checked for: ``smtp.mailfrom`` of the first SPF result (quotes and a local part
    with ``@`` inside, as in SRS addresses, handled by taking what follows the last ``@``)."""
    if header is None:
        return None
    for r in header.results:
        if r.method == "spf":
            value = r.props.get("smtp.mailfrom") or r.props.get("smtp.helo")
            if value:
                return value.strip('"').rpartition("@")[2].lower() or None
    return None


def judge(msg: Message, authserv_id: str | None, receiver_domains: frozenset[str] = frozenset()) -> Verdict:
    """``receiver_domains``: the target's own domains (its IMAP host, its address), to recognise its
    internal Received hops; ``authserv_id``: the configured pattern, if any."""
    domains = receiver_domains | _pattern_domain(authserv_id)
    lay = layout(msg, domains)
    parsed = [parse_auth_results(v) for v in lay.everywhere("authentication-results")]
    anchor = _anchor(lay, parsed, domains)
    header = merge_trusted(parsed, authserv_id, anchor)
    auth = summarize(header)
    # Gmail states ARC only in its ARC-Authentication-Results; a receiver's ARC set repeats its results.
    # Only the receiver's own ARC headers count (an earlier hop's i=1 is not the receiver's verdict).
    arc_parsed = [parse_auth_results(v) for v in lay.everywhere("arc-authentication-results")]
    if header is not None and header.authserv_id is not None:
        domain = registrable(header.authserv_id)
        arc_parsed = [h for h in arc_parsed if registrable(h.authserv_id) == domain]
        arc = summarize(merge_trusted(arc_parsed, authserv_id, arc_parsed[0] if arc_parsed else None))
        for method, result in arc.items():
            auth.setdefault(method, result)
    elif header is None and authserv_id is None:
        arc = summarize(merge_trusted(arc_parsed, None))
        if "arc" in arc:
            auth["arc"] = arc["arc"]
    return Verdict(auth, header.authserv_id if header else None, bool(header and header.lenient), _spam(lay),
                   spf_domain(header))  # fmt: skip


def _anchor(lay: Layout, parsed: list[AuthHeader], domains: frozenset[str]) -> AuthHeader | None:
    """The header that names the receiver when no authserv_id is configured: the topmost one in the
    receiver's part of the header block, else (appended at the bottom, e.g. by rspamd's milter) the topmost
    one of the receiver's own domains, else None (the topmost overall)."""
    count = len(lay.receiver("authentication-results"))
    if count:
        return parsed[0]  # the receiver's part is the top of the block: its first header is the topmost
    return next((h for h in parsed if registrable(h.authserv_id) in domains), None)


def receiver_domains(*hosts_or_addresses: str | None) -> frozenset[str]:
    """The domains of a target's IMAP host and address (``imap.fastmail.com``, ``probe@fastmail.com``)."""
    out = set()
    for item in hosts_or_addresses:
        domain = registrable((item or "").rpartition("@")[2])
        if domain:
            out.add(domain)
    return frozenset(out)


def _pattern_domain(pattern: str | None) -> frozenset[str]:
    """``*.messagingengine.com`` → {messagingengine.com}: the configured receiver's domain."""
    if not pattern:
        return frozenset()
    domain = registrable(pattern.replace("*", "x").replace("?", "x"))
    return frozenset({domain}) if domain else frozenset()
