"""Typed events for Postfix log lines.

Every event carries ``ts`` (the timestamp exactly as logged; see :class:`parsers.syslog.TimestampParser`)
and ``service`` (the bounded service label). Fields documented as "not a label" (queue IDs, message-ids)
are kept for correlation and debugging and never reach a metric.

The classes are ``slots=True`` but not ``frozen=True``: a frozen dataclass sets each field through
``object.__setattr__``, which cost 1.4 µs per six-field event here, about the whole per-line budget.
Treat them as immutable all the same.

String fields that become labels hold values from the enums in :mod:`parsers.postfix.vocab`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PostfixEvent:
    ts: str
    service: str


@dataclass(slots=True)
class SmtpdConnect(PostfixEvent):
    """``connect from host[ip]`` (smtpd)."""


@dataclass(slots=True)
class SmtpdDisconnect(PostfixEvent):
    """``disconnect from host[ip] ehlo=1 mail=1 rcpt=0/1 ... commands=3/4``.

    ``failed`` names the commands with fewer accepted than issued (``rcpt=0/1``), from the bounded set
    of SMTP verbs.
    """

    failed: tuple[str, ...]


@dataclass(slots=True)
class SmtpdAccepted(PostfixEvent):
    """``QID: client=host[ip][, sasl_method=PLAIN, sasl_username=...]``: smtpd queued a message."""

    queue_id: str  # not a label
    sasl_method: str  # "" when not authenticated


@dataclass(slots=True)
class SaslFailure(PostfixEvent):
    """``warning: host[ip]: SASL LOGIN authentication failed: ...``."""

    method: str


@dataclass(slots=True)
class ConnectionLost(PostfixEvent):
    """``lost connection after RCPT``, ``timeout after DATA``, ``too many errors after ...``,
    ``improper command pipelining after ...`` (smtpd)."""

    kind: str  # lost | timeout | too_many_errors | pipelining
    stage: str


@dataclass(slots=True)
class AccessAction(PostfixEvent):
    """An access or content decision: ``NOQUEUE: reject: RCPT from ...``, ``QID: milter-reject: ...``,
    ``QID: hold: header ...``, postscreen's ``NOQUEUE: reject: ...``.

    ``action`` is one of vocab.ACTIONS; ``code`` the three-digit reply code, or ``4xx``/``5xx`` when only
    an enhanced status code was logged (cleanup), or ``""`` for actions without a reply (hold, filter).
    """

    daemon: str
    action: str
    stage: str
    code: str
    dsn: str
    reason: str
    queue_id: str  # "" for NOQUEUE; not a label


@dataclass(slots=True)
class TlsConnection(PostfixEvent):
    """``Trusted TLS connection established to mx[ip]:25: TLSv1.3 with cipher ...`` (and ``from``)."""

    daemon: str
    direction: str  # inbound | outbound
    trust: str  # anonymous | untrusted | trusted | verified
    protocol: str


@dataclass(slots=True)
class TlsFailure(PostfixEvent):
    """``SSL_accept error from ...``, ``SSL_connect error to ...``, ``Cannot start TLS: handshake failure``."""

    daemon: str
    direction: str


@dataclass(slots=True)
class CleanupMessage(PostfixEvent):
    """``QID: message-id=<...>``: cleanup processed a message."""

    queue_id: str  # not a label
    message_id: str  # not a label


@dataclass(slots=True)
class Pickup(PostfixEvent):
    """``QID: uid=0 from=<root>``: a locally submitted message."""

    queue_id: str


@dataclass(slots=True)
class QueueActive(PostfixEvent):
    """``QID: from=<...>, size=391, nrcpt=1 (queue active)``."""

    queue_id: str
    size: int
    nrcpt: int


@dataclass(slots=True)
class QueueRemoved(PostfixEvent):
    """``QID: removed``."""

    queue_id: str


@dataclass(slots=True)
class QueueExpired(PostfixEvent):
    """``QID: from=<...>, status=expired, returned to sender`` (or ``force-expired``)."""

    queue_id: str
    forced: bool


@dataclass(slots=True)
class QueueDeleted(PostfixEvent):
    """postsuper: ``QID: removed`` (``postsuper -d``): an administrator deleted the message."""

    queue_id: str  # not a label


@dataclass(slots=True)
class Delivery(PostfixEvent):
    """A delivery attempt by any delivery agent (smtp, lmtp, local, virtual, pipe, error, retry,
    discard; qmgr for some deferrals)::

        QID: to=<a@b>, relay=mx[ip]:25, delay=2017, delays=0.1/2017/0.03/0.05, [tls=dane, ]dsn=2.0.0,
        status=sent (250 2.0.0 Ok)

    ``reason`` classifies the reply of a failed attempt (vocab.DELIVERY_REASONS; ``""`` when sent) and
    ``blocklist`` names the provider when the reply says we are blocklisted (vocab.BLOCKLIST_PROVIDERS).

    ``next_queue_id`` (not a label) is set when a sent delivery created another message in Postfix: local's
    ``forwarded as QID`` (an alias or .forward to another address; ``forwarded`` is then True) or a content
    filter on this host answering ``queued as QID`` after re-injecting the message. ``scan --summary`` uses
    them so that one message is received and delivered once, as pflogsumm counts it.
    """

    daemon: str
    queue_id: str
    status: str
    relay_class: str
    delay: float
    delays: tuple[float, float, float, float] | None
    dsn: str
    tls: str  # Postfix 3.11 tls= level, "" when absent
    reason: str
    blocklist: str
    next_queue_id: str = ""  # not a label
    forwarded: bool = False
    provider: str = ""  # parsers.postfix.providers: the destination provider class of the relay


@dataclass(slots=True)
class RemoteReply(PostfixEvent):
    """A remote server's reply that is not the final status: ``QID: host mx[ip] said: 451 ...``,
    ``QID: host mx[ip] refused to talk to me: 554 ...``."""

    daemon: str
    queue_id: str
    code: str
    reason: str
    blocklist: str
    provider: str = ""  # the destination provider class of the replying host


@dataclass(slots=True)
class ConnectFailure(PostfixEvent):
    """``connect to mx[ip]:25: Connection timed out`` and friends, plus lost connections and
    timeouts during an outbound conversation."""

    daemon: str
    reason: str  # vocab.CONNECT_REASONS


@dataclass(slots=True)
class BounceNotice(PostfixEvent):
    """``QID: sender non-delivery notification: NEWQID`` (bounce, defer, trace)."""

    kind: str  # non_delivery | delay | delivery_status | postmaster_non_delivery | postmaster_delay
    queue_id: str
    notice_id: str = ""  # the queue ID of the notification message (NEWQID); not a label


@dataclass(slots=True)
class PostscreenEvent(PostfixEvent):
    """postscreen's verdicts: ``CONNECT``, ``PASS NEW``, ``PASS OLD``, ``DNSBL rank 3``, ``PREGREET``,
    ``HANGUP``, ``DISCONNECT``, allow/deny lists, and protocol test failures."""

    action: str  # vocab.POSTSCREEN_ACTIONS
    rank: int


@dataclass(slots=True)
class DnsblHit(PostfixEvent):
    """dnsblog: ``addr 1.2.3.4 listed by domain zen.spamhaus.org as 127.0.0.4``."""

    domain: str  # the DNSBL zone; bounded by the aggregator


@dataclass(slots=True)
class AnvilStatistic(PostfixEvent):
    """anvil: ``statistics: max connection rate 1/60s for (smtp:1.2.3.4) at Jan 27 06:50:01``."""

    kind: str  # vocab.ANVIL_KINDS
    value: int


@dataclass(slots=True)
class Lifecycle(PostfixEvent):
    """master and postfix-script: started, reload, stopping, ..."""

    daemon: str
    event: str  # vocab.LIFECYCLE_EVENTS


@dataclass(slots=True)
class QueueAdmin(PostfixEvent):
    """postsuper: ``Deleted: 3 messages``, ``Requeued: ...``, ``Placed on hold: ...``."""

    action: str  # deleted | requeued | held | released | expired
    count: int


@dataclass(slots=True)
class LogMessage(PostfixEvent):
    """A recognised line that carries no delivery data: a warning/error/fatal/panic by kind, or an
    informational line (statistics, workarounds). Counted by daemon, level and kind."""

    daemon: str
    level: str  # info | warning | error | fatal | panic
    kind: str  # vocab.MESSAGE_KINDS
