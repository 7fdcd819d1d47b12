"""Dashboard 4, "Mail authentication": inbound verdicts (rspamd) beside outbound ones (what probes' receivers saw).

Left column: what rspamd decided about mail coming in (``mailpulse_rspamd_auth_results_total``, results
allow/reject/na/...). Right column: what the receivers of our own probe messages stated in their
Authentication-Results header (``mailpulse_probe_auth_results_total``, results pass/fail/none/...). The two use
different vocabularies on purpose: each is the checker's own.
"""

from __future__ import annotations

from dashboards.grafana import PSEL, RI, Json, Panel, Row, Target, dashboard, hide_columns, psel, sel

UID = "mailpulse-authentication"
PROBE_INTERVAL = "5m"
INBOUND = "mailpulse_rspamd_auth_results_total"
OUTBOUND = "mailpulse_probe_auth_results_total"
INBOUND_PASS = sel('result=~"allow|allow_with_failures"')
INBOUND_CHECKED = sel('result!="none"')
OUTBOUND_PASS = psel('result="pass"')
UNSIGNED = sel('signed="false"')
BY_DMARC = sel('module="dmarc"')
NAMES = {"dkim": "DKIM", "spf": "SPF", "dmarc": "DMARC"}


def _inbound(method: str) -> Panel:
    selector = sel(f'method="{method}"')
    return Panel(
        f"Inbound {NAMES.get(method, method.upper())} (rspamd)",
        f"rspamd's {method} result for each message it scanned: allow, reject, na (nothing to check), none "
        "(the check did not run: local or authenticated senders) ...",
        "mps",
        (Target(f"sum by (result) (rate({INBOUND}{selector}[{RI}]))", "{{result}}"),),
        stack=True,
    )


def _outbound(method: str) -> Panel:
    selector = psel(f'method="{method}"')
    return Panel(
        f"Outbound {NAMES[method]} (as the receivers saw it)",
        f"The {method} result the receiving side stated for our delivered probe messages, from its "
        "Authentication-Results header. Anything but pass is our problem: see MailProbe"
        f"{NAMES[method].capitalize()}NotPassing.",
        "short",
        (Target(f"sum by (result) (increase({OUTBOUND}{selector}[{RI}]))", "{{result}}"),),
        stack=True,
        bars=True,
        interval=PROBE_INTERVAL,
    )


OVERVIEW: list[Panel | Row] = [
    Row("Pass share over the time range"),
    Panel(
        "Inbound pass share (rspamd)",
        "Share of scanned messages rspamd judged allow (DMARC: allow or allow_with_failures), among those "
        "where the check ran (result other than none), per method.",
        "percentunit",
        (
            Target(
                f"sum by (method) (increase({INBOUND}{INBOUND_PASS}[$__range])) / "
                f"(sum by (method) (increase({INBOUND}{INBOUND_CHECKED}[$__range])) > 0)",
                "{{method}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        min=0,
        max=1,
    ),
    Panel(
        "Outbound pass share (receivers of our probes)",
        "Share of delivered probe messages whose receiver stated pass, per method it reported.",
        "percentunit",
        (
            Target(
                f"sum by (method) (increase({OUTBOUND}{OUTBOUND_PASS}[$__range])) / "
                f"(sum by (method) (increase({OUTBOUND}{PSEL}[$__range])) > 0)",
                "{{method}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        min=0,
        max=1,
        thresholds=((None, "red"), (0.9, "orange"), (1, "green")),
    ),
]

PER_METHOD: list[Panel | Row] = []
for _method in ("dkim", "spf", "dmarc"):
    PER_METHOD += [Row(NAMES[_method]), _inbound(_method), _outbound(_method)]

OWN: list[Panel | Row] = [
    Row("ARC, own DKIM check and signing"),
    _inbound("arc"),
    Panel(
        "mailpulse's own DKIM check of received probes",
        "mailpulse's own verification of the received copy's DKIM signature against DNS: pass, fail (no "
        "signature verifies), none (unsigned), temperror, permerror (no key).",
        "short",
        (Target(f"sum by (result) (increase(mailpulse_probe_dkim_verify_total{PSEL}[{RI}]))", "{{result}}"),),
        stack=True,
        bars=True,
        interval=PROBE_INTERVAL,
    ),
    Panel(
        "DKIM signatures by domain",
        "DKIM signatures rspamd added to outgoing mail, by signing domain.",
        "mps",
        (Target(f"sum by (domain) (rate(mailpulse_rspamd_dkim_signatures_total{sel()}[{RI}]))", "{{domain}}"),),
        width=8,
    ),
    Panel(
        "Authenticated mail left unsigned",
        "Share of mail from SMTP-authenticated users that rspamd did not DKIM-sign. Receivers will see "
        "dkim=none and DMARC will rest on SPF alone.",
        "percentunit",
        (
            Target(
                f"sum(rate(mailpulse_rspamd_authenticated_scans_total{UNSIGNED}[{RI}])) / "
                f"(sum(rate(mailpulse_rspamd_authenticated_scans_total{sel()}[{RI}])) > 0)",
                "unsigned",
            ),
        ),
        width=8,
        min=0,
        max=1,
    ),
    Panel(
        "Inbound mail rejected by DMARC policy",
        "Scans whose action the dmarc module forced (the sender domain's p=reject or p=quarantine).",
        "mps",
        (
            Target(
                f"sum by (action) (rate(mailpulse_rspamd_forced_actions_total{BY_DMARC}[{RI}]))",
                "{{action}}",
            ),
        ),
        width=8,
    ),
    Panel(
        "Last verdicts per probe",
        "What the receiver stated for each method on each probe's last delivered message.",
        "short",
        (Target(f"mailpulse_probe_last_auth_result{PSEL} == 1", instant=True, fmt="table"),),
        kind="table",
        width=24,
        transformations=(hide_columns("Time", "Value", "__name__", "job", "instance"),),
    ),
]


def build() -> Json:
    return dashboard(
        UID,
        "mailpulse / Mail authentication",
        "DKIM, SPF, DMARC and ARC: inbound verdicts rspamd reached, beside the outbound verdicts the receivers "
        "of our probe messages stated.",
        [*OVERVIEW, *PER_METHOD, *OWN],
        probe=True,
    )
