"""smtpd: the SMTP server (port 25, submission, smtps, content-filter re-injection)."""

from __future__ import annotations

import re

from mailpulse.parsers.postfix.common import is_queue_id, level_message, parse_access_action, parse_tls, reply_codes
from mailpulse.parsers.postfix.events import (
    AccessAction,
    ConnectionLost,
    LogMessage,
    PostfixEvent,
    SaslFailure,
    SmtpdAccepted,
    SmtpdConnect,
    SmtpdDisconnect,
)
from mailpulse.parsers.postfix.vocab import COMMANDS, STAGES, ReplyClassifier, bounded

SASL_METHODS = frozenset(
    [
        "PLAIN",
        "LOGIN",
        "CRAM-MD5",
        "DIGEST-MD5",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "XOAUTH2",
        "OAUTHBEARER",
        "GSSAPI",
        "NTLM",
        "EXTERNAL",
        "ANONYMOUS",
    ]
)

# warning: astra4139.startdedicated.de[62.138.2.143]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
SASL_FAIL_RE = re.compile(r"\S+: SASL (\S+) authentication failed")

# lost connection after DATA (0 bytes) from unknown[1.2.3.4]
# timeout after END-OF-MESSAGE from x[1.2.3.4]
# too many errors after RCPT from x[1.2.3.4]
LOST_PREFIXES = (
    ("lost connection after ", "lost"),
    ("timeout after ", "timeout"),
    ("too many errors after ", "too_many_errors"),
)
# improper command pipelining after CONNECT from x[1.2.3.4]: QUIT\r\n
# The client sent commands before their turn; smtpd logs it and the session goes on (it may still end
# well), so this is a protocol note, not an aborted session.
PIPELINING_PREFIX = "improper command pipelining after "


class SmtpdParser:
    """Parse smtpd lines; ``classify_reject`` turns reject replies into a bounded reason."""

    def __init__(self, classify_reject: ReplyClassifier) -> None:
        self._classify = classify_reject

    def __call__(self, ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
        # the two commonest lines first, recognised by a slice compare (cheapest test in CPython 3.11)
        head = msg[:8]
        if head == "connect ":
            return SmtpdConnect(ts, service) if msg[8:13] == "from " else None
        if head == "disconne":
            return SmtpdDisconnect(ts, service, _failed_commands(msg)) if msg[8:16] == "ct from " else None
        head, sep, rest = msg.partition(": ")
        if sep:
            if rest[:7] == "client=" and is_queue_id(head):
                return SmtpdAccepted(ts, service, head, _sasl_method(rest))
            if head == "NOQUEUE" or is_queue_id(head):
                action = parse_access_action(ts, service, daemon, msg, self._classify)
                if action is not None:
                    return action
        if " TLS connection established " in msg:
            return parse_tls(ts, service, daemon, msg)
        for prefix, kind in LOST_PREFIXES:
            if msg[: len(prefix)] == prefix:
                stage = msg[len(prefix) :].partition(" ")[0]
                return ConnectionLost(ts, service, kind, bounded(stage, STAGES))
        if msg[: len(PIPELINING_PREFIX)] == PIPELINING_PREFIX:
            return LogMessage(ts, service, daemon, "info", "pipelining")
        return self._rare(ts, service, daemon, msg)

    def _rare(self, ts: str, service: str, daemon: str, msg: str) -> PostfixEvent | None:
        tls = parse_tls(ts, service, daemon, msg)
        if tls is not None:
            return tls
        if msg.startswith("NOQUEUE: lost connection after "):
            stage = msg[31:].partition(" ")[0]
            return ConnectionLost(ts, service, "lost", bounded(stage, STAGES))
        if msg.startswith("proxy-reject: "):
            # before-queue content filter: "proxy-reject: END-OF-MESSAGE: 554 5.7.0 Reject ...; from=<> ..."
            stage, _, reply = msg[14:].partition(": ")
            code, dsn = reply_codes(reply)
            reason = self._classify(reply, dsn or code)
            return AccessAction(ts, service, daemon, "proxy-reject", bounded(stage, STAGES), code, dsn, reason, "")
        if msg.startswith("proxy-accept: "):
            return LogMessage(ts, service, daemon, "info", "content_filter")
        if msg.startswith("bare <LF> received"):
            return LogMessage(ts, service, daemon, "info", "protocol")
        if msg.startswith("table ") and msg.endswith("has changed -- restarting"):
            return LogMessage(ts, service, daemon, "info", "lookup_table")
        if msg.startswith("setting up TLS connection"):
            return LogMessage(ts, service, daemon, "info", "tls")
        if msg.startswith("discarding EHLO keywords"):
            return LogMessage(ts, service, daemon, "info", "protocol")
        return None

    def warning(self, ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent:
        """warning/error/fatal/panic lines: SASL failures get their own event."""
        if level == "warning":
            m = SASL_FAIL_RE.match(msg)
            if m is not None:
                return SaslFailure(ts, service, bounded(m[1].rstrip(","), SASL_METHODS))
        return level_message(ts, service, daemon, level, msg)


def _sasl_method(rest: str) -> str:
    # client=unknown[30.207.11.100], sasl_method=LOGIN, sasl_username=user@example.com
    _, sep, tail = rest.partition(", sasl_method=")
    if not sep:
        return ""
    return bounded(tail.partition(",")[0], SASL_METHODS)


def _failed_commands(msg: str) -> tuple[str, ...]:
    # disconnect from unknown[30.207.11.100] ehlo=2 starttls=1 auth=0/1 mail=1 rcpt=1/2 quit=1 commands=7/8
    counters = msg.partition("] ")[2]
    if "/" not in counters:
        return ()
    failed = []
    for item in counters.split(" "):
        name, _, counts = item.partition("=")
        good, slash, total = counts.partition("/")
        if slash and good != total and name in COMMANDS:
            failed.append(name)
    return tuple(failed)
