"""The probe message: a random token, an HMAC-signed tag, a unique body, optional DKIM signature.

The token (128 bits from the OS CSPRNG, 26 base32 characters ``[a-z2-7]``) appears in three places:

* ``Message-ID: <mp.LOCATION.TOKEN.MAC@domain>``: MAC is an HMAC of the token and the location, so a
  reply that only quotes our Message-ID in In-Reply-To/References (an autoresponder's report) can still
  be proven ours, and from which prober;
* ``Subject: mailpulse probe NAME TOKEN``, for humans searching a mailbox;
* ``X-Mailpulse-Probe: v=1; id=TOKEN; probe=NAME; loc=LOCATION; ts=UNIX; sig=HMAC``: the signature
  covers id, probe, location and time, so nobody without the key can make mailpulse count (or delete) a
  message.

The location (``probes.location``) is in both because probers in several places may share one mailbox
and one key: each one consumes, counts and sweeps only messages of its own location. Messages from
before locations existed (no ``loc=``, ``<mp.TOKEN.MAC@...>``) belong to the default location.

Base32 without ``_`` or ``+`` because some IMAP servers mangle those in searches and Gmail's tokenizer
splits on them. The body carries a fresh nonce: identical bodies are what greylisting and bulk filters
key on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formatdate
from functools import cache

TAG_HEADER = "X-Mailpulse-Probe"
# A location is a short lowercase token: it goes into labels, the Message-ID and the tag, and IMAP
# servers and Gmail's tokenizer leave [a-z0-9-] alone.
LOCATION_CHARS = "[a-z0-9][a-z0-9-]{0,31}"
LOCATION_RE = re.compile(LOCATION_CHARS)  # use with fullmatch
DEFAULT_LOCATION = "default"
_TOKEN_CHARS = "[a-z2-7]"  # noqa: S105 - the base32 alphabet, not a password
TOKEN_RE = re.compile(rf"\b({_TOKEN_CHARS}{{26}})\b")
# <mp.LOCATION.TOKEN.MAC@domain>, also when quoted in In-Reply-To/References or a report body
# the location part is optional: Message-IDs of earlier versions have none
MSGID_RE = re.compile(rf"<mp\.(?:({LOCATION_CHARS})\.)?({_TOKEN_CHARS}{{26}})\.({_TOKEN_CHARS}{{16}})@[^>\s]+>")
_TAG_FIELD_RE = re.compile(r"\s*([a-z]+)\s*=\s*([^;\s]*)\s*")
# Headers mailpulse writes itself; a probe's extra headers may not replace them.
OWN_HEADERS = frozenset(h.lower() for h in (
    "From", "To", "Subject", "Date", "Message-ID", TAG_HEADER, "Auto-Submitted", "X-Auto-Response-Suppress",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "DKIM-Signature",
))  # fmt: skip
DKIM_SIGNED = (b"from", b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
               b"x-mailpulse-probe", b"auto-submitted")  # fmt: skip  # "from" twice: oversigned


def new_token() -> str:
    return _b32(secrets.token_bytes(16))


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _mac(key: bytes, *parts: str, size: int) -> str:
    digest = hmac.new(key, "|".join(parts).encode(), hashlib.sha256).digest()
    return _b32(digest[:size])


def _mid_mac(key: bytes, token: str, location: str | None) -> str:
    # no location: the Message-ID format of earlier versions, still recognised
    parts = ("mid", token) if location is None else ("mid", token, location)
    return _mac(key, *parts, size=10)


def message_id(key: bytes, token: str, domain: str, location: str = DEFAULT_LOCATION) -> str:
    return f"<mp.{location}.{token}.{_mid_mac(key, token, location)}@{domain}>"


def tokens_in(text: str, key: bytes, location: str = DEFAULT_LOCATION) -> list[str]:
    """Tokens of genuine probe Message-IDs of ``location`` quoted anywhere in ``text`` (MAC checked);
    another location's probes are not ours to count or sweep."""
    found = []
    for m in MSGID_RE.finditer(text):
        stated, token, mac = m.group(1), m.group(2), m.group(3)
        if (stated or DEFAULT_LOCATION) == location and hmac.compare_digest(mac, _mid_mac(key, token, stated)):
            found.append(token)
    return found


@dataclass(frozen=True, slots=True)
class Tag:
    token: str
    probe: str
    sent: int  # unix time the probe was built
    location: str = DEFAULT_LOCATION


def _tag_mac(key: bytes, token: str, probe: str, sent: str, location: str | None) -> str:
    if location is None:  # a tag of an earlier version, without loc=
        return _mac(key, "tag", token, probe, sent, size=16)
    return _mac(key, "tag", token, probe, sent, location, size=16)


def make_tag(key: bytes, token: str, probe: str, sent: int, location: str = DEFAULT_LOCATION) -> str:
    sig = _tag_mac(key, token, probe, str(sent), location)
    return f"v=1; id={token}; probe={probe}; loc={location}; ts={sent}; sig={sig}"


def parse_tag(value: str, key: bytes) -> Tag | None:
    """The tag if ``value`` is an X-Mailpulse-Probe header signed with ``key``, else None."""
    unfolded = value.replace("\r\n", "").replace("\n", "")
    fields: dict[str, str] = {m.group(1): m.group(2) for m in _TAG_FIELD_RE.finditer(unfolded)}
    token, probe, ts, sig = (fields.get(k, "") for k in ("id", "probe", "ts", "sig"))
    location = fields.get("loc")
    if fields.get("v") != "1" or not TOKEN_RE.fullmatch(token) or not ts.isdigit() or not sig:
        return None
    if location is not None and not LOCATION_RE.fullmatch(location):
        return None
    if not hmac.compare_digest(sig, _tag_mac(key, token, probe, ts, location)):
        return None
    return Tag(token, probe, int(ts), location or DEFAULT_LOCATION)


@dataclass(frozen=True)
class Probe:
    """One built probe message and what identifies it."""

    token: str
    message_id: str
    data: bytes  # CRLF line ends, ready for DATA


def build(*, key: bytes, probe: str, mail_from: str, rcpt: str, extra_headers: dict[str, str] | None = None,
          body_lines: tuple[str, ...] = (), dkim_sign: DkimKey | None = None, now: float | None = None,
          token: str | None = None, location: str = DEFAULT_LOCATION) -> Probe:  # fmt: skip
    token = token or new_token()
    sent = int(now if now is not None else time.time())
    domain = mail_from.rpartition("@")[2] or "localhost"
    mid = message_id(key, token, domain, location)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = mail_from
    msg["To"] = rcpt
    msg["Subject"] = f"mailpulse probe {probe} {token}"
    msg["Date"] = formatdate(sent, usegmt=True)
    msg["Message-ID"] = mid
    msg[TAG_HEADER] = make_tag(key, token, probe, sent, location)
    # RFC 3834: an automatic message; vacation responders must not answer it, filters may relax.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"  # Exchange's own switch for out-of-office replies
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    nonce = secrets.token_hex(16)
    when = format_datetime(datetime.fromtimestamp(sent, UTC))
    text = [
        "This message tests mail delivery end to end. It was sent automatically by mailpulse",
        "and will be deleted from the receiving mailbox by it. No action is needed.",
        "",
        f"probe: {probe}",
        f"location: {location}",
        f"sent: {when}",
        f"nonce: {nonce}",
        *body_lines,
    ]
    msg.set_content("\n".join(text) + "\n", charset="us-ascii", cte="7bit")
    data = msg.as_bytes()
    if dkim_sign is not None:
        data = dkim_sign.sign(data)
    return Probe(token, mid, data)


@dataclass(frozen=True)
class DkimKey:
    """Probe-side DKIM signing (relaxed/relaxed, From oversigned) with a key read once."""

    domain: str
    selector: str
    key_file: str

    def sign(self, data: bytes) -> bytes:
        import dkim  # noqa: PLC0415 - dkimpy (and dnspython) load only when a route signs probes itself

        header = dkim.sign(
            data, self.selector.encode(), self.domain.encode(), _read_key(self.key_file),
            canonicalize=(b"relaxed", b"relaxed"), include_headers=list(DKIM_SIGNED), linesep=b"\r\n",
        )  # fmt: skip
        return bytes(header) + data


@cache
def _read_key(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()
