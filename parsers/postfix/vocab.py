"""The bounded vocabularies of Postfix events: every label value mailpulse can emit comes from here.

Free text (server replies, reject messages) is never a label; it is classified into these enums by
ordered pattern tables. Tables are data, so a site can prepend its own rules from the config.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

# SMTP stages as smtpd names them in "lost connection after X" and "reject: X from".
STAGES = frozenset(
    [
        "CONNECT",
        "HELO",
        "EHLO",
        "STARTTLS",
        "AUTH",
        "MAIL",
        "RCPT",
        "DATA",
        "BDAT",
        "END-OF-MESSAGE",
        "RSET",
        "NOOP",
        "VRFY",
        "ETRN",
        "QUIT",
        "UNKNOWN",
        "XCLIENT",
        "XFORWARD",
        "header",
        "body",
    ]
)
COMMANDS = frozenset(
    [
        "helo",
        "ehlo",
        "starttls",
        "auth",
        "mail",
        "rcpt",
        "data",
        "bdat",
        "rset",
        "noop",
        "vrfy",
        "etrn",
        "quit",
        "unknown",
        "xclient",
        "xforward",
    ]
)
ACTIONS = frozenset(
    [
        "reject",
        "reject_warning",
        "milter-reject",
        "milter-hold",
        "milter-discard",
        "proxy-reject",
        "hold",
        "discard",
        "filter",
        "redirect",
        "warning",
        "info",
        "replace",
        "prepend",
        "bcc",
        "defer",
        "milter-other",
    ]
)
REJECT_ACTIONS = frozenset({"reject", "milter-reject", "proxy-reject"})
TLS_TRUST = {"Anonymous": "anonymous", "Untrusted": "untrusted", "Trusted": "trusted", "Verified": "verified"}
TLS_PROTOCOLS = frozenset({"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"})
DELIVERY_STATUSES = frozenset({"sent", "deferred", "bounced", "expired", "deliverable", "undeliverable", "softbounce"})
DELIVERY_AGENTS = frozenset({"smtp", "lmtp", "local", "virtual", "pipe", "error", "retry", "discard", "qmgr", "oqmgr"})
# Postfix 3.11 tls= levels (the part before any ":downgrade", "?" or "/requiretls" suffix).
TLS_LEVELS = frozenset({"none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure"})
RELAY_CLASSES = ("none", "local", "socket", "loopback", "private", "remote")
POSTSCREEN_ACTIONS = frozenset(
    [
        "connect",
        "pass_new",
        "pass_old",
        "dnsbl",
        "pregreet",
        "hangup",
        "disconnect",
        "allowlisted",
        "denylisted",
        "allowlist_veto",
        "pipelining",
        "non_smtp_command",
        "bare_newline",
        "command_time_limit",
        "command_count_limit",
        "command_length_limit",
        "data_without_rcpt",
        "bdat_without_rcpt",
    ]
)
ANVIL_KINDS = frozenset(
    {"connection_rate", "connection_count", "message_rate", "recipient_rate", "newtls_rate", "auth_rate", "cache_size"}
)
LIFECYCLE_EVENTS = frozenset({"started", "reload", "stopping", "starting", "refreshing", "status", "terminated"})
CONNECT_REASONS = ("timeout", "refused", "no_route", "unreachable", "reset", "lost_connection", "no_greeting", "other")
LEVELS = ("info", "warning", "error", "fatal", "panic")

REJECT_REASONS = (
    "rbl", "relay_denied", "unknown_user", "helo", "sender", "client", "recipient", "policy", "greylist",
    "tempfail", "milter", "content", "size", "protocol", "tls", "auth", "rate_limit", "other",
)  # fmt: skip
DELIVERY_REASONS = (
    "blocklisted", "unknown_user", "mailbox_full", "greylisted", "rate_limited", "spam", "authentication",
    "policy", "tls", "connection_refused", "connection_timeout", "network", "dns", "relay_denied",
    "message_size", "transport_unavailable", "loop", "other",
)  # fmt: skip
BLOCKLIST_PROVIDERS = (
    "microsoft", "google", "yahoo", "apple", "att", "comcast", "gmx_webde", "mimecast", "proofpoint",
    "trendmicro", "barracuda", "spamhaus", "spamcop", "other",
)  # fmt: skip

# Ordered (pattern, class) rules; the first match wins. Matched against the reply text of a reject.
REJECT_RULES: tuple[tuple[str, str], ...] = (
    (r"blocked using |[Bb]lock[- ]?listed|[Bb]lack[- ]?listed|\bRBL\b|\bDNSBL\b", "rbl"),
    (r"Relay access denied|[Rr]elaying denied", "relay_denied"),
    (r"(?i)greylist|graylist|try again later.*grey", "greylist"),
    (r"(?i)user unknown|unknown user|undeliverable address|does not exist|no such (?:user|mailbox)"
     r"|unknown in (?:virtual|local|relay) (?:mailbox |alias |recipient )?table", "unknown_user"),
    (r"Helo command rejected", "helo"),
    (r"Sender address rejected", "sender"),
    (r"(?i)\bSPF\b|\bDMARC\b|\bDKIM\b|[Pp]olicy [Rr]ejection|policyd|[Pp]olicy violation", "policy"),
    (r"Client host rejected|cannot find your (?:reverse )?hostname|Access denied", "client"),
    (r"Recipient address rejected", "recipient"),
    (r"Message size exceeds|message too large|Message too big", "size"),
    (r"(?i)spam|virus|content rejected|infected", "content"),
    (r"(?i)STARTTLS|\bTLS\b", "tls"),
    (r"(?i)authentication required|auth(?:entication)? failed", "auth"),
    (r"(?i)rate limit|too many (?:connections|messages|recipients)|too much mail", "rate_limit"),
    (r"(?i)pipelining|Data command rejected|Improper use of SMTP|[Ss]yntax error|Error: ", "protocol"),
    (r"Temporary lookup failure|Service unavailable|[Tt]ry again later|Server configuration", "tempfail"),
)  # fmt: skip

DELIVERY_RULES: tuple[tuple[str, str], ...] = (
    (r"(?i)blocked using|block[- ]?list|black[- ]?list|\bRBL\b|DNSBL|spamhaus|spamcop|poor reputation"
     r"|refused to talk to me|5\.7\.606|5\.7\.511|\bS3140\b|\bTS0[1-4]\b|IP reputation|listed at", "blocklisted"),
    (r"(?i)greylist|graylist|greylisted", "greylisted"),
    (r"(?i)user unknown|unknown user|5\.1\.1\b|does not exist|no such (?:user|mailbox)|invalid recipient"
     r"|recipient (?:address )?rejected|address rejected|mailbox unavailable|unknown in ", "unknown_user"),
    (r"(?i)over ?quota|quota exceeded|mailbox (?:is )?full|5\.2\.2\b|insufficient (?:storage|space)", "mailbox_full"),
    (r"(?i)rate limit|too many (?:messages|connections|recipients)|4\.7\.28|try again later.*rate"
     r"|temporarily deferred|throttl", "rate_limited"),
    (r"(?i)5\.7\.2[3-7]\b|\bSPF\b|\bDKIM\b|\bDMARC\b|authenticat|5\.7\.515", "authentication"),
    (r"(?i)spam|virus|malware|content rejected|unsolicited|phish", "spam"),
    (r"(?i)relay(?:ing)? (?:access )?denied|not permitted to relay|5\.7\.54\b", "relay_denied"),
    (r"(?i)message size|too large|5\.3\.4\b|exceeds size", "message_size"),
    (r"(?i)Cannot start TLS|TLS is required|STARTTLS|certificate|\bTLS\b|\bDANE\b", "tls"),
    (r"(?i)Connection refused", "connection_refused"),
    (r"(?i)timed out|timeout", "connection_timeout"),
    (r"(?i)No route to host|Network is unreachable|lost connection|Connection reset|network", "network"),
    (r"(?i)Host or domain name not found|Name service error|no MX host|nullMX|does not accept mail"
     r"|Host not found|DNS", "dns"),
    (r"(?i)mail transport unavailable|delivery temporarily suspended|service unavailable", "transport_unavailable"),
    (r"(?i)loops back to myself|mail forwarding loop|too many hops", "loop"),
    (r"(?i)policy", "policy"),
)  # fmt: skip

# Remote replies that say we are blocklisted, by provider (after lightmeter's messagerbl catalogue).
BLOCKLIST_RULES: tuple[tuple[str, str], ...] = (
    (r"(?i)outlook\.com|hotmail|protection\.outlook|5\.7\.606|5\.7\.511|\bS3140\b|\bS3150\b|microsoft", "microsoft"),
    (r"(?i)google\.com|gmail|421[- ]4\.7\.0.*(?:unsolicited|reputation)|5\.7\.1.*(?:unsolicited|reputation)", "google"),
    (r"(?i)yahoo|\bTS0[1-4]\b|\[TSS?\d+\]|\baol\b", "yahoo"),
    (r"(?i)icloud|me\.com|apple", "apple"),
    (r"(?i)att\.net|sbc:?blacklist|sbcglobal|bellsouth", "att"),
    (r"(?i)comcast", "comcast"),
    (r"(?i)gmx|web\.de|1und1|ionos", "gmx_webde"),
    (r"(?i)mimecast", "mimecast"),
    (r"(?i)proofpoint|pphosted", "proofpoint"),
    (r"(?i)trend ?micro|\bERS-", "trendmicro"),
    (r"(?i)barracuda", "barracuda"),
    (r"(?i)spamhaus", "spamhaus"),
    (r"(?i)spamcop", "spamcop"),
)  # fmt: skip


def make_classifier(rules: Iterable[tuple[str, str]], default: str = "other") -> Callable[[str], str]:
    """Compile ordered ``(regex, class)`` rules once and return ``classify(text) -> class``."""
    table = tuple((re.compile(pattern).search, label) for pattern, label in rules)

    def classify(text: str) -> str:
        for search, label in table:
            if search(text):
                return label
        return default

    return classify


def bounded(value: str, allowed: frozenset[str] | Sequence[str], default: str = "other") -> str:
    return value if value in allowed else default
