"""Dashboard 1, "Mail delivery end to end": the SLO view of the probes, the one dashboard that pages.

The SLI is the one the alert rules use (alerts/probes.yml): a probe run is good when its message reached the
Inbox within the deadline; lost, failed and Junk-filed runs burn the error budget. Budget and burn rates come
from the recording rules ``mailpulse:probe_errors:ratio_rate<window>`` (request-weighted: errors over runs in
the window, never an average of ratios) and ``mailpulse:probe_slo_objective:ratio``.
"""

from __future__ import annotations

from dashboards.grafana import PSEL, RI, Json, Panel, Row, Target, dashboard, hide_columns, psel, sel

UID = "mailpulse-delivery"
# Probes run every few minutes: a rate window shorter than that is mostly empty.
PROBE_INTERVAL = "5m"
OBJECTIVE = f"mailpulse:probe_slo_objective:ratio{PSEL}"
BUDGET = f"(1 - {OBJECTIVE})"
ON_PROBE = "on (job, instance, location, probe)"
FAILING = f"mailpulse_probe_consecutive_failures{PSEL}"
PL = "{{probe}}@{{location}}"  # the legend of a per-probe series: probers in several places run the same probe


def _burn(window: str) -> Target:
    return Target(f"mailpulse:probe_errors:ratio_rate{window}{PSEL} / {ON_PROBE} {BUDGET}", f"{PL} {window}")


def _quantile(q: float, metric: str) -> Target:
    expr = f"histogram_quantile({q}, sum by (probe, location, le) (rate({metric}_bucket{PSEL}[{RI}])))"
    return Target(expr, f"{PL} p{round(q * 100)}")


SERVICE_LEVEL: list[Panel | Row] = [
    Row("Service level: delivered to the Inbox within the deadline"),
    Panel(
        "Success over 30 days",
        "Share of probe runs over the last 30 days whose message reached the Inbox within the deadline "
        "(1 - mailpulse:probe_errors:ratio_rate30d). Compare with the objective "
        "(mailpulse:probe_slo_objective:ratio, 99 % unless changed in alerts/probes.yml).",
        "percentunit",
        (Target(f"1 - mailpulse:probe_errors:ratio_rate30d{PSEL}", PL, instant=True),),
        kind="stat",
        width=8,
        decimals=2,
        thresholds=((None, "red"), (0.95, "orange"), (0.99, "green")),
    ),
    Panel(
        "Error budget left (30 days)",
        "Share of the 30-day error budget still unspent: 1 - error ratio over 30 days / (1 - objective). "
        "0 % means the objective is missed; negative values show by how much.",
        "percentunit",
        (Target(f"1 - mailpulse:probe_errors:ratio_rate30d{PSEL} / {ON_PROBE} {BUDGET}", PL, instant=True),),
        kind="bargauge",
        width=8,
        max=1,
        thresholds=((None, "red"), (0, "orange"), (0.5, "green")),
    ),
    Panel(
        "Runs in a row that failed",
        "mailpulse_probe_consecutive_failures: runs of each probe in a row that did not deliver within the "
        "deadline. For a probe run from one location three page (MailProbeDeliveryFailing); from several "
        "locations two make that location fail, and the quorum pages (panel below).",
        "short",
        (Target(f"mailpulse_probe_consecutive_failures{PSEL}", PL, instant=True),),
        kind="stat",
        width=8,
        thresholds=((None, "green"), (1, "orange"), (3, "red")),
    ),
    Panel(
        "Success ratio vs objective (1h window)",
        "1 - mailpulse:probe_errors:ratio_rate1h per probe, against the objective. With a probe every 5 "
        "minutes one failure costs 8 % of an hour, so read it together with the burn rates.",
        "percentunit",
        (
            Target(f"1 - mailpulse:probe_errors:ratio_rate1h{PSEL}", PL),
            Target(f"max({OBJECTIVE})", "objective"),
        ),
        max=1,
    ),
    Panel(
        "Error budget burn rate",
        "Error ratio divided by the budget (1 - objective) over 1h, 6h and 3d. 1x spends the budget exactly "
        "in 30 days. Pages at 6x over 6h and 30m; tickets at 3x over 1d and 2h, or 1x over 3d and 6h.",
        "suffix:x",
        (_burn("1h"), _burn("6h"), _burn("3d")),
        thresholds=((None, "green"), (1, "yellow"), (3, "orange"), (6, "red")),
        min=0,
    ),
    Panel(
        "Probe outcome (last run)",
        "mailpulse_probe_success over time: whether each probe's last run delivered within its deadline "
        "(in any folder; Junk shows in the placement panels).",
        "short",
        (Target(f"mailpulse_probe_success{PSEL}", PL),),
        kind="state-timeline",
        width=24,
        height=6,
        mappings=((1, "delivered", "green"), (0, "failed", "red")),
    ),
    Panel(
        "Locations failing, per probe",
        "For probes run from several locations (probes.location): how many locations report each probe, and "
        "how many fail it (their last two runs in a row failed). MailProbeQuorumFailing pages at 2 and at "
        "least half of them; MailProbeLocationFailing warns below that (alerts/fleet.yml, docs/fleet.md).",
        "short",
        (
            Target(f"sum by (probe) (max by (probe, location) ({FAILING}) >= bool 2)", "{{probe}} failing"),
            Target(f"sum by (probe) (max by (probe, location) ({FAILING}) * 0 + 1)", "{{probe}} locations"),
        ),
        width=24,
        height=6,
        min=0,
    ),
]

LATENCY: list[Panel | Row] = [
    Row("Delivery latency"),
    Panel(
        "Delivery latency percentiles",
        "p50, p90 and p99 of mailpulse_probe_delivery_latency_seconds: from the route's server accepting the "
        "message to its arrival in the target mailbox, late arrivals included. MailProbeSlowDelivery fires on "
        "a p90 over 5 minutes for an hour.",
        "s",
        tuple(_quantile(q, "mailpulse_probe_delivery_latency_seconds") for q in (0.5, 0.9, 0.99)),
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "Delivery latency distribution",
        "Heatmap of probe delivery latencies (all selected probes): how many arrivals fell in each latency "
        "bucket per interval.",
        "s",
        (
            Target(
                f"sum by (le) (increase(mailpulse_probe_delivery_latency_seconds_bucket{PSEL}[{RI}]))",
                "{{le}}",
                fmt="heatmap",
            ),
        ),
        kind="heatmap",
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "Last delivery latency",
        "mailpulse_probe_last_delivery_latency_seconds: the latency of each probe's last delivered message.",
        "s",
        (Target(f"mailpulse_probe_last_delivery_latency_seconds{PSEL}", PL, instant=True),),
        kind="bargauge",
        thresholds=((None, "green"), (60, "orange"), (300, "red")),
    ),
    Panel(
        "Hand-off time to the route's server (p90)",
        "p90 of mailpulse_probe_send_duration_seconds: connect, TLS, authentication and the SMTP "
        "transaction up to the 250 reply to DATA. A rise points at the sending side, not the receiver.",
        "s",
        (_quantile(0.9, "mailpulse_probe_send_duration_seconds"),),
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "Where the time goes: p90 per hop",
        "p90 of mailpulse_probe_hop_seconds per probe and hop (submit_queue, relay, mx_queue, content_filter, "
        "srs, delivery, imap_seen, remote), from the probe's message followed through the tailed Postfix logs: "
        "which host or stage a slow delivery spent its time in. Empty without tracked Postfix logs.",
        "s",
        (
            Target(
                f"histogram_quantile(0.9, sum by (probe, location, hop, le) "
                f"(rate(mailpulse_probe_hop_seconds_bucket{PSEL}[{RI}])))",
                "{{probe}} {{hop}}",
            ),
        ),
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "Lost probes: where they were held",
        "increase of mailpulse_probe_held_total: lost runs by the log host that held the message at the "
        "deadline, the status of its last attempt there and the log's reason class (blocklisted, "
        "connection_refused, ...).",
        "short",
        (
            Target(
                f"sum by (probe, host, status, reason) (increase(mailpulse_probe_held_total{PSEL}[{RI}])) > 0",
                "{{probe}}: {{status}} at {{host}}: {{reason}}",
            ),
        ),
        bars=True,
        interval=PROBE_INTERVAL,
    ),
]

LOST_SEL = psel('stage="deliver"', 'reason="lost"')
AUTH_SEL = psel('method=~"dkim|spf|dmarc"')
AUTH_PASS_SEL = psel('method=~"dkim|spf|dmarc"', 'result="pass"')
NOT_PASS_SEL = psel('result!="pass"')


def _lost(window: str) -> str:
    return f"sum(increase(mailpulse_probe_failures_total{LOST_SEL}[{window}]))"


def _placed(window: str) -> str:
    return f"sum by (folder) (increase(mailpulse_probe_placements_total{PSEL}[{window}]))"


PLACEMENT: list[Panel | Row] = [
    Row("Placement and the receivers' verdicts"),
    Panel(
        "Placement: Inbox, Junk, lost",
        "Delivered probes by the folder they were found in (mailpulse_probe_placements_total), and probes that "
        "never arrived within the deadline (failures at stage deliver, reason lost).",
        "short",
        (Target(_placed(RI), "{{folder}}"), Target(_lost(RI), "lost")),
        stack=True,
        bars=True,
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "Placement over the time range",
        "Share of probe messages per folder and lost over the dashboard's time range.",
        "short",
        (
            Target(_placed("$__range"), "{{folder}}", instant=True),
            Target(_lost("$__range"), "lost", instant=True),
        ),
        kind="piechart",
        width=6,
    ),
    Panel(
        "Receivers' DKIM, SPF and DMARC pass ratio",
        "Share of delivered probes whose receiver stated pass for DKIM, SPF and DMARC in its "
        "Authentication-Results header, over the dashboard's time range.",
        "percentunit",
        (
            Target(
                f"sum by (method) (increase(mailpulse_probe_auth_results_total{AUTH_PASS_SEL}[$__range])) / "
                f"(sum by (method) (increase(mailpulse_probe_auth_results_total{AUTH_SEL}[$__range])) > 0)",
                "{{method}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        width=6,
        min=0,
        max=1,
        thresholds=((None, "red"), (0.9, "orange"), (1, "green")),
    ),
    Panel(
        "Receivers' verdicts other than pass",
        "Authentication results other than pass that receivers stated for delivered probes, by method and "
        "result. Anything here is a problem with our signing (DKIM), our sending IPs (SPF) or alignment (DMARC).",
        "short",
        (
            Target(
                f"sum by (method, result) (increase(mailpulse_probe_auth_results_total{NOT_PASS_SEL}[{RI}]))",
                "{{method}} {{result}}",
            ),
        ),
        stack=True,
        bars=True,
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "Last verdicts per probe",
        "mailpulse_probe_last_auth_result == 1: what the receiver stated for each method on each probe's last "
        "delivered message.",
        "short",
        (Target(f"mailpulse_probe_last_auth_result{PSEL} == 1", instant=True, fmt="table"),),
        kind="table",
        transformations=(hide_columns("Time", "Value", "__name__", "job", "instance"),),
    ),
    Panel(
        "Receiver's spam score",
        "mailpulse_probe_spam_score: the spam score the receiving side gave each probe's last delivered "
        "message, by engine (rspamd, SpamAssassin, Microsoft SCL).",
        "short",
        (Target(f"mailpulse_probe_spam_score{PSEL}", f"{PL} ({{{{engine}}}})"),),
        width=6,
    ),
    Panel(
        "mailpulse's own DKIM check",
        "mailpulse_probe_dkim_verify_total: mailpulse's own verification of the received copy's DKIM "
        "signature against DNS, by result; fail while the receiver says pass hints at a DNS view difference.",
        "short",
        (Target(f"sum by (result) (increase(mailpulse_probe_dkim_verify_total{PSEL}[{RI}]))", "{{result}}"),),
        width=6,
        stack=True,
        bars=True,
        interval=PROBE_INTERVAL,
    ),
]

HEALTH: list[Panel | Row] = [
    Row("Probe health"),
    Panel(
        "Time since last success",
        "Seconds since each probe last delivered within its deadline (probes that never succeeded since the "
        "state file was created are not shown).",
        "s",
        (Target(f"time() - (mailpulse_probe_last_success_timestamp_seconds{PSEL} > 0)", PL, instant=True),),
        kind="bargauge",
        thresholds=((None, "green"), (900, "orange"), (1800, "red")),
    ),
    Panel(
        "Failures by stage and reason",
        "mailpulse_probe_failures_total by stage (send, receive, deliver, internal) and bounded reason; "
        "only failing combinations are drawn.",
        "short",
        (
            Target(
                f"sum by (probe, location, stage, reason) (increase(mailpulse_probe_failures_total{PSEL}[{RI}])) > 0",
                "{{probe}} {{stage}}/{{reason}}",
            ),
        ),
        stack=True,
        bars=True,
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "Runs, skipped runs and late arrivals",
        "Probe runs that reached an outcome, runs skipped because the previous one was still waiting, and "
        "messages that arrived after their deadline (counted as lost).",
        "short",
        (
            Target(f"sum by (probe, location) (increase(mailpulse_probe_runs_total{PSEL}[{RI}]))", f"{PL} runs"),
            Target(
                f"sum by (probe, location) (increase(mailpulse_probe_skipped_runs_total{PSEL}[{RI}]))", f"{PL} skipped"
            ),
            Target(
                f"sum by (probe, location) (increase(mailpulse_probe_late_arrivals_total{PSEL}[{RI}]))", f"{PL} late"
            ),
        ),
        bars=True,
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "Mailbox watchers",
        "mailpulse_probe_mailbox_up: whether the IMAP watcher of each target mailbox has every watched folder "
        "open. A watcher that is down makes its probes fail at stage receive.",
        "short",
        (Target(f"mailpulse_probe_mailbox_up{sel()}", "{{target}}@{{location}}"),),
        kind="state-timeline",
        mappings=((1, "up", "green"), (0, "down", "red")),
    ),
    Panel(
        "Mailbox errors and cleanup",
        "Mailbox watcher errors by reason, probe messages removed from the target mailboxes by reason, and "
        "failed removals (retried by the sweep).",
        "short",
        (
            Target(
                f"sum by (reason) (increase(mailpulse_probe_mailbox_errors_total{sel()}[{RI}]))", "error {{reason}}"
            ),
            Target(
                f"sum by (reason) (increase(mailpulse_probe_cleanup_deleted_total{sel()}[{RI}]))", "removed {{reason}}"
            ),
            Target(f"sum(increase(mailpulse_probe_cleanup_failures_total{sel()}[{RI}]))", "removal failed"),
        ),
        bars=True,
        interval=PROBE_INTERVAL,
    ),
]


def build() -> Json:
    return dashboard(
        UID,
        "mailpulse / Mail delivery end to end",
        "End-to-end probes: is mail delivered to the Inbox within the deadline, how fast, where it lands and "
        "what the receivers think of our DKIM, SPF and DMARC. The SLO view that pages.",
        [*SERVICE_LEVEL, *LATENCY, *PLACEMENT, *HEALTH],
        probe=True,
    )
