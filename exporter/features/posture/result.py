"""What one posture check run produces: ok or not, one bounded reason, numbers for the metrics, details
for the human report (details never become labels)."""

from __future__ import annotations

from dataclasses import dataclass, field

# The checks, in report order. Each is scheduled per target (a domain, a selector, an MX, an IP, a zone).
CHECKS = ("spf", "dkim", "dmarc", "mta_sts", "tlsrpt", "mx_tls", "dane", "rdns", "dnsbl")

# Reasons shared by every check: the check could not judge (DNS or network trouble, its own time limit).
ERROR_REASONS = ("dns_timeout", "dns_servfail", "dns_refused", "dns_error", "timeout", "internal")

# Every reason a check can give, by check ("ok" means passed). Metrics and docs/posture.md use these.
REASONS: dict[str, tuple[str, ...]] = {
    "spf": (
        "ok",
        "missing",
        "multiple",
        "syntax",
        "too_many_lookups",
        "too_many_void_lookups",
        "loop",
        "include_missing",
        "ip_not_authorized",
    ),
    "dkim": (
        "ok",
        "missing",
        "syntax",
        "revoked",
        "key_type",
        "weak_key",
        "testing",
        "key_mismatch",
        "key_file_unreadable",
    ),
    "dmarc": ("ok", "missing", "multiple", "syntax", "policy_none", "no_rua", "rua_not_authorized"),
    "mta_sts": (
        "ok",
        "missing",
        "multiple",
        "syntax",
        "fetch_failed",
        "certificate",
        "policy_syntax",
        "mx_not_covered",
    ),
    "tlsrpt": ("ok", "missing", "multiple", "syntax"),
    "mx_tls": (
        "ok",
        "no_mx",
        "connect",
        "no_starttls",
        "handshake",
        "certificate_name",
        "certificate_expired",
        "certificate_expiring",
        "certificate_untrusted",
        "old_protocol",
    ),
    "dane": (
        "ok",
        "no_tlsa",
        "not_validated",
        "tlsa_mismatch",
        "unusable_tlsa",
        "connect",
        "no_starttls",
        "handshake",
        "posttls_finger",
    ),
    "rdns": ("ok", "no_ptr", "no_forward_match", "helo_mismatch"),
    "dnsbl": ("ok", "listed", "zone_error", "unknown_code"),
}
ALL_REASONS = tuple(dict.fromkeys(r for check in CHECKS for r in (*REASONS[check], *ERROR_REASONS)))


@dataclass(frozen=True)
class Target:
    """What a check runs on: the check, and label values taken from the config (or, for MX hosts, from
    the configured domain's MX records, capped)."""

    check: str
    domain: str = ""
    item: str = ""  # selector, MX host, IP name, or "<ip name>" for dnsbl (zone in `zone`)
    zone: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.check, self.domain, self.item, self.zone)

    def label(self) -> str:
        parts = [p for p in (self.domain, self.item, self.zone) if p]
        return " ".join(parts)


@dataclass
class CheckResult:
    target: Target
    ok: bool
    reason: str
    # True when the check reached a verdict; False when DNS, network or its time limit stopped it
    up: bool = True
    values: dict[str, float] = field(default_factory=dict)
    infos: dict[str, str] = field(default_factory=dict)  # enum-valued facts (policy p=, TLS version)
    detail: str = ""  # human words for the report and logs, never a label
    duration: float = 0.0
    finished_at: float = 0.0
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "check": self.target.check, "domain": self.target.domain, "item": self.target.item,
            "zone": self.target.zone, "ok": self.ok, "up": self.up, "reason": self.reason, "detail": self.detail,
            "values": self.values, "infos": self.infos, "warnings": list(self.warnings),
            "duration_seconds": round(self.duration, 4),
        }  # fmt: skip


class CheckFailed(Exception):
    """A check's verdict that stops it early: ``reason`` is from :data:`REASONS` or :data:`ERROR_REASONS`."""

    def __init__(self, reason: str, detail: str = "", *, up: bool = True, values: dict[str, float] | None = None,
                 infos: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason
        self.up = up
        self.values = values or {}  # what was measured before the verdict (a key's bits, a cert's expiry)
        self.infos = infos or {}
