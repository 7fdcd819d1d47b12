"""Dashboard 2, "Postfix": traffic, delivery outcomes, rejects, queue, delays, SASL, TLS and parser health.

Built on the ``mailpulse_postfix_*`` families (service, agent, status, reason labels) rather than the
kumina-compatible ``postfix_*`` ones, which carry fewer labels. Queue metrics are gauges from ``postqueue -j``
and are shown as they are, never rated.
"""

from __future__ import annotations

from dashboards.grafana import RI, Json, Panel, Row, Target, dashboard, sel

UID = "mailpulse-postfix"
S = sel()
FINAL = sel('status=~"sent|bounced|deferred|expired"')
UNPARSED_LINES = sel('result="unparsed"')
READ_LINES = sel('result=~"parsed|unparsed"')
BOUNCED = sel('status=~"bounced|expired"')
DEFERRED = sel('status="deferred"')
TOTAL_DELAY = sel('stage="total"')
INBOUND = sel('direction="inbound"')


def _rate(metric: str, by: str, selector: str = S) -> str:
    return f"sum by ({by}) (rate({metric}{selector}[{RI}]))"


def _ratio_by_total(metric: str, by: str, total_by: str) -> str:
    """Share of each ``by`` group within its ``total_by`` group; groups without traffic give no point."""
    return (
        f"sum by ({by}) (rate({metric}{S}[{RI}])) / on ({total_by}) group_left () "
        f"(sum by ({total_by}) (rate({metric}{S}[{RI}])) > 0)"
    )


def _delay_quantile(q: float, by: str, selector: str) -> str:
    buckets = f"rate(mailpulse_postfix_delivery_delay_seconds_bucket{selector}[{RI}])"
    return f"histogram_quantile({q}, sum by ({by}, le) ({buckets}))"


TRAFFIC: list[Panel | Row] = [
    Row("Traffic"),
    Panel(
        "smtpd connections by service",
        "Connections to each smtpd service (the master.cf name: smtpd, submission, smtps ...).",
        "cps",
        (Target(_rate("mailpulse_postfix_smtpd_connections_total", "service"), "{{service}}"),),
        width=8,
    ),
    Panel(
        "Messages accepted by service and SASL method",
        "Messages smtpd accepted (a queue ID was assigned), by service and SASL method (NONE: not authenticated).",
        "mps",
        (
            Target(
                _rate("mailpulse_postfix_smtpd_messages_accepted_total", "service, sasl_method"),
                "{{service}} {{sasl_method}}",
            ),
        ),
        width=8,
    ),
    Panel(
        "Messages through cleanup and the queue manager",
        "Messages processed and rejected by cleanup, removed from the queue by qmgr and submitted locally (pickup).",
        "mps",
        (
            Target(f"sum(rate(postfix_cleanup_messages_processed_total{S}[{RI}]))", "cleanup processed"),
            Target(f"sum(rate(postfix_cleanup_messages_rejected_total{S}[{RI}]))", "cleanup rejected"),
            Target(f"sum(rate(postfix_qmgr_messages_removed_total{S}[{RI}]))", "qmgr removed"),
            Target(f"sum(rate(mailpulse_postfix_pickup_messages_total{S}[{RI}]))", "pickup"),
        ),
        width=8,
    ),
]

DELIVERY: list[Panel | Row] = [
    Row("Delivery outcomes"),
    Panel(
        "Delivery attempts by status",
        "Delivery attempts of every delivery agent by status (sent, deferred, bounced, expired ...).",
        "mps",
        (Target(_rate("mailpulse_postfix_deliveries_total", "status"), "{{status}}"),),
        stack=True,
        width=8,
    ),
    Panel(
        "Delivery attempts by transport and status",
        "Delivery attempts by master.cf service (the transport), delivery agent and status.",
        "mps",
        (
            Target(
                _rate("mailpulse_postfix_deliveries_total", "service, agent, status"),
                "{{service}}/{{agent}} {{status}}",
            ),
        ),
        width=8,
    ),
    Panel(
        "Bounce and deferral ratio",
        "Bounced (and expired) and deferred attempts as a share of final attempts (sent, bounced, deferred, "
        "expired). PostfixBounceRatioHigh fires above 5 % over 1h, PostfixDeferralRatioHigh above 20 %.",
        "percentunit",
        (
            Target(
                f"sum(rate(mailpulse_postfix_deliveries_total{BOUNCED}[{RI}])) / "
                f"(sum(rate(mailpulse_postfix_deliveries_total{FINAL}[{RI}])) > 0)",
                "bounced",
            ),
            Target(
                f"sum(rate(mailpulse_postfix_deliveries_total{DEFERRED}[{RI}])) / "
                f"(sum(rate(mailpulse_postfix_deliveries_total{FINAL}[{RI}])) > 0)",
                "deferred",
            ),
        ),
        width=8,
        min=0,
        max=1,
        thresholds=((None, "green"), (0.05, "orange"), (0.2, "red")),
    ),
    Panel(
        "Deferrals and bounces by reason",
        "Deferred and bounced attempts by the class of the remote reply (blocklisted, unknown_user, "
        "mailbox_full, greylisted, connection_refused ...).",
        "mps",
        (
            Target(
                _rate("mailpulse_postfix_delivery_failures_total", "status, reason"),
                "{{status}} {{reason}}",
            ),
        ),
    ),
    Panel(
        "Outbound connection problems",
        "Outbound connections that failed (timeout, refused, no route ...), remote replies saying we are "
        "blocklisted (by provider) and non-final remote replies by class.",
        "cps",
        (
            Target(_rate("mailpulse_postfix_connect_failures_total", "agent, reason"), "{{agent}} {{reason}}"),
            Target(_rate("mailpulse_postfix_blocklisted_replies_total", "provider"), "blocklisted by {{provider}}"),
            Target(_rate("mailpulse_postfix_remote_replies_total", "reason"), "reply {{reason}}"),
        ),
    ),
    Panel(
        "Delivery attempts by relay class",
        "Delivery attempts by the class of the next hop (remote, loopback, private, local socket, or classes "
        "from postfix.relay_classes).",
        "mps",
        (
            Target(
                _rate("mailpulse_postfix_deliveries_total", "relay_class, status"),
                "{{relay_class}} {{status}}",
            ),
        ),
    ),
    Panel(
        "Non-delivery notifications",
        "Notifications generated by bounce/defer/trace by kind (non_delivery, delay, success ...).",
        "mps",
        (Target(_rate("mailpulse_postfix_bounce_notifications_total", "kind"), "{{kind}}"),),
    ),
]

REMOTE_PROVIDERS = sel('provider!~"internal|local|none"')
PROVIDER_FINAL = sel('status=~"sent|bounced|deferred|expired"', 'provider!~"internal|local|none"')
PROVIDER_DEFERRED = sel('status="deferred"', 'provider!~"internal|local|none"')


def _transit_quantile(q: float, by: str) -> str:
    buckets = f"rate(mailpulse_postfix_message_transit_seconds_bucket{S}[{RI}])"
    return f"histogram_quantile({q}, sum by ({by}, le) ({buckets}))"


MESSAGES: list[Panel | Row] = [
    Row("Messages and destination providers"),
    Panel(
        "Messages by final outcome",
        "Messages whose journey ended (message tracking: counted once across content-filter re-injection and "
        "internal hops), by outcome (delivered, bounced, expired, deleted, mixed ...).",
        "mps",
        (Target(_rate("mailpulse_postfix_messages_total", "outcome"), "{{outcome}}"),),
        stack=True,
        width=8,
    ),
    Panel(
        "Delivery attempts by destination provider",
        "Delivery attempts by the provider of the receiving MX (its host name suffix: google, microsoft, yahoo ...) "
        "and status. Internal hops and local delivery left out.",
        "mps",
        (
            Target(
                _rate("mailpulse_postfix_deliveries_total", "provider, status", REMOTE_PROVIDERS),
                "{{provider}} {{status}}",
            ),
        ),
        width=8,
    ),
    Panel(
        "Deferral ratio by destination provider",
        "Deferred attempts as a share of all attempts, per destination provider. PostfixProviderDeferralRatioHigh "
        "fires above 30 % over 1h.",
        "percentunit",
        (
            Target(
                f"sum by (provider) (rate(mailpulse_postfix_deliveries_total{PROVIDER_DEFERRED}[{RI}])) / "
                f"(sum by (provider) (rate(mailpulse_postfix_deliveries_total{PROVIDER_FINAL}[{RI}])) > 0)",
                "{{provider}}",
            ),
        ),
        width=8,
        min=0,
        max=1,
        thresholds=((None, "green"), (0.3, "red")),
    ),
    Panel(
        "Message transit time by provider (p50, p95)",
        "First accept to final outcome, across re-injection and hops, of delivered messages by destination "
        "provider. The root queue ID is an exemplar on each bucket (OpenMetrics): turn exemplars on to jump to it.",
        "s",
        (
            Target(_transit_quantile(0.5, "provider"), "p50 {{provider}}"),
            Target(_transit_quantile(0.95, "provider"), "p95 {{provider}}"),
        ),
        width=12,
    ),
    Panel(
        "Deferred, then delivered; evicted by the tracker",
        "Messages delivered after at least one deferral, by provider; and messages the tracker gave up on "
        "(capacity, ttl, restart, reused) with the queue files it follows.",
        "mps",
        (
            Target(_rate("mailpulse_postfix_messages_deferred_then_delivered_total", "provider"), "{{provider}}"),
            Target(_rate("mailpulse_postfix_tracking_evicted_total", "reason"), "evicted {{reason}}"),
        ),
        width=12,
    ),
]

REJECTS: list[Panel | Row] = [
    Row("Rejects"),
    Panel(
        "Rejects by reason",
        "smtpd and cleanup rejects by bounded reason class (rbl, relay_denied, unknown_user, helo, milter ...).",
        "mps",
        (Target(_rate("mailpulse_postfix_rejects_total", "reason"), "{{reason}}"),),
        stack=True,
        width=8,
    ),
    Panel(
        "Rejects by service, stage and code",
        "The same rejects by the service that rejected, the SMTP stage and the reply code.",
        "mps",
        (
            Target(
                _rate("mailpulse_postfix_rejects_total", "service, stage, code"),
                "{{service}} {{stage}} {{code}}",
            ),
        ),
        width=8,
    ),
    Panel(
        "Rejects over the time range",
        "Rejects by service and reason over the dashboard's time range, largest first.",
        "short",
        (
            Target(
                f"sort_desc(sum by (service, reason) (increase(mailpulse_postfix_rejects_total{S}[$__range])))",
                "{{service}} {{reason}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        width=8,
    ),
    Panel(
        "Access actions, postscreen and DNSBL hits",
        "Access and content actions other than reject (hold, discard, reject_warning ...), postscreen "
        "verdicts, and client addresses listed by DNSBL zone (dnsblog).",
        "mps",
        (
            Target(_rate("mailpulse_postfix_access_actions_total", "action"), "action {{action}}"),
            Target(_rate("mailpulse_postfix_postscreen_actions_total", "action"), "postscreen {{action}}"),
            Target(_rate("mailpulse_postfix_dnsbl_hits_total", "zone"), "dnsbl {{zone}}"),
        ),
    ),
    Panel(
        "Sessions that ended badly",
        "smtpd sessions lost, timed out or ended with too many errors, by kind and stage, and SMTP commands "
        "that failed in a session (from the disconnect counters).",
        "cps",
        (
            Target(_rate("mailpulse_postfix_smtpd_aborted_sessions_total", "kind, stage"), "{{kind}} {{stage}}"),
            Target(_rate("mailpulse_postfix_smtpd_command_failures_total", "command"), "failed {{command}}"),
        ),
    ),
]

QUEUE: list[Panel | Row] = [
    Row("Queue"),
    Panel(
        "Queue depth",
        "Messages in each Postfix queue at the last postqueue -j listing (a gauge, not a rate).",
        "short",
        (Target(f"sum by (queue) (mailpulse_postfix_queue_messages{S})", "{{queue}}"),),
        stack=True,
        width=8,
    ),
    Panel(
        "Oldest message per queue",
        "Age of the oldest message in each queue (0 when empty). PostfixQueueMessagesOld fires when a deferred "
        "message is older than a day, or one in active/incoming/maildrop older than an hour.",
        "s",
        (Target(f"max by (queue) (mailpulse_postfix_queue_oldest_message_age_seconds{S})", "{{queue}}"),),
        width=8,
        thresholds=((None, "green"), (3600, "orange"), (86400, "red")),
    ),
    Panel(
        "Queue size",
        "Total size of the messages in each queue.",
        "bytes",
        (Target(f"sum by (queue) (mailpulse_postfix_queue_size_bytes{S})", "{{queue}}"),),
        width=8,
        stack=True,
    ),
    Panel(
        "Recipients still to be delivered",
        "Recipients not yet delivered, per queue: a message to many recipients counts once in the queue "
        "depth but many times here.",
        "short",
        (Target(f"sum by (queue) (mailpulse_postfix_queue_recipients{S})", "{{queue}}"),),
        width=8,
        stack=True,
    ),
]

DELAYS: list[Panel | Row] = [
    Row("Delivery delays"),
    Panel(
        "Delivery delay percentiles (whole delay)",
        "p50, p90 and p99 of the whole delay of final deliveries (sent or bounced) per delivery agent, from "
        "the delays= field.",
        "s",
        tuple(
            Target(_delay_quantile(q, "agent", TOTAL_DELAY), f"{{{{agent}}}} p{round(q * 100)}")
            for q in (0.5, 0.9, 0.99)
        ),
        width=8,
    ),
    Panel(
        "Delay per stage (p90)",
        "p90 of each stage of delays=a/b/c/d: before the queue manager (a), in the queue manager (b), "
        "connection setup (c) and transmission (d).",
        "s",
        (Target(_delay_quantile(0.9, "agent, stage", sel('stage!="total"')), "{{agent}} {{stage}}"),),
        width=8,
    ),
    Panel(
        "Delivery delay distribution",
        "Heatmap of the whole delay of final deliveries (all agents).",
        "s",
        (
            Target(
                f"sum by (le) (increase(mailpulse_postfix_delivery_delay_seconds_bucket{TOTAL_DELAY}[{RI}]))",
                "{{le}}",
                fmt="heatmap",
            ),
        ),
        kind="heatmap",
        width=8,
    ),
]

SECURITY: list[Panel | Row] = [
    Row("SASL and TLS"),
    Panel(
        "SASL authentication failures",
        "Failed SASL logins by service and mechanism. A steady stream is password guessing "
        "(PostfixSaslBruteForce, info).",
        "eps",
        (Target(_rate("mailpulse_postfix_sasl_failures_total", "service, method"), "{{service}} {{method}}"),),
        width=8,
    ),
    Panel(
        "TLS share by protocol",
        "Share of TLS sessions per protocol version, inbound and outbound. Old versions (TLSv1, TLSv1.1) "
        "should be zero.",
        "percentunit",
        (
            Target(
                _ratio_by_total("mailpulse_postfix_tls_connections_total", "direction, protocol", "direction"),
                "{{direction}} {{protocol}}",
            ),
        ),
        width=8,
        min=0,
        max=1,
    ),
    Panel(
        "TLS share by trust",
        "Share of TLS sessions per trust level (anonymous, untrusted, trusted, verified), inbound and outbound.",
        "percentunit",
        (
            Target(
                _ratio_by_total("mailpulse_postfix_tls_connections_total", "direction, trust", "direction"),
                "{{direction}} {{trust}}",
            ),
        ),
        width=8,
        min=0,
        max=1,
    ),
    Panel(
        "Inbound connections with TLS",
        "Inbound TLS sessions as a share of smtpd connections, per service.",
        "percentunit",
        (
            Target(
                f"sum by (service) (rate(mailpulse_postfix_tls_connections_total{INBOUND}[{RI}])) "
                f"/ (sum by (service) (rate(mailpulse_postfix_smtpd_connections_total{S}[{RI}])) > 0)",
                "{{service}}",
            ),
        ),
        min=0,
        max=1,
    ),
    Panel(
        "TLS handshake failures",
        "TLS handshakes that failed, by direction and service.",
        "eps",
        (Target(_rate("mailpulse_postfix_tls_failures_total", "direction, service"), "{{direction}} {{service}}"),),
    ),
]

PARSER: list[Panel | Row] = [
    Row("mailpulse parser and log sources"),
    Panel(
        "Unparsed share",
        "Share of each source's own lines (parsed + unparsed; other programs' lines excluded) that no rule "
        "recognised. A rise after an upgrade is parser drift (MailpulseLogParserDrift).",
        "percentunit",
        (
            Target(
                f"sum by (source) (rate(mailpulse_log_lines_total{UNPARSED_LINES}[{RI}])) / "
                f"(sum by (source) (rate(mailpulse_log_lines_total{READ_LINES}[{RI}])) > 0)",
                "{{source}}",
            ),
        ),
        width=8,
        min=0,
    ),
    Panel(
        "Lines read, and unrecognised Postfix lines by daemon",
        "Log lines read per source and result (parsed, unparsed: our format but an unknown shape, foreign: "
        "another program's line), and the unrecognised Postfix lines per daemon, to find which one drifted.",
        "short",
        (
            Target(_rate("mailpulse_log_lines_total", "source, result"), "{{source}} {{result}}"),
            Target(_rate("postfix_unsupported_log_entries_total", "service"), "unrecognised postfix/{{service}}"),
        ),
        width=16,
        custom={"axisLabel": "lines/s"},
    ),
    Panel(
        "Log lag and freshness",
        "Per source: the seconds between the timestamp of the last line read and the moment it was read "
        "(lag), and the seconds since mailpulse last read a line (freshness; quiet logs grow it too).",
        "s",
        (
            Target(f"max by (source) (mailpulse_log_lag_seconds{S})", "{{source}} lag"),
            Target(
                f"time() - max by (source) (mailpulse_log_last_read_timestamp_seconds{S} > 0)",
                "{{source}} since last line",
            ),
        ),
        width=8,
    ),
    Panel(
        "Bytes not yet read",
        "Bytes written to each source but not read at the last poll. Bytes waiting while nothing is read is "
        "MailpulseLogSourceStale.",
        "bytes",
        (Target(f"max by (source) (mailpulse_log_lag_bytes{S})", "{{source}}"),),
        width=8,
    ),
    Panel(
        "Sources and queue collection up",
        "mailpulse_log_source_up per source and mailpulse_postfix_queue_up (the last postqueue -j listing succeeded).",
        "short",
        (
            Target(f"min by (source) (mailpulse_log_source_up{S})", "{{source}}"),
            Target(f"min(mailpulse_postfix_queue_up{S})", "queue"),
        ),
        kind="state-timeline",
        width=8,
        mappings=((1, "up", "green"), (0, "down", "red")),
    ),
]


def build() -> Json:
    return dashboard(
        UID,
        "mailpulse / Postfix",
        "Postfix from its logs and queue: traffic, delivery outcomes by status and transport, rejects by "
        "reason, queue depth and age, delays per stage, SASL failures, TLS, and mailpulse's parser health.",
        [*TRAFFIC, *DELIVERY, *MESSAGES, *REJECTS, *QUEUE, *DELAYS, *SECURITY, *PARSER],
    )
