"""The bounded vocabularies of Postfix events: every label value mailpulse can emit comes from here.

Free text (server replies, reject messages) is never a label; it is classified into these enums by
ordered pattern tables. Tables are data, so a site can prepend its own rules from the config.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

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
    "blocklisted", "unknown_user", "mailbox_full", "mailbox_unavailable", "greylisted", "rate_limited", "spam",
    "authentication", "policy", "tls", "connection_refused", "connection_timeout", "network", "dns",
    "relay_denied", "message_size", "transport_unavailable", "loop", "other",
)  # fmt: skip
BLOCKLIST_PROVIDERS = (
    "microsoft", "google", "yahoo", "apple", "att", "comcast", "gmx_webde", "mimecast", "proofpoint",
    "trendmicro", "barracuda", "spamhaus", "spamcop", "other",
)  # fmt: skip

# Reply classification: ordered (pattern, class) rules, the first match wins. The strongest evidence comes
# first (RFC 3463 / RFC 7372 enhanced status codes that name one cause), then the reply text naming a cause,
# then the object Postfix rejected (Client host, Helo command, Sender address, Recipient address), and last
# the enhanced codes that only say "mailbox" or "policy" in general. A rule is one of:
#   "regex"              searched in the reply text;
#   "dsn:1.1|2.2|7.*"    the enhanced code's subject.detail (the class digit left out) is one of these
#                        ("7.*": any detail of subject 7);
#   "4xx:regex"          the regex, for a temporary (4xx) reply only: a 5xx is never a temporary failure.
# Site rules from the config are plain regexes and come before all of these.
_AUTH_CODES = "dsn:7.20|7.21|7.22|7.23|7.24|7.25|7.26|7.29"  # RFC 7372 DKIM, SPF, reverse DNS, multiple; ARC
# rspamd's greylisting (and soft reject) reply, seen through a milter or from a remote rspamd: nothing else
_RSPAMD_GREYLIST = r"\b4\.7\.1 Try again later(?:;| \(in reply|\)?$)"

# Matched against the reply of a reject (smtpd, postscreen, cleanup, before-queue filters).
REJECT_RULES: tuple[tuple[str, str], ...] = (
    ("dsn:1.1", "unknown_user"),
    ("dsn:3.4", "size"),
    ("dsn:7.25", "client"),  # RFC 7372: the client's reverse DNS (reject_unknown_client_hostname)
    (_AUTH_CODES, "policy"),
    ("dsn:7.27", "sender"),  # RFC 7505: the sender's domain has a null MX
    (r"blocked using |[Bb]lock[- ]?listed|[Bb]lack[- ]?listed|\bRBL\b|\bDNSBL\b", "rbl"),
    (r"Relay access denied|[Rr]elaying denied", "relay_denied"),
    (r"(?i)greylist|graylist|try again later.*grey", "greylist"),
    (_RSPAMD_GREYLIST, "greylist"),
    (r"(?i)user unknown|unknown user|undeliverable address|does not exist|no such (?:user|mailbox)"
     r"|unknown in (?:virtual|local|relay) (?:mailbox |alias |recipient )?table", "unknown_user"),
    (r"(?i)\bSPF\b|\bDMARC\b|\bDKIM\b|[Pp]olicy [Rr]ejection|policyd|[Pp]olicy violation", "policy"),
    (r"Message size exceeds|message too large|Message too big", "size"),
    (r"(?i)spam|virus|content rejected|infected", "content"),
    (r"(?i)STARTTLS|\bTLS\b", "tls"),
    (r"(?i)authentication required|auth(?:entication)? failed", "auth"),
    (r"(?i)rate limit|too many (?:connections|messages|recipients|e-?mails)|too much mail", "rate_limit"),
    (r"(?i)pipelining|Data command rejected|Improper use of SMTP|[Ss]yntax error|Error: ", "protocol"),
    # the object Postfix names; "Access denied" and the like say no more than the object does
    (r"Helo command rejected", "helo"),
    (r"Sender address rejected", "sender"),
    (r"Client host rejected|cannot find your (?:reverse )?hostname", "client"),
    (r"Recipient address rejected", "recipient"),
    (r"4xx:Temporary lookup failure|Service unavailable|[Tt]ry again later|Server configuration", "tempfail"),
    ("dsn:7.*", "policy"),  # X.7.x, "delivery not authorized": a policy said no, and nothing said which
)  # fmt: skip

# Matched against the reply of a deferred or bounced delivery (and non-final "host X said" replies).
DELIVERY_RULES: tuple[tuple[str, str], ...] = (
    # Quota text names the cause outright; some receivers send it with X.1.1 ("452 4.1.1 ... user is over
    # quota"), and an admin must see a full mailbox there, not an address that does not exist.
    (r"(?i)over ?quota|quota exceeded", "mailbox_full"),
    ("dsn:1.1", "unknown_user"),
    ("dsn:2.2", "mailbox_full"),
    ("dsn:3.4|2.3", "message_size"),
    (_AUTH_CODES + "|7.27|7.8", "authentication"),
    ("dsn:7.606|7.511", "blocklisted"),  # Microsoft: banned sending IP, IP on the block list
    (r"(?i)blocked using|block[- ]?list|black[- ]?list|\bRBL\b|DNSBL|spamhaus|spamcop|poor reputation"
     r"|5\.7\.606|5\.7\.511|\bS3140\b|\bTS0[1-4]\b|IP reputation|listed at|(?:is|are|been) (?:currently )?banned"
     r"|(?:is|are) currently blocked|banned sending IP|your IP(?: address)? has been (?:temporarily )?blocked"
     r"|(?:low|bad) reputation", "blocklisted"),
    # a refused greeting is a blocklisting only when its text says so
    (r"refused to talk to me: .*\b(?:[Bb]locked|BLOCKED|[Bb]anned|[Ll]isted)\b", "blocklisted"),
    (r"(?i)greylist|graylist|greylisted", "greylisted"),
    (_RSPAMD_GREYLIST, "greylisted"),
    (r"(?i)rate limit|too many (?:invalid |bad |unknown )?(?:messages|connections|recipients)|4\.7\.28"
     r"|try again later.*rate"
     r"|temporarily deferred|throttl|receiving mail (?:at a rate|too quickly)", "rate_limited"),
    (r"(?i)over ?quota|quota exceeded|mailbox (?:is )?full|insufficient (?:storage|space)", "mailbox_full"),
    (r"(?i)mailbox (?:is )?(?:busy|disabled|inactive|locked|temporarily unavailable)"
     r"|account (?:is )?(?:disabled|inactive|suspended)", "mailbox_unavailable"),
    (r"(?i)user unknown|unknown user|5\.1\.1\b|does not exist|no such (?:user|mailbox)|invalid recipient"
     r"|mailbox unavailable|unknown in ", "unknown_user"),
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
    ("dsn:2.0|2.1", "mailbox_unavailable"),  # X.2.0 / X.2.1: the mailbox is busy or disabled
    ("dsn:7.*", "policy"),
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


class ReplyClassifier(Protocol):
    """``classify(text, status)``: the class of a reply. ``status`` is the enhanced status code
    (``5.7.23``), or the reply code (``550``) when there is none, or ""."""

    def __call__(self, text: str, status: str = "", /) -> str: ...


_TEXT, _DSN, _TEMPORARY = 0, 1, 2
# kind, text search (text rules), exact details and detail prefixes (dsn rules), class
_Rule = tuple[int, Callable[[str], object], frozenset[str], tuple[str, ...], str]


def _no_text(text: str) -> None:
    return None


def _compile_rule(pattern: str, label: str) -> _Rule:
    if pattern[:4] == "dsn:":
        details = pattern[4:].split("|")
        exact = frozenset(d for d in details if d[-1:] != "*")
        prefixes = tuple(d[:-1] for d in details if d[-1:] == "*")
        return _DSN, _no_text, exact, prefixes, label
    if pattern[:4] == "4xx:":
        return _TEMPORARY, re.compile(pattern[4:]).search, frozenset(), (), label
    return _TEXT, re.compile(pattern).search, frozenset(), (), label


def make_classifier(rules: Iterable[tuple[str, str]], default: str = "other") -> ReplyClassifier:
    """Compile ordered ``(rule, class)`` pairs once (see REJECT_RULES for the rule forms) and return
    ``classify(text, status="") -> class``."""
    table = tuple(_compile_rule(pattern, label) for pattern, label in rules)

    def classify(text: str, status: str = "", /) -> str:
        # "5.7.23" -> "7.23"; a class other than 2, 4 or 5 is no status code (synthetic "1.2.3")
        detail = status[2:] if status[1:2] == "." and status[:1] in "245" else ""
        temporary = status[:1] == "4"
        for kind, search, exact, prefixes, label in table:
            if kind == _TEXT:
                if search(text):
                    return label
            elif kind == _DSN:
                if detail and (detail in exact or detail.startswith(prefixes)):
                    return label
            elif temporary and search(text):
                return label
        return default

    return classify


def bounded(value: str, allowed: frozenset[str] | Sequence[str], default: str = "other") -> str:
    return value if value in allowed else default
