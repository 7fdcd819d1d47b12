"""Dashboard 3, "rspamd": actions, scores, scan time, authentication results, signing, greylisting, antivirus.

From mailpulse's ``mailpulse_rspamd_*`` families (rspamd's log), not rspamd's own ``/metrics``: the log gives
per-message scores, scan times and DKIM/SPF/DMARC/ARC results that rspamd's counters do not.
"""

from __future__ import annotations

from dashboards.grafana import RI, Json, Panel, Row, Target, dashboard, sel

UID = "mailpulse-rspamd"
S = sel()
SCANS = "mailpulse_rspamd_scans_total"


def _rate(metric: str, by: str, selector: str = S) -> str:
    return f"sum by ({by}) (rate({metric}{selector}[{RI}]))"


def _quantile(q: float, metric: str) -> Target:
    return Target(f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{S}[{RI}])))", f"p{round(q * 100)}")


def _auth_panel(method: str, title: str, what: str) -> Panel:
    selector = sel(f'method="{method}"')
    return Panel(
        title,
        f"rspamd's {what} result per scanned message (one per message; none: the check did not run, e.g. "
        "for authenticated senders).",
        "mps",
        (Target(f"sum by (result) (rate(mailpulse_rspamd_auth_results_total{selector}[{RI}]))", "{{result}}"),),
        stack=True,
        width=6,
    )


ACTIONS: list[Panel | Row] = [
    Row("Actions"),
    Panel(
        "Scans by action",
        "Messages scanned per second by the action rspamd took (no_action, greylist, add_header, "
        "rewrite_subject, soft_reject, reject, other).",
        "mps",
        (Target(_rate(SCANS, "action"), "{{action}}"),),
        stack=True,
        width=8,
    ),
    Panel(
        "Actions as a share of scans",
        "Each action's share of all scans. RspamdRejectRatioHigh fires when reject exceeds 50 % over 30m.",
        "percentunit",
        (
            Target(
                f"{_rate(SCANS, 'action')} / ignoring (action) group_left () (sum(rate({SCANS}{S}[{RI}])) > 0)",
                "{{action}}",
            ),
        ),
        stack=True,
        width=8,
        min=0,
        max=1,
    ),
    Panel(
        "Actions over the time range",
        "Scans by action over the dashboard's time range.",
        "short",
        (Target(f"sum by (action) (increase({SCANS}{S}[$__range]))", "{{action}}", instant=True),),
        kind="piechart",
        width=8,
    ),
    Panel(
        "Actions forced by a module",
        "Scans whose action a module forced (greylist, dmarc, gtube, ratelimit, antivirus ...), by action and module.",
        "mps",
        (Target(_rate("mailpulse_rspamd_forced_actions_total", "action, module"), "{{module}}: {{action}}"),),
    ),
    Panel(
        "Greylisting and rate limits",
        "Greylist module decisions (new: first attempt greylisted, too_early, pass) and ratelimit buckets exceeded.",
        "eps",
        (
            Target(_rate("mailpulse_rspamd_greylist_checks_total", "result"), "greylist {{result}}"),
            Target(_rate("mailpulse_rspamd_ratelimit_exceeded_total", "bucket"), "ratelimit {{bucket}}"),
        ),
    ),
]

SCORES: list[Panel | Row] = [
    Row("Scores and scan time"),
    Panel(
        "Score distribution",
        "Heatmap of message scores. The buckets sit around rspamd's default thresholds: greylist 4, add "
        "header 6, rewrite subject 8, reject 15.",
        "short",
        (Target(f"sum by (le) (increase(mailpulse_rspamd_scan_score_bucket{S}[{RI}]))", "{{le}}", fmt="heatmap"),),
        kind="heatmap",
        width=8,
    ),
    Panel(
        "Score percentiles",
        "p50 and p90 of message scores.",
        "short",
        (_quantile(0.5, "mailpulse_rspamd_scan_score"), _quantile(0.9, "mailpulse_rspamd_scan_score")),
        width=8,
    ),
    Panel(
        "Scan time percentiles",
        "p50, p90 and p99 of the scan time rspamd logged, DNS waits included. RspamdScanSlow fires on a p90 "
        "above 2 s for 15m.",
        "s",
        tuple(_quantile(q, "mailpulse_rspamd_scan_duration_seconds") for q in (0.5, 0.9, 0.99)),
        width=8,
        thresholds=((None, "green"), (2, "red")),
    ),
    Panel(
        "Message size percentiles",
        "p50 and p90 of the size of scanned messages.",
        "bytes",
        (_quantile(0.5, "mailpulse_rspamd_message_size_bytes"), _quantile(0.9, "mailpulse_rspamd_message_size_bytes")),
        width=8,
    ),
    Panel(
        "Configured symbols",
        "Scans in which each symbol listed in rspamd.symbols fired (an allowlist: rspamd has hundreds).",
        "mps",
        (Target(_rate("mailpulse_rspamd_symbol_hits_total", "symbol"), "{{symbol}}"),),
        width=8,
    ),
    Panel(
        "Bayes learns",
        "Bayes learns through the controller by class and result (learned, skipped, failed).",
        "eps",
        (Target(_rate("mailpulse_rspamd_learns_total", "class, result"), "{{class}} {{result}}"),),
        width=8,
    ),
]

AUTH: list[Panel | Row] = [
    Row("Authentication and signing"),
    _auth_panel("dkim", "DKIM results", "DKIM verification"),
    _auth_panel("spf", "SPF results", "SPF"),
    _auth_panel("dmarc", "DMARC results", "DMARC"),
    _auth_panel("arc", "ARC results", "ARC"),
    Panel(
        "DKIM signatures by domain",
        "DKIM signatures rspamd added, by signing domain (the domains in rspamd.signing_domains, the rest as other).",
        "mps",
        (Target(_rate("mailpulse_rspamd_dkim_signatures_total", "domain"), "{{domain}}"),),
        stack=True,
    ),
    Panel(
        "Authenticated mail signed and unsigned",
        "Scans of mail from SMTP-authenticated users, by whether rspamd DKIM-signed it. signed=false rising "
        "means signing stopped (RspamdDkimSigningStopped).",
        "mps",
        (Target(_rate("mailpulse_rspamd_authenticated_scans_total", "signed"), "signed={{signed}}"),),
        stack=True,
    ),
]

HEALTH: list[Panel | Row] = [
    Row("Antivirus and rspamd health"),
    Panel(
        "Antivirus detections and failures",
        "Scans in which a virus was found, and scans in which an antivirus scanner failed (the message was "
        "judged without it), by scanner.",
        "eps",
        (
            Target(_rate("mailpulse_rspamd_virus_detections_total", "scanner"), "virus {{scanner}}"),
            Target(_rate("mailpulse_rspamd_antivirus_failures_total", "scanner"), "failed {{scanner}}"),
        ),
        width=8,
    ),
    Panel(
        "Errors and worker events",
        "rspamd log lines reporting a failure, by class (redis, dns, upstream, map, lua, antivirus, "
        "dkim_key ...), and daemon/worker lifecycle events (crashes, restarts).",
        "eps",
        (
            Target(_rate("mailpulse_rspamd_errors_total", "class"), "error {{class}}"),
            Target(_rate("mailpulse_rspamd_lifecycle_events_total", "event, process"), "{{event}} {{process}}"),
        ),
        width=8,
    ),
    Panel(
        "Unreadable and truncated lines",
        "rspamd lines mailpulse could not read (unknown log_format, missing prefix) and verdict lines cut at "
        "rspamd's 8 KiB limit.",
        "eps",
        (
            Target(_rate("mailpulse_rspamd_unparsed_lines_total", "kind"), "unparsed {{kind}}"),
            Target(f"sum(rate(mailpulse_rspamd_truncated_verdicts_total{S}[{RI}]))", "truncated"),
        ),
        width=8,
    ),
]


def build() -> Json:
    return dashboard(
        UID,
        "mailpulse / rspamd",
        "rspamd from its log: actions over time and as a share of scans, scores, scan time, DKIM/SPF/DMARC/ARC "
        "results, DKIM signing by domain, greylisting, antivirus and errors.",
        [*ACTIONS, *SCORES, *AUTH, *HEALTH],
    )
