"""Line shapes shared by several Postfix daemons: queue IDs, access actions, TLS, warnings."""

from __future__ import annotations

import re
from collections.abc import Callable

from mailpulse.parsers.postfix.events import AccessAction, LogMessage, PostfixEvent, TlsConnection, TlsFailure
from mailpulse.parsers.postfix.vocab import ACTIONS, STAGES, TLS_PROTOCOLS, TLS_TRUST, ReplyClassifier, bounded

Handler = Callable[[str, str, str, str, str], PostfixEvent | None]
"""``handler(ts, service, daemon, level, message)``; None means "not a shape I know"."""


def is_queue_id(word: str) -> bool:
    """Short (``4AA091855DA0``) and long (``3mPVKl0Mhjz7sXv``) queue IDs; not ``NOQUEUE``."""
    return 5 <= len(word) <= 24 and word.isalnum() and word.isascii() and word != "NOQUEUE"


# 554 5.7.1 <smtp@example.com>: Relay access denied
# 5.7.1 Spam message rejected            (cleanup milter-reject: enhanced code only)
REPLY_RE = re.compile(r"(?:(?P<code>[2-5]\d\d)[ -])?(?:(?P<dsn>[2-5]\.\d{1,3}\.\d{1,3})\b)?")

# NOQUEUE: reject: RCPT from example.com[1.2.3.4]: 554 5.7.1 ...; from=<a> to=<b> proto=ESMTP helo=<h>
# 08ACF1541B01: milter-reject: END-OF-MESSAGE from x[1.2.3.4]: 5.7.1 Spam; from=<a> ...
# 08ACF1541B01: hold: header Subject: hi from x[1.2.3.4]; from=<a> to=<b> proto=ESMTP helo=<h>: text
ACTION_HEAD_RE = re.compile(r"(?P<qid>NOQUEUE|[0-9A-Za-z]{5,24}): (?P<action>[a-z_-]+): (?P<stage>\S+) ")


def parse_access_action(
    ts: str, service: str, daemon: str, message: str, classify: ReplyClassifier
) -> AccessAction | None:
    """Parse ``QID|NOQUEUE: action: STAGE ...`` lines of smtpd, postscreen and cleanup."""
    head = ACTION_HEAD_RE.match(message)
    if head is None:
        return None
    action = head["action"]
    if action not in ACTIONS:
        if not action.startswith("milter-"):
            return None
        action = "milter-other"  # milter-header-redirect and other rarer milter verdicts
    stage = head["stage"]
    rest = message[head.end() :]
    if stage in ("header", "body"):
        # "header Subject: x from host[ip]; from=<> ... helo=<h>: 5.7.1 text" -- reply after the envelope
        _, sep, reply = rest.rpartition(">: ")
        if not sep:
            reply = ""
    else:
        # "RCPT from host[ip]: 554 5.7.1 text; from=<a> ..." or postscreen "[ip]:port: 550 ..."
        _, sep, reply = rest.partition("]: ")
        if not sep:  # postscreen: "from [ip]:port: reply"
            _, sep, reply = rest.partition(": ")
        # the envelope after the reply is no part of it ("from=<spam...@x>" is not a content verdict)
        text, sep, _ = reply.rpartition("; from=<")
        if not sep:
            text, sep, _ = reply.rpartition("; proto=")
        if sep:
            reply = text
    code, dsn = reply_codes(reply)
    if action in ("hold", "discard", "filter", "redirect", "bcc", "prepend", "replace", "info"):
        reason = "" if not code else classify(reply, dsn or code)
    else:
        reason = classify(reply, dsn or code)
    if action[:7] == "milter-" and reason != "greylist":
        # a milter's verdict is "milter" (rspamd, opendmarc, ...), except greylisting: rspamd greylists
        # through the milter with "4.7.1 Try again later", which is neither a spam verdict nor a failure
        reason = "milter"
    qid = head["qid"]
    return AccessAction(
        ts, service, daemon, action, bounded(stage, STAGES), code, dsn, reason, "" if qid == "NOQUEUE" else qid
    )


def reply_codes(reply: str) -> tuple[str, str]:
    """``554 5.7.1 text`` → ("554", "5.7.1"); ``5.7.1 text`` → ("5xx", "5.7.1"); no codes → ("", "")."""
    m = REPLY_RE.match(reply)
    if m is None:  # pragma: no cover - the pattern matches the empty string
        return "", ""
    code, dsn = m["code"] or "", m["dsn"] or ""
    if not code and dsn:
        code = dsn[0] + "xx"
    return code, dsn


# Anonymous TLS connection established from client2.example.com[89.247.252.53]: TLSv1.3 with cipher ...
# Verified TLS connection established to mx.example.net[192.0.2.1]:25: TLSv1.2 with cipher ...
# TLS connection established from x[192.0.2.1]: TLSv1 with cipher DHE-RSA-AES256-SHA (256/256 bits)  (Postfix 2.x)
_TLS_ESTABLISHED = "TLS connection established "
# tlsproxy (postscreen's STARTTLS): TLS handshake failed for service=smtp peer=[203.0.113.4]:63991
_TLSPROXY_FAILED = "TLS handshake failed for "
# Postfix logs some TLS set-up failures without a level (tls_misc.c, msg_info):
# cannot load Certificate Authority data: disabling TLS support
_TLS_DISABLED = ": disabling TLS support"


def parse_tls(ts: str, service: str, daemon: str, message: str) -> PostfixEvent | None:
    trust, sep, rest = message.partition(" " + _TLS_ESTABLISHED)
    if not sep and message[: len(_TLS_ESTABLISHED)] == _TLS_ESTABLISHED:
        # Postfix 2.x logged no trust level; "other" rather than a guess
        trust, sep, rest = "", _TLS_ESTABLISHED, message[len(_TLS_ESTABLISHED) :]
    if sep:
        before_cipher, sep, _ = rest.partition(" with cipher ")
        if not sep:
            return None
        direction = "inbound" if rest[:5] == "from " else "outbound"
        protocol = before_cipher.rpartition(" ")[2]
        return TlsConnection(
            ts, service, daemon, direction, TLS_TRUST.get(trust, "other"), bounded(protocol, TLS_PROTOCOLS)
        )
    head = message[:16]
    if head == "SSL_accept error" or message[: len(_TLSPROXY_FAILED)] == _TLSPROXY_FAILED:
        return TlsFailure(ts, service, daemon, "inbound")
    if head == "SSL_connect erro":
        return TlsFailure(ts, service, daemon, "outbound")
    if message[-len(_TLS_DISABLED) :] == _TLS_DISABLED:
        # counted as a warning: the daemon runs on without TLS
        return LogMessage(ts, service, daemon, "warning", "tls")
    return None


# Warning texts grouped into the kinds of vocab.MESSAGE_KINDS; first match wins.
WARNING_RULES: tuple[tuple[str, str], ...] = (
    (r"does not resolve to address|address not listed for hostname|hostname \S+ verification failed"
     r"|reverse (?:DNS|hostname)|Name or service not known", "reverse_dns"),
    (r"(?i)milter", "milter"),
    (r"SASL|sasl|authentication", "sasl"),
    (r"TLS|SSL|certificate|tls_|DANE|dane|TLSA", "tls"),
    (r"(?i)\bprocess\b.*(?:exit status|killed by signal)|bad command startup|throttling"
     r"|service \S+ exceeds", "process"),
    (r"(?i)concurrency limit|rate limit|too many (?:connections|errors)|limit exceeded", "limits"),
    (r"non-SMTP command|Illegal address syntax|pipelining|[Ss]yntax error|unknown command", "protocol"),
    (r"(?i)dict_|table |lookup (?:error|failure)|database|\.db\b|\.cdb\b|\.lmdb\b|map ", "lookup_table"),
    (r"(?i)DNS|name service|resolve|MX |no MX|nullMX|res_search|host not found", "dns"),
    (r"(?i)queue file|queue_|corrupt(?:ed)? (?:queue|message)|active queue entries|deferred queue|incoming queue"
     r"|hold queue", "queue"),
    (r"(?i)main\.cf|master\.cf|parameter|not owned by|writable|configuration|unused|obsolete|deprecated"
     r"|compatibility_level|postfix-files|symlink|permission|overriding earlier entry|PATH and PATH differ", "config"),
    (r"(?i)out of memory|no space left|insufficient|disk|file system|fork|too many open files|cannot allocate",
     "resource"),
    (r"(?i)connection (?:refused|timed out|reset)|lost connection|connect to |No route|unreachable", "connection"),
)  # fmt: skip

_WARNING_TABLE = tuple((re.compile(p).search, k) for p, k in WARNING_RULES)
# File and directory names say nothing about the kind of a warning (postfix-script's chroot check:
# "/var/spool/postfix/lib/x86_64-linux-gnu/libnss_dns.so.2 and /lib/x86_64-linux-gnu/libnss_dns.so.2 differ"
# is not about DNS): they are blanked before the rules are tried.
# Only two things about a file are kept: lookup tables (.db, .cdb, .lmdb) and main.cf/master.cf.
_PATHS = re.compile(r"(?<![\w.-])\.{0,2}/[^\s,;:()]*")
_TABLE_SUFFIXES = (".db", ".cdb", ".lmdb", ".dir", ".pag")
_CONFIG_FILES = ("/main.cf", "/master.cf")


def _path_word(m: re.Match[str]) -> str:
    path = m[0]
    if path.endswith(_TABLE_SUFFIXES):
        return "table.db"
    if path.endswith(_CONFIG_FILES):
        return "main.cf"
    return "PATH"


def classify_warning(message: str) -> str:
    if "/" in message:
        message = _PATHS.sub(_path_word, message)
    for search, kind in _WARNING_TABLE:
        if search(message):
            return kind
    return "other"


def level_message(ts: str, service: str, daemon: str, level: str, message: str) -> LogMessage:
    """The fallback for warning/error/fatal/panic lines that no specific rule claimed."""
    return LogMessage(ts, service, daemon, level, classify_warning(message))
