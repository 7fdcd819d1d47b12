"""Dashboard 5, "Domain posture": how the world sees our domains and sending hosts (docs/posture.md).

Top: what fails now (count, by check, the list with reasons). Then SPF's lookup budget and DMARC
policies, DKIM keys, MX TLS certificates / DANE / MTA-STS, blocklists, and the checks' own health. The
posture gauges change once per check interval (an hour by default), so most panels are instant tables
and bar gauges of the current state.
"""

from __future__ import annotations

from dashboards.grafana import RI, Json, Panel, Row, Target, dashboard, hide_columns, sel

UID = "mailpulse-posture"
OK = "mailpulse_posture_check_ok"
HIDE = hide_columns("Time", "Value", "__name__", "job", "instance")

ITEMS: list[Panel | Row] = [
    Row("What fails now"),
    Panel(
        "Failing checks",
        "Posture checks whose last run failed (a defect, or no verdict because of DNS or network trouble).",
        "short",
        (Target(f"count({OK}{sel()} == 0) or vector(0)", "failing", instant=True),),
        kind="stat",
        width=6,
        thresholds=((None, "green"), (1, "red")),
    ),
    Panel(
        "Failing checks by check",
        "Failing targets per check (spf, dkim, dmarc, mta_sts, tlsrpt, mx_tls, dane, rdns, dnsbl).",
        "short",
        (Target(f"count by (check) ({OK}{sel()} == 0)", "{{check}}", instant=True),),
        kind="bargauge",
        width=18,
        min=0,
    ),
    Panel(
        "Failing checks and their reasons",
        "Each failing check: domain, item (DKIM selector, MX host, sender name), blocklist zone and reason. "
        "The runbooks of the Posture* alerts explain each reason.",
        "short",
        (Target(f"{OK}{sel()} == 0", instant=True, fmt="table"),),
        kind="table",
        width=24,
        transformations=(HIDE,),
    ),
    Row("SPF and DMARC"),
    Panel(
        "SPF DNS lookups",
        "DNS-querying terms in each domain's SPF tree, counted as RFC 7208 §4.6.4 says; more than 10 is a "
        "permerror at every receiver.",
        "short",
        (Target(f"max by (domain) (mailpulse_posture_spf_dns_lookups{sel()})", "{{domain}}", instant=True),),
        kind="bargauge",
        width=8,
        min=0,
        max=12,
        thresholds=((None, "green"), (9, "orange"), (11, "red")),
    ),
    Panel(
        "SPF void lookups",
        "SPF terms whose lookup found nothing; more than 2 is a permerror.",
        "short",
        (Target(f"max by (domain) (mailpulse_posture_spf_void_lookups{sel()})", "{{domain}}", instant=True),),
        kind="bargauge",
        width=8,
        min=0,
        max=4,
        thresholds=((None, "green"), (2, "orange"), (3, "red")),
    ),
    Panel(
        "DMARC policies",
        "Each domain's DMARC policy for itself (p), its subdomains (sp) and non-existent subdomains (np); "
        "p=none raises PostureDmarcPolicyNone.",
        "short",
        (Target(f"mailpulse_posture_dmarc_policy_info{sel()} == 1", instant=True, fmt="table"),),
        kind="table",
        width=8,
        transformations=(HIDE,),
    ),
    Row("DKIM"),
    Panel(
        "DKIM key matches the signing key",
        "1 when the published key of a selector is the public half of the configured key file (rspamd or "
        "OpenDKIM); 0 raises PostureDkimKeyBroken.",
        "short",
        (Target(f"mailpulse_posture_dkim_key_match{sel()}", "{{domain}} {{selector}}", instant=True),),
        kind="stat",
        width=12,
        mappings=((1, "match", "green"), (0, "mismatch", "red")),
    ),
    Panel(
        "DKIM key sizes",
        "Published key size per selector and key type (RSA below 1024 bits fails with weak_key).",
        "short",
        (Target(f"mailpulse_posture_dkim_key_bits{sel()}", "{{domain}} {{selector}} {{type}}", instant=True),),
        kind="bargauge",
        width=12,
        min=0,
    ),
    Row("MX TLS, DANE and MTA-STS"),
    Panel(
        "MX certificate time left",
        "Time until the certificate each MX presents after STARTTLS expires; under 14 days raises "
        "PostureMxCertificateExpiring.",
        "s",
        (
            Target(
                f"min by (mx) (mailpulse_posture_mx_cert_not_after_timestamp_seconds{sel()}) - time()",
                "{{mx}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        width=8,
        thresholds=((None, "red"), (7 * 86400, "orange"), (14 * 86400, "green")),
    ),
    Panel(
        "TLSA match",
        "1 when a TLSA record of the MX matches its certificate (DANE-EE by mailpulse, DANE-TA by "
        "posttls-finger); 0 raises PostureTlsaMismatch.",
        "short",
        (Target(f"min by (mx) (mailpulse_posture_tlsa_match{sel()})", "{{mx}}", instant=True),),
        kind="stat",
        width=8,
        mappings=((1, "match", "green"), (0, "mismatch", "red")),
    ),
    Panel(
        "MTA-STS policies",
        "Mode of each domain's MTA-STS policy (enforce, testing, none).",
        "short",
        (Target(f"mailpulse_posture_mta_sts_mode_info{sel()} == 1", instant=True, fmt="table"),),
        kind="table",
        width=8,
        transformations=(HIDE,),
    ),
    Row("Blocklists"),
    Panel(
        "Listings",
        "Senders (ip: the name from the config) and domains listed on a zone now (allowlist zones too).",
        "short",
        (Target(f"mailpulse_posture_dnsbl_listed{sel()} == 1", instant=True, fmt="table"),),
        kind="table",
        width=12,
        transformations=(HIDE,),
    ),
    Panel(
        "Blocklist errors",
        "Lookups that gave an error, by zone and class: public_resolver and over_limit (Spamhaus refuses "
        "us), dead (test point not listed), unknown_code, DNS errors. Never counted as listings.",
        "short",
        (
            Target(
                f"sum by (zone, class) (increase(mailpulse_posture_dnsbl_errors_total{sel()}[{RI}]))",
                "{{zone}} {{class}}",
            ),
        ),
        width=12,
        bars=True,
        stack=True,
    ),
    Row("The checks themselves"),
    Panel(
        "Check runs by result",
        "Runs per second by check and result: ok, failed (a defect), error (no verdict), skipped.",
        "ops",
        (
            Target(
                f"sum by (check, result) (rate(mailpulse_posture_check_runs_total{sel()}[{RI}]))",
                "{{check}} {{result}}",
            ),
        ),
        width=12,
        stack=True,
    ),
    Panel(
        "Slowest check run",
        "The longest last-run duration per check (a check's time limit is its timeout).",
        "s",
        (Target(f"max by (check) (mailpulse_posture_check_duration_seconds{sel()})", "{{check}}"),),
        width=12,
    ),
]


def build() -> Json:
    return dashboard(
        UID,
        "mailpulse / Domain posture",
        "SPF, DKIM, DMARC, MTA-STS, TLS-RPT, MX TLS, DANE, reverse DNS and blocklists of our domains and "
        "sending hosts, as mailpulse's posture checks see them.",
        ITEMS,
    )
