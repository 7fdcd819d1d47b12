"""The posture families: each built at scrape time from the last result of every target, plus counters
of runs, failures and blocklist errors. Labels are config names (domain, selector, MX host, sender name,
zone name) and enums (check, reason, policy, mode, TLS version); never record text, digests or IPs."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric

from mailpulse.exporter.features.posture.result import ALL_REASONS, CHECKS, CheckResult, Target
from mailpulse.exporter.metrics.family import Family, Kind, bounded, enum, label_sets, named

TARGET = ("check", "domain", "item", "zone")
CHECK_OK = Family("mailpulse_posture_check_ok", "1 if the check's last run passed, 0 if not; `reason` says why "
                  "(`ok` when it passed).", Kind.GAUGE, (*TARGET, "reason"))  # fmt: skip
CHECK_UP = Family("mailpulse_posture_check_up", "1 if the check's last run reached a verdict, 0 if DNS, the "
                  "network or its time limit stopped it.", Kind.GAUGE, TARGET)  # fmt: skip
DURATION = Family("mailpulse_posture_check_duration_seconds", "How long the check's last run took.", Kind.GAUGE,
                  TARGET)  # fmt: skip
LAST_RUN = Family("mailpulse_posture_check_last_run_timestamp_seconds", "When the check last finished.",
                  Kind.GAUGE, TARGET)  # fmt: skip
RUNS = Family("mailpulse_posture_check_runs_total", "Check runs by result (`skipped`: the previous run of the "
              "same target was still going).", Kind.COUNTER, ("check", "result"))  # fmt: skip
FAILURES = Family("mailpulse_posture_check_failures_total", "Failed check runs by reason.", Kind.COUNTER,
                  ("check", "reason"))  # fmt: skip
SPF_LOOKUPS = Family("mailpulse_posture_spf_dns_lookups", "DNS-querying terms in the SPF tree (RFC 7208 §4.6.4; "
                     "more than 10 is a permerror).", Kind.GAUGE, ("domain",))  # fmt: skip
SPF_VOIDS = Family("mailpulse_posture_spf_void_lookups", "SPF terms whose lookup found nothing (more than 2 is a "
                   "permerror).", Kind.GAUGE, ("domain",))  # fmt: skip
SPF_SENDER = Family("mailpulse_posture_spf_sender_result", "1 for the SPF result a configured sender's address "
                    "gets for the domain.", Kind.GAUGE, ("domain", "ip", "result"))  # fmt: skip
DKIM_MATCH = Family("mailpulse_posture_dkim_key_match", "1 if the published DKIM key is the public half of the "
                    "configured private key file, 0 if not (only selectors with a key_file).", Kind.GAUGE,
                    ("domain", "selector"))  # fmt: skip
DKIM_BITS = Family("mailpulse_posture_dkim_key_bits", "Size of the published DKIM key.", Kind.GAUGE,
                   ("domain", "selector", "type"))  # fmt: skip
DKIM_TESTING = Family("mailpulse_posture_dkim_testing", "1 if the DKIM record has t=y.", Kind.GAUGE,
                      ("domain", "selector"))  # fmt: skip
DMARC_POLICY = Family("mailpulse_posture_dmarc_policy_info", "Always 1; the DMARC policy for the domain (p), its "
                      "subdomains (sp) and non-existent subdomains (np).", Kind.GAUGE,
                      ("domain", "p", "sp", "np"))  # fmt: skip
DMARC_TESTING = Family("mailpulse_posture_dmarc_testing", "1 if the DMARC record has t=y (RFC 9989 test mode).",
                       Kind.GAUGE, ("domain",))  # fmt: skip
DMARC_PCT = Family("mailpulse_posture_dmarc_pct", "The obsolete pct= of the DMARC record, when it has one.",
                   Kind.GAUGE, ("domain",))  # fmt: skip
DMARC_REPORTS = Family("mailpulse_posture_dmarc_report_addresses", "Report addresses in the DMARC record.",
                       Kind.GAUGE, ("domain", "kind"))  # fmt: skip
STS_MODE = Family("mailpulse_posture_mta_sts_mode_info", "Always 1; the mode of the domain's MTA-STS policy.",
                  Kind.GAUGE, ("domain", "mode"))  # fmt: skip
STS_AGE = Family("mailpulse_posture_mta_sts_max_age_seconds", "max_age of the domain's MTA-STS policy.",
                 Kind.GAUGE, ("domain",))  # fmt: skip
CERT_NOT_AFTER = Family("mailpulse_posture_mx_cert_not_after_timestamp_seconds", "When the certificate an MX "
                        "presents after STARTTLS expires.", Kind.GAUGE, ("domain", "mx"))  # fmt: skip
TLS_VERSION = Family("mailpulse_posture_mx_tls_version_info", "Always 1; the TLS version an MX negotiated.",
                     Kind.GAUGE, ("domain", "mx", "version"))  # fmt: skip
TLSA_MATCH = Family("mailpulse_posture_tlsa_match", "1 if a TLSA record of the MX matches the certificate it "
                    "presents, 0 if none does.", Kind.GAUGE, ("domain", "mx"))  # fmt: skip
TLSA_VALIDATED = Family("mailpulse_posture_tlsa_dnssec_validated", "1 if the MX's TLSA answer came with the AD "
                        "bit (DNSSEC-validated by the resolver).", Kind.GAUGE, ("domain", "mx"))  # fmt: skip
DNSBL_LISTED = Family("mailpulse_posture_dnsbl_listed", "1 if the sender (ip) or domain is on the zone (for an "
                      "allowlist: on it), 0 if not.", Kind.GAUGE, ("zone", "domain", "ip"))  # fmt: skip
DNSBL_ERRORS = Family("mailpulse_posture_dnsbl_errors_total", "Blocklist lookups that gave an error, by zone and "
                      "class (Spamhaus's `public_resolver`, `over_limit`, `typo`; `dead`, `unknown_code`, DNS "
                      "errors).", Kind.COUNTER, ("zone", "class"))  # fmt: skip

FAMILIES = (CHECK_OK, CHECK_UP, DURATION, LAST_RUN, RUNS, FAILURES, SPF_LOOKUPS, SPF_VOIDS, SPF_SENDER, DKIM_MATCH,
            DKIM_BITS, DKIM_TESTING, DMARC_POLICY, DMARC_TESTING, DMARC_PCT, DMARC_REPORTS, STS_MODE, STS_AGE,
            CERT_NOT_AFTER, TLS_VERSION, TLSA_MATCH, TLSA_VALIDATED, DNSBL_LISTED, DNSBL_ERRORS)  # fmt: skip
SPF_RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")
POLICIES = ("none", "quarantine", "reject")
# the classes a zone's table (built-in or `dnsbl.custom[].errors`) may give an error code
ZONE_ERROR_CLASSES = ("typo", "public_resolver", "over_limit", "bad_query", "other")
DNSBL_ERROR_CLASSES = (*ZONE_ERROR_CLASSES, "bad_answer", "not_loopback", "dead", "unknown_code", "dns_timeout",
                       "dns_servfail", "dns_refused", "dns_error", "timeout", "internal")  # fmt: skip
TLS_VERSIONS = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3", "unknown")
STS_MODES = ("enforce", "testing", "none")
KEY_TYPES = ("rsa", "ed25519")
LABEL_SETS = label_sets(
    FAMILIES,
    {
        "check": enum(CHECKS),
        "reason": enum(ALL_REASONS),
        "domain": named("posture.domains[].name", ""),
        "item": bounded(1000, "names from `posture.domains[].dkim[].selector`, `posture.domains[].mx` (or the "
                        "domain's MX records, at most 10 each) and `posture.senders[].name`", ""),
        "zone": named("posture.dnsbl.zones and posture.dnsbl.custom[].name", ""),
        "result": enum(SPF_RESULTS),
        "ip": named("posture.senders[].name", ""),
        "selector": named("posture.domains[].dkim[].selector"),
        "type": enum(KEY_TYPES),
        "p": enum(POLICIES), "sp": enum(POLICIES), "np": enum(POLICIES),
        "kind": enum(("rua", "ruf")),
        "mode": enum(STS_MODES),
        "mx": bounded(10, "MX host names from `posture.domains[].mx` or the domain's MX records", cap_key=""),
        "version": enum(TLS_VERSIONS),
        "class": enum(DNSBL_ERROR_CLASSES),
    },
    {(RUNS, "result"): enum(("ok", "failed", "error", "skipped"))},
)  # fmt: skip


class PostureMetrics:
    """Holds the last result per target and the counters; read and written under the kernel's lock."""

    families = FAMILIES

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self._lock = lock or threading.Lock()
        self.last: dict[tuple[str, str, str, str], CheckResult] = {}
        self.runs: dict[tuple[str, ...], float] = {}
        self.failures: dict[tuple[str, ...], float] = {}
        self.dnsbl_errors: dict[tuple[str, ...], float] = {}

    def keep_only(self, targets: Iterable[Target]) -> None:
        """After a reload: series of targets that left the config disappear; counters stay."""
        keys = {t.key for t in targets}
        with self._lock:
            self.last = {k: v for k, v in self.last.items() if k in keys}

    def record(self, result: CheckResult) -> None:
        """Label values are held to their declared sets here, whatever a check (or a bug in one) put in the
        result: an unknown reason becomes ``internal``, an unknown class ``other``, an unknown version
        ``unknown``, an unknown policy or mode is not exported."""
        if result.reason not in ALL_REASONS:
            result.reason = "internal"
        check = result.target.check
        outcome = "ok" if result.ok else ("failed" if result.up else "error")
        with self._lock:
            self.last[result.target.key] = result
            self.runs[(check, outcome)] = self.runs.get((check, outcome), 0.0) + 1
            if not result.ok:
                self.failures[(check, result.reason)] = self.failures.get((check, result.reason), 0.0) + 1
            if check == "dnsbl" and not result.ok and result.reason != "listed":
                cls = result.infos.get("error_class", result.reason)
                key = (result.target.zone, cls if cls in DNSBL_ERROR_CLASSES else "other")
                self.dnsbl_errors[key] = self.dnsbl_errors.get(key, 0.0) + 1

    def skipped(self, check: str) -> None:
        with self._lock:
            self.runs[(check, "skipped")] = self.runs.get((check, "skipped"), 0.0) + 1

    def results(self) -> list[CheckResult]:
        with self._lock:
            return list(self.last.values())

    def collect(self) -> Iterator[Metric]:
        # the collector calls this under the kernel's lock already (the same lock object)
        stores: dict[Family, dict[tuple[str, ...], float]] = {f: {} for f in FAMILIES}
        for r in self.last.values():
            _add(stores, r)
        stores[RUNS] = dict(self.runs)
        stores[FAILURES] = dict(self.failures)
        stores[DNSBL_ERRORS] = dict(self.dnsbl_errors)
        for family in FAMILIES:
            yield family.from_values(stores[family])


def _put(store: dict[tuple[str, ...], float], key: tuple[str, ...], values: dict[str, float], name: str) -> None:
    if name in values:
        store[key] = values[name]


def _add(stores: dict[Family, dict[tuple[str, ...], float]], r: CheckResult) -> None:
    """One target's series; each measured value only when the check measured it."""
    t = r.target
    key = (t.check, t.domain, t.item, t.zone)
    stores[CHECK_OK][(*key, r.reason)] = float(r.ok)
    stores[CHECK_UP][key] = float(r.up)
    stores[DURATION][key] = r.duration
    stores[LAST_RUN][key] = r.finished_at
    v, i = r.values, r.infos
    if t.check == "spf":
        _put(stores[SPF_LOOKUPS], (t.domain,), v, "lookups")
        _put(stores[SPF_VOIDS], (t.domain,), v, "void_lookups")
        for name, result in i.items():
            if name.startswith("sender:") and result in SPF_RESULTS:
                stores[SPF_SENDER][(t.domain, name[7:], result)] = 1.0
    elif t.check == "dkim":
        _put(stores[DKIM_MATCH], (t.domain, t.item), v, "key_match")
        _put(stores[DKIM_TESTING], (t.domain, t.item), v, "testing")
        key_type = i.get("key_type", "rsa")
        if key_type in KEY_TYPES:
            _put(stores[DKIM_BITS], (t.domain, t.item, key_type), v, "bits")
    elif t.check == "dmarc":
        if all(i.get(k) in POLICIES for k in ("p", "sp", "np")):
            stores[DMARC_POLICY][(t.domain, i["p"], i["sp"], i["np"])] = 1.0
        _put(stores[DMARC_TESTING], (t.domain,), v, "testing")
        _put(stores[DMARC_PCT], (t.domain,), v, "pct")
        for kind in ("rua", "ruf"):
            _put(stores[DMARC_REPORTS], (t.domain, kind), v, kind)
    elif t.check == "mta_sts":
        if i.get("mode") in STS_MODES:
            stores[STS_MODE][(t.domain, i["mode"])] = 1.0
        _put(stores[STS_AGE], (t.domain,), v, "max_age")
    elif t.check == "mx_tls" and "not_after" in v:
        stores[CERT_NOT_AFTER][(t.domain, t.item)] = v["not_after"]
        version = i.get("version", "unknown")
        stores[TLS_VERSION][(t.domain, t.item, version if version in TLS_VERSIONS else "unknown")] = 1.0
    elif t.check == "dane":
        _put(stores[TLSA_MATCH], (t.domain, t.item), v, "match")
        _put(stores[TLSA_VALIDATED], (t.domain, t.item), v, "validated")
    elif t.check == "dnsbl":
        _put(stores[DNSBL_LISTED], (t.zone, t.domain, t.item), v, "listed")
