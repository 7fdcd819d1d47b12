"""Delivery agents: smtp, lmtp, local, virtual, pipe, error, retry, discard.

All of them log the same delivery line; smtp and lmtp also log connection failures, non-final replies
and TLS. Delays are kept per stage (``delays=a/b/c/d``: before the queue manager, in the queue manager,
connection setup, transmission).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from mailpulse.parsers.numbers import MAX_SECONDS, decimal, decimals4
from mailpulse.parsers.postfix.common import is_queue_id, parse_access_action, parse_tls, reply_codes
from mailpulse.parsers.postfix.events import ConnectFailure, Delivery, LogMessage, PostfixEvent, RemoteReply, TlsFailure
from mailpulse.parsers.postfix.providers import INTERNAL, LOCAL, NONE, OTHER, ProviderTable
from mailpulse.parsers.postfix.vocab import ACTIONS, DELIVERY_STATUSES, TLS_LEVELS, ReplyClassifier, bounded

# Parsed with partition() rather than one regex: on CPython 3.11 the partition chain costs about half.
# 5270320179: to=<hebj@telia.com>, [orig_to=<x>, ]relay=mail.telia.com[81.236.60.210]:25, [conn_use=2, ]
#   delay=2017, delays=0.1/2017/0.03/0.05, [tls=dane, ]dsn=2.0.0, status=sent (250 2.0.0 Ok)

# connect to mx.example.net[192.0.2.1]:25: Connection refused
CONNECT_REASONS = (
    ("Connection timed out", "timeout"),
    ("Connection refused", "refused"),
    ("No route to host", "no_route"),
    ("Network is unreachable", "unreachable"),
    ("Connection reset", "reset"),
)


class DeliveryParser:
    """Parse delivery-agent lines.

    ``classify_reason`` and ``classify_blocklist`` map reply text to bounded classes;
    ``relay_rules`` are ``(regex, class)`` pairs tried on the relay host before the built-in classes.
    """

    def __init__(
        self,
        classify_reason: ReplyClassifier,
        classify_blocklist: ReplyClassifier,
        relay_rules: Iterable[tuple[str, str]] = (),
        providers: ProviderTable | None = None,
    ) -> None:
        self._reason = classify_reason
        self._blocklist = classify_blocklist
        self._relay_rules = tuple((re.compile(p).search, name) for p, name in relay_rules)
        self._providers = providers or ProviderTable()
        # relay as logged -> (relay_class, provider); relays repeat, so each is classified once
        self._relay_cache: dict[str, tuple[str, str]] = {}
        self._host_cache: dict[str, str] = {}  # host name alone (remote replies) -> provider

    def __call__(self, ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
        head, sep, rest = msg.partition(": ")
        if sep and is_queue_id(head):
            if rest[:3] == "to=":
                return self._delivery(ts, service, daemon, head, rest)
            return self._queue_line(ts, service, daemon, head, rest)
        if msg[:11] == "connect to ":
            return ConnectFailure(ts, service, daemon, _connect_reason(msg))
        if " TLS connection established " in msg:
            return parse_tls(ts, service, daemon, msg)
        if msg.startswith("discarding EHLO keywords"):
            return LogMessage(ts, service, daemon, "info", "protocol")
        if msg.startswith("certificate verification failed for "):
            return LogMessage(ts, service, daemon, "info", "tls")
        return parse_tls(ts, service, daemon, msg)

    def _delivery(self, ts: str, service: str, daemon: str, qid: str, rest: str) -> Delivery | None:
        _, sep, tail = rest.partition(", relay=")
        if not sep:
            return None
        relay, _, tail = tail.partition(", ")
        if tail[:9] == "conn_use=":
            tail = tail.partition(", ")[2]
        if tail[:6] != "delay=":
            return None
        delay, _, tail = tail[6:].partition(", ")
        if tail[:7] != "delays=":
            return None
        delays_raw, _, tail = tail[7:].partition(", ")
        tls = ""
        if tail[:4] == "tls=":
            tls, _, tail = tail[4:].partition(", ")
            tls = bounded(_tls_level(tls), TLS_LEVELS)
        if tail[:4] != "dsn=":
            return None
        dsn, _, tail = tail[4:].partition(", ")
        if tail[:7] != "status=" or dsn[1:2] != ".":
            return None
        status, _, text = tail[7:].partition(" ")
        seconds = decimal(delay, MAX_SECONDS)
        delays = decimals4(delays_raw, MAX_SECONDS)
        if seconds is None or delays is None:  # unreadable or out of range: not a line we can count
            return None
        reason = blocklist = next_qid = ""
        forwarded = False
        classes = self._relay_cache.get(relay)
        if classes is None:
            classes = self._relay_class(relay)
        relay_class, provider = classes
        if daemon in _LOCAL_AGENTS:
            provider = LOCAL  # lmtp to Dovecot on 127.0.0.1:24 is a mailbox here, not a hop
        if status != "sent":
            # Postfix's dsn= is the remote's enhanced status code, or one it derived (X.0.0 when none)
            reason = self._reason(text, dsn)
            if reason == "blocklisted":
                blocklist = self._blocklist(text)
            if provider == NONE:
                # relay=none: the host we failed to reach is in the text ("connect to mx[ip]:25: ...")
                provider = self._text_provider(text)
        elif text[:14] == "(forwarded as ":
            # local(8) forwarded to another address: "(forwarded as 7A1B2C3D)"
            next_qid, forwarded = text[14:].partition(")")[0], True
        elif relay_class in _FILTER_RELAYS or provider == INTERNAL:
            # a content filter on this host: "(250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as X)"
            _, sep, after = text.rpartition("queued as ")
            if sep:
                next_qid = after.partition(")")[0].strip()
        return Delivery(
            ts,
            service,
            daemon,
            qid,
            status if status in DELIVERY_STATUSES else bounded(status.lower(), DELIVERY_STATUSES),
            relay_class,
            seconds,
            delays,
            dsn,
            tls,
            reason,
            blocklist,
            next_qid,
            forwarded,
            provider,
        )

    def _queue_line(self, ts: str, service: str, daemon: str, qid: str, rest: str) -> PostfixEvent | None:
        # host mx[1.2.3.4] said: 451-4.7.1 Greylisted, try again (in reply to RCPT TO command)
        # host mx[1.2.3.4] refused to talk to me: 554 5.7.1 blocked
        if rest.startswith("host "):
            _, sep, reply = rest.partition(" said: ")
            if not sep:
                # a refused greeting is a blocklisting only when its text says so (classified like any reply)
                _, sep, reply = rest.partition(" refused to talk to me: ")
                if not sep:
                    return None
            code, dsn = reply_codes(reply)
            reason = self._reason(reply, dsn or code)
            return RemoteReply(
                ts,
                service,
                daemon,
                qid,
                reply[:3],
                reason,
                self._blocklist(reply) if reason == "blocklisted" else "",
                self._host_provider(rest[5:].partition("[")[0]),
            )
        # lost connection with mx[1.2.3.4] while receiving the initial server greeting
        # conversation with mx[1.2.3.4] timed out while sending message body
        # SASL authentication failed; server mx[1.2.3.4] said: 535 5.7.8 Error: authentication failed
        if rest.startswith("SASL authentication failed"):
            reply = rest.partition(" said: ")[2]
            return RemoteReply(ts, service, daemon, qid, reply[:3], "authentication", "")
        if rest.startswith("lost connection with "):
            return ConnectFailure(ts, service, daemon, "lost_connection")
        if rest.startswith("conversation with "):
            return ConnectFailure(ts, service, daemon, "timeout" if " timed out " in rest else "other")
        if rest.startswith("Cannot start TLS") or "TLS is required, but" in rest:
            return TlsFailure(ts, service, daemon, "outbound")
        # smtp_header_checks / smtp_body_checks: "QID: replace: body old text: new text"
        if rest.partition(": ")[0] in ACTIONS:
            return parse_access_action(ts, service, daemon, f"{qid}: {rest}", self._reason)
        if rest.startswith(("enabling PIX workarounds", "breaking line")):
            return LogMessage(ts, service, daemon, "info", "protocol")
        if rest.startswith(("server dropped connection", "server unavailable")):
            return ConnectFailure(ts, service, daemon, "no_greeting")
        return None

    def _relay_class(self, relay: str) -> tuple[str, str]:
        cls = self._classify_relay(relay)
        host = relay.partition("[")[0]
        if cls == "none":
            provider = NONE
        elif cls in ("local", "socket"):
            provider = LOCAL
        elif cls in ("loopback", "private"):
            provider = INTERNAL
        else:
            provider = self._providers.classify(host)
        if len(self._relay_cache) > 8192:  # relays are many on a busy MTA; keep memory flat
            self._relay_cache.clear()
        classes = self._relay_cache[relay] = (cls, provider)
        return classes

    def _host_provider(self, host: str) -> str:
        provider = self._host_cache.get(host)
        if provider is None:
            provider = _ip_provider(host) or self._providers.classify(host)
            if len(self._host_cache) > 8192:
                self._host_cache.clear()
            self._host_cache[host] = provider
        return provider

    def _text_provider(self, text: str) -> str:
        # "(connect to mx.example.net[192.0.2.1]:25: Connection timed out)", "(host mx[ip] said: ...)"
        for marker in ("connect to ", "host "):
            _, sep, after = text.partition(marker)
            if sep:
                host = after.partition("[")[0]
                if host and " " not in host:
                    return self._host_provider(host)
        return NONE

    def _classify_relay(self, relay: str) -> str:
        if relay == "none":
            return "none"
        host, sep, inner = relay.partition("[")
        if not sep:
            return "local"  # relay=local, relay=virtual, relay=dovecot (a pipe transport name)
        for search, name in self._relay_rules:
            if search(host):
                return name
        address = inner.partition("]")[0]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "socket"  # relay=host[private/dovecot-lmtp] or an absolute socket path
        if ip.is_loopback:
            return "loopback"
        if ip.is_link_local or any(ip in net for net in _PRIVATE_NETWORKS if net.version == ip.version):
            return "private"
        return "remote"


# Agents that deliver to a mailbox on this host, whatever their relay says
_LOCAL_AGENTS = frozenset({"local", "virtual", "pipe", "lmtp"})

# Relays that may be a content filter re-injecting into this Postfix (amavis on 127.0.0.1:10024, ...)
_FILTER_RELAYS = frozenset({"loopback", "private", "socket"})

# Site-internal address space (RFC 1918, shared CGN space, ULA). Not ipaddress's is_private, which also
# counts documentation and reserved ranges as private.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def _ip_provider(host: str) -> str | None:
    """An address instead of a host name ("connect to 127.0.0.1[127.0.0.1]:1"): internal or other."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_loopback or ip.is_link_local or any(ip in net for net in _PRIVATE_NETWORKS if net.version == ip.version):
        return INTERNAL
    return OTHER


def _connect_reason(msg: str) -> str:
    for text, reason in CONNECT_REASONS:
        if text in msg:
            return reason
    return "other"


def _tls_level(raw: str) -> str:
    # tls=dane/!requiretls:nocertmatch, tls=may?, tls=verify:dane -> the level before any suffix
    end = len(raw)
    for ch in ":?/":
        i = raw.find(ch)
        if 0 <= i < end:
            end = i
    return raw[:end]
