"""What the receiving side said about a probe: Authentication-Results, spam headers, Microsoft's verdicts.

Authentication-Results (RFC 8601) are parsed with authres first; it rejects real-world headers
(Microsoft's have no authserv-id and stray ``; domain;`` tokens, Yahoo's end in ``;``), so a lenient
tokenizer takes over when it raises. The trusted header is the one whose authserv-id matches the
target's ``authserv_id`` (shell pattern, e.g. ``*.messagingengine.com``), else the topmost one: a
receiver prepends its header, while the sender's own outbound filter's headers travel further down.

Spam headers: SpamAssassin-style headers are prepended by the receiver (first occurrence wins);
rspamd's milter appends its headers at the bottom, so for ``X-Spamd-Result``/``X-Rspamd-*`` the last
occurrence is the newest hop's.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

import authres

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
_SCL = re.compile(r"\bSCL:(-?\d+)")
_DEST = re.compile(r"\bdest:([A-Z])\b")


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
    text = _ARC_INSTANCE.sub("", unfold(value))  # ARC-Authentication-Results: i=1; ...
    try:
        parsed = _AUTHRES.parse_value(text)
    except Exception:  # authres raises SyntaxError and friends on real-world headers
        return _lenient(text)
    results = tuple(
        AuthResult(r.method.lower(), str(r.result).lower(),
                   {f"{p.type}.{p.name}".lower(): str(p.value) for p in r.properties})
        for r in parsed.results
    )  # fmt: skip
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
    """The receiver's Authentication-Results among ``headers`` (top to bottom)."""
    parsed = [parse_auth_results(h) for h in headers]
    if authserv_id:
        pattern = authserv_id.lower()
        for header in parsed:
            if header.authserv_id and fnmatch.fnmatchcase(header.authserv_id.lower(), pattern):
                return header
        return None  # the expected receiver did not vouch for anything: report "none"
    return parsed[0] if parsed else None


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


def spam_verdict(msg: Message) -> SpamVerdict:
    score: float | None = None
    engine: str | None = None
    flagged: bool | None = None

    def take(value: float | None, name: str) -> None:
        nonlocal score, engine
        if score is None and value is not None:
            score, engine = value, name

    spamd = _last(msg, "X-Spamd-Result")
    if spamd and (m := _SPAMD_RESULT.match(unfold(spamd))):
        take(float(m.group(2)), "rspamd")
        flagged = m.group(1) == "True"
    take(_number(_last(msg, "X-Rspamd-Score")), "rspamd")
    status = msg.get("X-Spam-Status")
    if status and (m := _SA_STATUS.match(unfold(str(status)))):
        take(float(m.group(2)), "spamassassin")
        flagged = m.group(1).lower() == "yes" if flagged is None else flagged
    take(_number(msg.get("X-Spam-Score")), "spamassassin")
    scl = _number(msg.get("X-MS-Exchange-Organization-SCL"))
    if scl is None and (m := _SCL.search(str(msg.get("X-Forefront-Antispam-Report", "")))):
        scl = float(m.group(1))
    take(scl, "microsoft_scl")
    if scl is not None and flagged is None:
        flagged = scl >= 5
    for name in ("X-Spam", "X-Spam-Flag"):
        value = msg.get(name)
        if value is not None:
            flagged = str(value).strip().lower() in ("yes", "true") or bool(flagged)
    dest = None
    if m := _DEST.search(str(msg.get("X-Microsoft-Antispam-Mailbox-Delivery", ""))):
        dest = {"J": "junk", "I": "inbox", "C": "custom"}.get(m.group(1), "other")
    action = _last(msg, "X-Rspamd-Action")
    return SpamVerdict(score, engine, flagged, unfold(action).lower() if action else None, dest)


def _last(msg: Message, name: str) -> str | None:
    values = msg.get_all(name)
    return str(values[-1]) if values else None


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
    auth: dict[str, str]  # method -> result, from the trusted receiver header
    authserv_id: str | None
    auth_lenient: bool
    spam: SpamVerdict


def judge(msg: Message, authserv_id: str | None) -> Verdict:
    headers = [str(h) for h in msg.get_all("Authentication-Results") or []]
    header = trusted_header(headers, authserv_id)
    auth = summarize(header)
    if "arc" not in auth:  # Gmail states ARC only in its ARC-Authentication-Results
        arc_headers = [str(h) for h in msg.get_all("ARC-Authentication-Results") or []]
        arc = summarize(trusted_header(arc_headers, authserv_id))
        if "arc" in arc:
            auth["arc"] = arc["arc"]
    return Verdict(auth, header.authserv_id if header else None, bool(header and header.lenient), spam_verdict(msg))
