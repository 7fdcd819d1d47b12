"""Postfix log metrics: the families and the aggregator that turns Postfix events into numbers.

Two sets of names:

* ``postfix_*`` families reuse kumina/postfix_exporter's names **and meaning**, so existing dashboards
  (grafana.com 10013) keep working, minus its bugs: the delay ``stage`` label carries the stage, deferred
  retries are not observed as delivery delays, TLS counters have no cipher label.
* ``mailpulse_postfix_*`` families carry the richer, still bounded, labels (service, stage, reason ...).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import Metric

from mailpulse.exporter.metrics.family import (
    Family,
    Kind,
    Labels,
    LabelValues,
    bounded,
    enum,
    exponential,
    label_sets,
    named,
)
from mailpulse.exporter.metrics.store import CappedLabels, Histogram, Store
from mailpulse.parsers.postfix import events as ev
from mailpulse.parsers.postfix import vocab
from mailpulse.parsers.postfix.common import WARNING_RULES
from mailpulse.parsers.postfix.program import KNOWN_DAEMONS, ProgramTable
from mailpulse.parsers.postfix.providers import PROVIDERS
from mailpulse.parsers.postfix.smtpd import SASL_METHODS
from mailpulse.parsers.postfix.vocab import REJECT_ACTIONS
from mailpulse.parsers.results import Unparsed

C, G, H = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM
KUMINA = "kumina"

DELAY_STAGES = ("before_queue_manager", "queue_manager", "connection_setup", "transmission")
KUMINA_DELAY_BUCKETS = exponential(1e-3, 10, 7)  # 1 ms .. 1000 s, as kumina
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400, 432000)

# The reject `code` label: the 4xx/5xx reply codes that exist (RFC 5321 4.2.3; AUTH, RFC 4954: 432, 454,
# 530, 534, 535, 538; ETRN, RFC 1985: 458, 459; RFC 5248's 523; nullMX, RFC 7504: 521, 556), "4xx"/"5xx"
# when only an enhanced status code was logged, "none" without a code; any other number is "other".
REPLY_CODES = frozenset(
    ["421", "432", "450", "451", "452", "454", "455", "458", "459", "500", "501", "502", "503", "504", "521",
     "523", "530", "534", "535", "538", "550", "551", "552", "553", "554", "555", "556", "4xx", "5xx"]
)  # fmt: skip

# --- kumina-compatible families -----------------------------------------------------------------------
SMTPD_CONNECTS = Family("postfix_smtpd_connects_total", "Connections to smtpd.", C, compat=KUMINA)
SMTPD_DISCONNECTS = Family("postfix_smtpd_disconnects_total", "Disconnections from smtpd.", C, compat=KUMINA)
SMTPD_SASL_FAILURES = Family(
    "postfix_smtpd_sasl_authentication_failures_total", "SASL authentication failures at smtpd.", C, compat=KUMINA
)
SMTPD_REJECTED = Family(
    "postfix_smtpd_messages_rejected_total",
    "Messages (or recipients) rejected by smtpd, at any SMTP stage, by reply code (the 4xx/5xx codes that "
    "exist; any other number is 'other').",
    C, ("code",), compat=KUMINA,
)  # fmt: skip
SMTPD_LOST = Family(
    "postfix_smtpd_connections_lost_total", "Connections lost by smtpd, by the SMTP stage they were lost after.",
    C, ("after_stage",), compat=KUMINA,
)  # fmt: skip
SMTPD_PROCESSED = Family(
    "postfix_smtpd_messages_processed_total",
    "Messages accepted by smtpd (QID: client=), by SASL method (NONE when not authenticated).",
    C, ("sasl_method",), compat=KUMINA, initial=(("NONE",),),
)  # fmt: skip
SMTPD_FCRDNS = Family(
    "postfix_smtpd_forward_confirmed_reverse_dns_errors_total",
    "smtpd warnings that a client's hostname does not resolve back to its address.",
    C,
    compat=KUMINA,
)
SMTPD_TLS = Family(
    "postfix_smtpd_tls_connections_total", "Inbound TLS sessions established, by trust and protocol (no cipher).",
    C, ("trust", "protocol"), compat=KUMINA,
)  # fmt: skip
SMTP_TLS = Family(
    "postfix_smtp_tls_connections_total", "Outbound TLS sessions established, by trust and protocol (no cipher).",
    C, ("trust", "protocol"), compat=KUMINA,
)  # fmt: skip
CLEANUP_PROCESSED = Family(
    "postfix_cleanup_messages_processed_total", "Messages processed by cleanup (message-id lines).", C, compat=KUMINA
)
CLEANUP_REJECTED = Family(
    "postfix_cleanup_messages_rejected_total", "Messages rejected by cleanup (header/body checks, milters).",
    C, compat=KUMINA,
)  # fmt: skip
QMGR_SIZE = Family(
    "postfix_qmgr_messages_inserted_size_bytes", "Size of messages entering the active queue.",
    H, buckets=exponential(1e3, 10, 7), compat=KUMINA,
)  # fmt: skip
QMGR_RCPTS = Family(
    "postfix_qmgr_messages_inserted_recipients", "Recipients per message entering the active queue.",
    H, buckets=(1, 2, 4, 8, 16, 32, 64, 128), compat=KUMINA,
)  # fmt: skip
QMGR_REMOVED = Family("postfix_qmgr_messages_removed_total", "Messages removed from the queue.", C, compat=KUMINA)
QMGR_EXPIRED = Family(
    "postfix_qmgr_messages_expired_total", "Messages expired (returned to sender), forced or not.", C, compat=KUMINA
)
SMTP_PROCESSED = Family(
    "postfix_smtp_messages_processed_total", "Delivery attempts by the smtp client, by status.",
    C, ("status",), compat=KUMINA, initial=(("sent",), ("deferred",), ("bounced",)),
)  # fmt: skip
SMTP_DELAY = Family(
    "postfix_smtp_delivery_delay_seconds",
    "Delay per stage of final smtp deliveries (sent or bounced; deferred retries are not observed).",
    H, ("stage",), KUMINA_DELAY_BUCKETS, compat=KUMINA,
)  # fmt: skip
LMTP_DELAY = Family(
    "postfix_lmtp_delivery_delay_seconds",
    "Delay per stage of final lmtp deliveries (sent or bounced; deferred retries are not observed).",
    H, ("stage",), KUMINA_DELAY_BUCKETS, compat=KUMINA,
)  # fmt: skip
SMTP_TIMEOUTS = Family(
    "postfix_smtp_connection_timed_out_total", "Outbound connections that timed out (connect to ...: timed out).",
    C, compat=KUMINA,
)  # fmt: skip
BOUNCE_NDR = Family(
    "postfix_bounce_non_delivery_notification_total", "Non-delivery notifications sent to senders.", C, compat=KUMINA
)
VIRTUAL_DELIVERED = Family(
    "postfix_virtual_delivered_total", "Messages delivered by the virtual delivery agent.", C, compat=KUMINA
)
UNSUPPORTED = Family(
    "postfix_unsupported_log_entries_total",
    "Postfix lines no rule recognised, by daemon (label named service as in kumina's exporter).",
    C, ("service",), compat=KUMINA,
)  # fmt: skip

# The destination provider of a delivery (parsers.postfix.providers): the built-in classes and the names a
# site gives in postfix.providers
DESTINATION_PROVIDERS = named("postfix.providers", *PROVIDERS)

# --- mailpulse families ----------------------------------------------------------------------------------
DELIVERIES = Family(
    "mailpulse_postfix_deliveries_total",
    "Delivery attempts by service, delivery agent, status, relay class and destination provider.",
    C, ("service", "agent", "status", "relay_class", "provider"),
)  # fmt: skip
DELIVERY_FAILURES = Family(
    "mailpulse_postfix_delivery_failures_total",
    "Deferred and bounced delivery attempts by the class of the reply and the destination provider.",
    C, ("service", "agent", "status", "reason", "provider"),
)  # fmt: skip
DELIVERY_DELAY = Family(
    "mailpulse_postfix_delivery_delay_seconds",
    "Delay of final deliveries (sent or bounced) by agent and stage; stage=total is the whole delay.",
    H, ("agent", "stage"), DELAY_BUCKETS,
)  # fmt: skip
DELIVERY_TLS = Family(
    "mailpulse_postfix_delivery_tls_total", "Deliveries by TLS security level (Postfix 3.11 tls= field).",
    C, ("agent", "level"),
)  # fmt: skip
REMOTE_REPLIES = Family(
    "mailpulse_postfix_remote_replies_total", "Non-final remote replies (host X said: ...) by reply class.",
    C, ("agent", "reason"),
)  # fmt: skip
BLOCKLISTED = Family(
    "mailpulse_postfix_blocklisted_replies_total",
    "Remote replies saying our server is blocklisted, by the provider that said it.",
    C,
    ("provider",),
)
CONNECT_FAILURES = Family(
    "mailpulse_postfix_connect_failures_total",
    "Outbound connection failures and aborted conversations by reason.",
    C,
    ("agent", "reason"),
)
REJECTS = Family(
    "mailpulse_postfix_rejects_total",
    "Rejects by service, SMTP stage, reply code (the 4xx/5xx codes that exist, 4xx/5xx when only an "
    "enhanced status code was logged, none, or other for any other number) and reason class.",
    C, ("service", "stage", "code", "reason"),
)  # fmt: skip
ACCESS_ACTIONS = Family(
    "mailpulse_postfix_access_actions_total",
    "Access and content actions other than reject (reject_warning, hold, discard, filter, ...).",
    C, ("service", "action"),
)  # fmt: skip
SMTPD_CONNECTIONS = Family(
    "mailpulse_postfix_smtpd_connections_total", "smtpd connections by service.", C, ("service",)
)
SMTPD_ACCEPTED = Family(
    "mailpulse_postfix_smtpd_messages_accepted_total", "Messages accepted by smtpd by service and SASL method.",
    C, ("service", "sasl_method"),
)  # fmt: skip
SASL_FAILURES = Family(
    "mailpulse_postfix_sasl_failures_total", "SASL authentication failures by service and mechanism.",
    C, ("service", "method"),
)  # fmt: skip
SMTPD_ABORTS = Family(
    "mailpulse_postfix_smtpd_aborted_sessions_total",
    "smtpd sessions that ended badly (lost, timeout, too_many_errors) by service and stage.",
    C, ("service", "kind", "stage"),
)  # fmt: skip
SMTPD_COMMAND_FAILURES = Family(
    "mailpulse_postfix_smtpd_command_failures_total",
    "SMTP commands that failed in a session (from the disconnect counters, e.g. auth=0/1).",
    C, ("service", "command"),
)  # fmt: skip
TLS_CONNECTIONS = Family(
    "mailpulse_postfix_tls_connections_total", "TLS sessions by direction, service, protocol and trust.",
    C, ("direction", "service", "protocol", "trust"),
)  # fmt: skip
TLS_FAILURES = Family(
    "mailpulse_postfix_tls_failures_total", "TLS handshakes that failed, by direction and service.",
    C, ("direction", "service"),
)  # fmt: skip
POSTSCREEN = Family(
    "mailpulse_postfix_postscreen_actions_total", "postscreen verdicts and events by action.", C, ("action",)
)
DNSBL_HITS = Family(
    "mailpulse_postfix_dnsbl_hits_total", "dnsblog: client addresses listed, by DNSBL zone.", C, ("zone",)
)
ANVIL = Family("mailpulse_postfix_anvil_max", "Last maximum reported by anvil's statistics, by kind.", G, ("kind",))
LIFECYCLE = Family(
    "mailpulse_postfix_lifecycle_events_total", "master and postfix-script events (started, reload, stopping ...).",
    C, ("event",),
)  # fmt: skip
QUEUE_ADMIN = Family(
    "mailpulse_postfix_queue_admin_messages_total", "Messages handled by postsuper, by action.", C, ("action",)
)
BOUNCES = Family(
    "mailpulse_postfix_bounce_notifications_total", "Notifications generated by bounce/defer/trace, by kind.",
    C, ("kind",),
)  # fmt: skip
PICKUP = Family("mailpulse_postfix_pickup_messages_total", "Messages submitted locally (pickup).", C)
SERVICE_NAMES = Family(
    "mailpulse_postfix_service_names",
    "Distinct Postfix service names since the last config (re)load, by state: labelled (they have their own "
    "service label value) and refused (counted as service 'other' because postfix.services.max was reached; "
    "raise it, or map or allow services). A name that is not a daemon's, a stock master.cf service or in the "
    "config is labelled at once only for the first half of the cap, then after 5 lines (docs/config.md).",
    G, ("state",), initial=(("labelled",), ("refused",)),
)  # fmt: skip
LOG_MESSAGES = Family(
    "mailpulse_postfix_log_messages_total",
    "Recognised lines without delivery data (warnings, errors, fatal, panic, statistics) by daemon, level, kind.",
    C, ("daemon", "level", "kind"),
)  # fmt: skip

FAMILIES: tuple[Family, ...] = (
    SMTPD_CONNECTS, SMTPD_DISCONNECTS, SMTPD_SASL_FAILURES, SMTPD_REJECTED, SMTPD_LOST, SMTPD_PROCESSED,
    SMTPD_FCRDNS, SMTPD_TLS, SMTP_TLS, CLEANUP_PROCESSED, CLEANUP_REJECTED, QMGR_SIZE, QMGR_RCPTS, QMGR_REMOVED,
    QMGR_EXPIRED, SMTP_PROCESSED, SMTP_DELAY, LMTP_DELAY, SMTP_TIMEOUTS, BOUNCE_NDR, VIRTUAL_DELIVERED,
    UNSUPPORTED, DELIVERIES, DELIVERY_FAILURES, DELIVERY_DELAY, DELIVERY_TLS, REMOTE_REPLIES, BLOCKLISTED,
    CONNECT_FAILURES, REJECTS, ACCESS_ACTIONS, SMTPD_CONNECTIONS, SMTPD_ACCEPTED, SASL_FAILURES, SMTPD_ABORTS,
    SMTPD_COMMAND_FAILURES, TLS_CONNECTIONS, TLS_FAILURES, POSTSCREEN, DNSBL_HITS, ANVIL, LIFECYCLE,
    QUEUE_ADMIN, BOUNCES, PICKUP, LOG_MESSAGES, SERVICE_NAMES,
)  # fmt: skip

_MAX_DNSBL_ZONES = 30


def _sorted(values: object, *extra: str) -> LabelValues:
    assert isinstance(values, frozenset | tuple)
    return enum((*sorted(values), *extra))


# The kinds of LogMessage: the warning classes (WARNING_RULES, else other) and the informational lines the
# rules recognise.
LOG_KINDS = (
    *dict.fromkeys(kind for _, kind in WARNING_RULES), "other", "cache", "config", "connection", "content_filter",
    "lookup_table", "pipelining", "protocol", "queue", "resent_message_id", "statistics", "tls",
)  # fmt: skip
_DAEMONS = _sorted(KNOWN_DAEMONS, "other")
_STAGES = _sorted(vocab.STAGES, "other")
_SASL = _sorted(SASL_METHODS, "other")
LABEL_SETS = label_sets(
    FAMILIES,
    {
        "service": bounded(
            50,
            "Postfix service names from the program tag (daemon names, stock master.cf services, "
            "`postfix.services.map`/`allow` first)",
            "other",
            cap_key="postfix.services.max",
        ),
        "code": _sorted(REPLY_CODES, "other", "none"),
        "after_stage": _STAGES,
        "stage": _STAGES,
        "sasl_method": _sorted(SASL_METHODS, "other", "NONE"),
        "method": _SASL,
        "trust": enum((*vocab.TLS_TRUST.values(), "other")),
        "protocol": _sorted(vocab.TLS_PROTOCOLS, "other"),
        "status": _sorted(vocab.DELIVERY_STATUSES, "other"),
        "agent": _DAEMONS,
        "daemon": _DAEMONS,
        "relay_class": named("postfix.relay_classes[].class", *vocab.RELAY_CLASSES),
        "provider": enum(vocab.BLOCKLIST_PROVIDERS),
        "direction": enum(("inbound", "outbound")),
        "command": _sorted(vocab.COMMANDS),
        "zone": bounded(_MAX_DNSBL_ZONES, "DNSBL zones dnsblog names", "other"),
        "event": _sorted(vocab.LIFECYCLE_EVENTS),
        "state": enum(("labelled", "refused")),
    },
    {
        (SMTP_DELAY, "stage"): enum(DELAY_STAGES),
        (LMTP_DELAY, "stage"): enum(DELAY_STAGES),
        (DELIVERY_DELAY, "stage"): enum(("total", *DELAY_STAGES)),
        (UNSUPPORTED, "service"): _sorted(KNOWN_DAEMONS, "other", "unknown"),
        (DELIVERY_FAILURES, "reason"): enum(vocab.DELIVERY_REASONS),
        (DELIVERIES, "provider"): DESTINATION_PROVIDERS,
        (DELIVERY_FAILURES, "provider"): DESTINATION_PROVIDERS,
        (REMOTE_REPLIES, "reason"): enum(vocab.DELIVERY_REASONS),
        (CONNECT_FAILURES, "reason"): enum(vocab.CONNECT_REASONS),
        (REJECTS, "reason"): enum(vocab.REJECT_REASONS),
        (DELIVERY_TLS, "level"): _sorted(vocab.TLS_LEVELS, "other"),
        (LOG_MESSAGES, "level"): enum(vocab.LEVELS),
        (LOG_MESSAGES, "kind"): enum(LOG_KINDS),
        (ACCESS_ACTIONS, "action"): _sorted(vocab.ACTIONS - REJECT_ACTIONS, "other"),
        (POSTSCREEN, "action"): _sorted(vocab.POSTSCREEN_ACTIONS, "other"),
        (QUEUE_ADMIN, "action"): enum(("deleted", "requeued", "held", "released", "expired")),
        (SMTPD_ABORTS, "kind"): enum(("lost", "timeout", "too_many_errors", "pipelining")),
        (ANVIL, "kind"): _sorted(vocab.ANVIL_KINDS),
        (BOUNCES, "kind"): enum(
            ("non_delivery", "delay", "delivery_status", "postmaster_non_delivery", "postmaster_delay")
        ),
    },
)

_STORED = tuple(f for f in FAMILIES if f is not SERVICE_NAMES)  # SERVICE_NAMES is read from the parser


class PostfixAggregator:
    """Counts Postfix events. Not thread-safe by itself: the pipeline serialises updates and scrapes.

    Each handler runs once per matching line, so stores are bound to attributes once and increments
    are written inline (a helper call per increment cost about a tenth of the per-line budget).
    """

    families = FAMILIES

    def __init__(self) -> None:
        self.store = Store(_STORED)
        self.values = self.store.values
        self._dnsbl_zones = CappedLabels(_MAX_DNSBL_ZONES)
        v, h = self.store, self.store.hists
        self._connects = v[SMTPD_CONNECTS]
        self._smtpd_conn = v[SMTPD_CONNECTIONS]
        self._disconnects = v[SMTPD_DISCONNECTS]
        self._removed_c = v[QMGR_REMOVED]
        self._cleanup_c = v[CLEANUP_PROCESSED]
        self._deliveries = v[DELIVERIES]
        self._log = v[LOG_MESSAGES]
        self._processed = v[SMTPD_PROCESSED]
        self._accepted_c = v[SMTPD_ACCEPTED]
        self._tls_c = v[TLS_CONNECTIONS]
        self._smtpd_tls = v[SMTPD_TLS]
        self._smtp_tls = v[SMTP_TLS]
        self._postscreen_c = v[POSTSCREEN]
        self._smtp_processed = v[SMTP_PROCESSED]
        self._size = h[QMGR_SIZE]
        self._rcpts = h[QMGR_RCPTS]
        self._delay = h[DELIVERY_DELAY]
        self._smtp_delay = h[SMTP_DELAY]
        self._lmtp_delay = h[LMTP_DELAY]
        self._anvil_v = v[ANVIL]
        self._table: dict[type, Callable[[Any], None]] | None = None
        self._programs: ProgramTable | None = None
        self._size_h = self._size.histogram(())
        self._rcpts_h = self._rcpts.histogram(())
        self._delay_hists: dict[str, tuple[Histogram, ...]] = {}
        self._kumina_hists = {
            "smtp": tuple(self._smtp_delay.histogram((stage,)) for stage in DELAY_STAGES),
            "lmtp": tuple(self._lmtp_delay.histogram((stage,)) for stage in DELAY_STAGES),
        }

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """Event type → the method that counts it (the pipeline dispatches on ``type(event)``)."""
        return {
            ev.SmtpdConnect: self._connect,
            ev.SmtpdDisconnect: self._disconnect,
            ev.SmtpdAccepted: self._accepted,
            ev.SaslFailure: self._sasl_failure,
            ev.ConnectionLost: self._lost,
            ev.AccessAction: self._access,
            ev.TlsConnection: self._tls,
            ev.TlsFailure: self._tls_failure,
            ev.CleanupMessage: self._cleanup,
            ev.Pickup: self._pickup,
            ev.QueueActive: self._active,
            ev.QueueRemoved: self._removed,
            ev.QueueExpired: self._expired,
            ev.Delivery: self._delivery,
            ev.RemoteReply: self._remote_reply,
            ev.ConnectFailure: self._connect_failure,
            ev.BounceNotice: self._bounce,
            ev.PostscreenEvent: self._postscreen,
            ev.DnsblHit: self._dnsbl,
            ev.AnvilStatistic: self._anvil,
            ev.Lifecycle: self._lifecycle,
            ev.QueueAdmin: self._queue_admin,
            ev.LogMessage: self._log_message,
            ev.QueueDeleted: self._queue_deleted,
            Unparsed: self._unparsed,
        }

    def track_services(self, programs: ProgramTable) -> None:
        """Report the service label cap of the parser in use (a new one after every reload)."""
        self._programs = programs

    def handle(self, event: object) -> None:
        """Count one event (convenience for tests; the pipeline uses :meth:`handlers`)."""
        if self._table is None:
            self._table = self.handlers()
        handler = self._table.get(type(event))
        if handler is not None:
            handler(event)

    def _inc(self, family: Family, labels: Labels = (), amount: float = 1) -> None:
        store = self.values[family.name]  # by name: a str hashes once, a Family on every lookup
        store[labels] = store.get(labels, 0) + amount

    # -- frequent events: inline increments ----------------------------------------------------------
    def _connect(self, e: ev.SmtpdConnect) -> None:
        d = self._connects
        d[()] = d.get((), 0) + 1
        key: Labels = (e.service,)
        d = self._smtpd_conn
        d[key] = d.get(key, 0) + 1

    def _disconnect(self, e: ev.SmtpdDisconnect) -> None:
        d = self._disconnects
        d[()] = d.get((), 0) + 1
        for command in e.failed:
            self._inc(SMTPD_COMMAND_FAILURES, (e.service, command))

    def _accepted(self, e: ev.SmtpdAccepted) -> None:
        method = e.sasl_method or "NONE"
        key: Labels = (method,)
        d = self._processed
        d[key] = d.get(key, 0) + 1
        d, key = self._accepted_c, (e.service, method)
        d[key] = d.get(key, 0) + 1

    def _tls(self, e: ev.TlsConnection) -> None:
        key: Labels = (e.trust, e.protocol)
        if e.direction == "inbound":
            if e.daemon == "smtpd":  # as kumina: tlsproxy (postscreen's STARTTLS) sessions are not smtpd's
                d = self._smtpd_tls
                d[key] = d.get(key, 0) + 1
        elif e.daemon == "smtp":
            d = self._smtp_tls
            d[key] = d.get(key, 0) + 1
        d, key = self._tls_c, (e.direction, e.service, e.protocol, e.trust)
        d[key] = d.get(key, 0) + 1

    def _cleanup(self, e: ev.CleanupMessage) -> None:
        d = self._cleanup_c
        d[()] = d.get((), 0) + 1

    def _active(self, e: ev.QueueActive) -> None:
        # the two unlabelled histograms, observed inline (one line in ten is a qmgr "queue active")
        h, v = self._size_h, e.size
        h.counts[bisect_left(h.bounds, v)] += 1
        h.sum += v
        h, v = self._rcpts_h, e.nrcpt
        h.counts[bisect_left(h.bounds, v)] += 1
        h.sum += v

    def _removed(self, e: ev.QueueRemoved) -> None:
        d = self._removed_c
        d[()] = d.get((), 0) + 1

    def _postscreen(self, e: ev.PostscreenEvent) -> None:
        d, key = self._postscreen_c, (e.action,)
        d[key] = d.get(key, 0) + 1

    def _delivery(self, e: ev.Delivery) -> None:
        agent, status = e.daemon, e.status
        key: Labels = (e.service, agent, status, e.relay_class, e.provider)
        d = self._deliveries
        d[key] = d.get(key, 0) + 1
        if agent == "smtp":
            d, key = self._smtp_processed, (status,)
            d[key] = d.get(key, 0) + 1
        elif agent == "virtual" and status == "sent":
            self._inc(VIRTUAL_DELIVERED)
        if e.reason:
            self._inc(DELIVERY_FAILURES, (e.service, agent, status, e.reason, e.provider))
            if e.blocklist:
                self._inc(BLOCKLISTED, (e.blocklist,))
        if e.tls:
            self._inc(DELIVERY_TLS, (agent, e.tls))
        if status in {"sent", "bounced"}:
            # final outcomes only: a deferred retry's delay is not a delivery delay (kumina's bug)
            hists = self._delay_hists.get(agent) or self._delay_hists_for(agent)
            values = (e.delay, *e.delays) if e.delays is not None else (e.delay,)
            for h, value in zip(hists, values, strict=False):
                h.counts[bisect_left(h.bounds, value)] += 1
                h.sum += value
            kumina = self._kumina_hists.get(agent)
            if kumina is not None and e.delays is not None:
                for h, value in zip(kumina, e.delays, strict=True):
                    h.counts[bisect_left(h.bounds, value)] += 1
                    h.sum += value

    def _delay_hists_for(self, agent: str) -> tuple[Histogram, ...]:
        """The five delay histograms of an agent (total, then the four stages), created once."""
        hists = tuple(self._delay.histogram((agent, stage)) for stage in ("total", *DELAY_STAGES))
        self._delay_hists[agent] = hists
        return hists

    def _queue_deleted(self, e: ev.QueueDeleted) -> None:
        # counted as before it was an event of its own: an informational postsuper queue line
        d, key = self._log, ("postsuper", "info", "queue")
        d[key] = d.get(key, 0) + 1

    def _log_message(self, e: ev.LogMessage) -> None:
        d, key = self._log, (e.daemon, e.level, e.kind)
        d[key] = d.get(key, 0) + 1
        if e.kind == "reverse_dns" and e.daemon == "smtpd":
            self._inc(SMTPD_FCRDNS)

    # -- rarer events ----------------------------------------------------------------------------------
    def _sasl_failure(self, e: ev.SaslFailure) -> None:
        self._inc(SMTPD_SASL_FAILURES)
        self._inc(SASL_FAILURES, (e.service, e.method))

    def _lost(self, e: ev.ConnectionLost) -> None:
        if e.kind == "lost":
            self._inc(SMTPD_LOST, (e.stage,))
        self._inc(SMTPD_ABORTS, (e.service, e.kind, e.stage))

    def _access(self, e: ev.AccessAction) -> None:
        if e.action in REJECT_ACTIONS:
            code = e.code if e.code in REPLY_CODES else "other" if e.code else "none"
            self._inc(REJECTS, (e.service, e.stage, code, e.reason))
            if e.daemon == "smtpd":
                self._inc(SMTPD_REJECTED, (code,))
            elif e.daemon == "cleanup":
                self._inc(CLEANUP_REJECTED)
        else:
            self._inc(ACCESS_ACTIONS, (e.service, e.action))

    def _tls_failure(self, e: ev.TlsFailure) -> None:
        self._inc(TLS_FAILURES, (e.direction, e.service))

    def _pickup(self, e: ev.Pickup) -> None:
        self._inc(PICKUP)

    def _expired(self, e: ev.QueueExpired) -> None:
        self._inc(QMGR_EXPIRED)

    def _remote_reply(self, e: ev.RemoteReply) -> None:
        self._inc(REMOTE_REPLIES, (e.daemon, e.reason))
        if e.blocklist:
            self._inc(BLOCKLISTED, (e.blocklist,))

    def _connect_failure(self, e: ev.ConnectFailure) -> None:
        self._inc(CONNECT_FAILURES, (e.daemon, e.reason))
        if e.reason == "timeout" and e.daemon == "smtp":
            self._inc(SMTP_TIMEOUTS)

    def _bounce(self, e: ev.BounceNotice) -> None:
        self._inc(BOUNCES, (e.kind,))
        if e.kind == "non_delivery":
            self._inc(BOUNCE_NDR)

    def _dnsbl(self, e: ev.DnsblHit) -> None:
        self._inc(DNSBL_HITS, (self._dnsbl_zones(e.domain),))

    def _anvil(self, e: ev.AnvilStatistic) -> None:
        self._anvil_v[(e.kind,)] = e.value

    def _lifecycle(self, e: ev.Lifecycle) -> None:
        self._inc(LIFECYCLE, (e.event,))

    def _queue_admin(self, e: ev.QueueAdmin) -> None:
        self._inc(QUEUE_ADMIN, (e.action,), e.count)

    def _unparsed(self, e: Unparsed) -> None:
        self._inc(UNSUPPORTED, (e.daemon,))

    # -- scrape -------------------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        yield from self.store.collect()
        p = self._programs
        names: dict[Labels, float] = {}
        if p is not None:
            names = {("labelled",): float(p.labelled), ("refused",): float(p.refused)}
        yield SERVICE_NAMES.from_values(names)
