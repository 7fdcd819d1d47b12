"""Which headers of a received message the *receiving* side wrote: Received hops, domains, RFC 2047.

A message arrives with headers from every hop: the receiver's on top, the sender's own (its outbound
spam filter, its Authentication-Results) further down. The receiver's part is found from the Received
lines, read top to bottom:

- internal hops (a gateway without a domain, ``from`` and ``by`` in the same domain, localhost, a line
  without ``from``: LMTP, Gmail's ``Received: by 2002:...``) keep the receiver's part open;
- the first hop from outside is where the receiver accepted the message (its *boundary*); milters
  insert their headers just below that line (Postfix hides its own Received from them), so the
  receiver's part ends at the next Received line after the boundary.

Without any hop from outside (the lab: submission and delivery on one server) the whole header is the
receiver's. Headers appended at the bottom (rspamd's milter, Microsoft's X-MS-Exchange-*) are outside
that part by position; their callers decide by content (a queue id, ``DIR:INB``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message

_FROM = re.compile(r"^\s*from\s+(\S+)(?:\s+\(([^)]*)\))?", re.IGNORECASE)
_BY = re.compile(r"\bby\s+(\S+)", re.IGNORECASE)
_ID = re.compile(r"\bid\s+<?([A-Za-z0-9._-]+)>?", re.IGNORECASE)
_LOCAL = re.compile(r"^(?:\[?127\.\d+\.\d+\.\d+\]?|\[?(?:ipv6:)?::1\]?|localhost(?:\.localdomain)?)$", re.IGNORECASE)
# second-level labels under which registrations happen (example.co.uk, example.com.au)
_SLD = frozenset({"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go"})
# one provider, several domains in its own Received lines and authserv-ids
_SAME = {"office365.com": "outlook.com", "exchangelabs.com": "outlook.com", "me.com": "icloud.com",
         "mac.com": "icloud.com", "googlemail.com": "google.com", "protonmail.com": "protonmail.ch",
         "proton.me": "protonmail.ch", "fastmail.com": "messagingengine.com", "ik.me": "infomaniak.com",
         "yahoodns.net": "yahoo.com"}  # fmt: skip
MAX_HEADERS = 500  # a header block longer than this is not walked further (hostile input)


def header_text(value: object) -> str:
    """A header value as text: RFC 2047 encoded words decoded (Microsoft encodes Authentication-Results
    when the From domain is not ASCII), folding undone. Undecodable words stay as they are."""
    text = str(value)
    if "=?" in text:
        with contextlib.suppress(ValueError, LookupError, UnicodeError, MessageError):
            text = str(make_header(decode_header(text)))
    return re.sub(r"\r?\n[ \t]+", " ", text).replace("\r", "").replace("\n", " ").strip()


def registrable(host: str | None) -> str | None:
    """``mx6.messagingengine.com`` → ``messagingengine.com``, ``mx.example.co.uk`` → ``example.co.uk``.
    A heuristic (no public suffix list): enough to tell one provider's hosts from another's."""
    if not host:
        return None
    labels = [x for x in host.strip("[]. ").lower().split(".") if x]
    if len(labels) < 2 or all(x.isdigit() for x in labels):
        return None
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SLD else 2
    domain = ".".join(labels[-keep:])
    return _SAME.get(domain, domain)


@dataclass(frozen=True)
class Hop:
    index: int  # position among all header fields
    from_host: str | None
    by_host: str | None
    queue_id: str | None

    def internal(self, receiver_domains: frozenset[str]) -> bool:
        if self.from_host is None or self.by_host is None or "." not in self.by_host:
            return True  # "Received: by ..." (Gmail, LMTP), a gateway without a domain
        if _LOCAL.match(self.from_host) or "." not in self.from_host.strip("[]"):
            return True
        origin = registrable(self.from_host)
        return origin is not None and (origin == registrable(self.by_host) or origin in receiver_domains)


def parse_hop(index: int, value: str) -> Hop:
    m = _FROM.match(value)
    from_host = None
    if m:
        # the receiver's own view of the client, "(mail.example.org [192.0.2.1])", beats the HELO name the
        # client claimed; "(unknown [192.0.2.1])" and bare addresses name nothing
        comment = (m.group(2) or "").split()
        seen = comment[0].rstrip(".") if comment else ""
        from_host = seen if seen and ("." in seen.strip("[]") or _LOCAL.match(seen)) and seen[0] != "[" else m.group(1)
    by = _BY.search(value)
    qid = _ID.search(value[by.end() :] if by else value)
    return Hop(index, from_host, by.group(1) if by else None, qid.group(1) if qid else None)


@dataclass(frozen=True)
class Layout:
    """Where the receiver's own part of the header block ends, and the ids its hops gave the message."""

    fields: list[tuple[str, str]]  # (lower-case name, decoded value), top to bottom
    end: int  # fields[:end] are the receiver's
    queue_ids: frozenset[str]

    def receiver(self, name: str) -> list[str]:
        """Values of ``name`` (lower case) the receiver wrote, top to bottom."""
        return [v for n, v in self.fields[: self.end] if n == name]

    def everywhere(self, name: str) -> list[str]:
        return [v for n, v in self.fields if n == name]


def layout(msg: Message, receiver_domains: frozenset[str] = frozenset()) -> Layout:
    fields = [(str(n).lower(), header_text(v)) for n, v in msg.items()[:MAX_HEADERS]]
    hops = [parse_hop(i, v) for i, (n, v) in enumerate(fields) if n == "received"]
    ids: set[str] = set()
    for k, hop in enumerate(hops):
        if hop.queue_id:
            ids.add(hop.queue_id)
        if not hop.internal(receiver_domains):
            end = hops[k + 1].index if k + 1 < len(hops) else len(fields)
            return Layout(fields, end, frozenset(ids))
    return Layout(fields, len(fields), frozenset(ids))  # no hop from outside: all of it is the receiver's
