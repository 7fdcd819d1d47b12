"""postscreen, dnsblog, anvil, tlsproxy, master, postfix-script, scache, verify and the quiet daemons."""

from __future__ import annotations

from collections.abc import Callable

from mailpulse.parsers.numbers import MAX_COUNT, uint
from mailpulse.parsers.postfix.common import parse_access_action, parse_tls
from mailpulse.parsers.postfix.events import (
    AnvilStatistic,
    DnsblHit,
    Lifecycle,
    LogMessage,
    PostfixEvent,
    PostscreenEvent,
)
from mailpulse.parsers.postfix.vocab import ANVIL_KINDS, ReplyClassifier

# postscreen verdicts of more than one word -> action
POSTSCREEN_PREFIXES = (
    ("WHITELIST VETO ", "allowlist_veto"),
    ("ALLOWLIST VETO ", "allowlist_veto"),
    ("COMMAND PIPELINING ", "pipelining"),
    ("NON-SMTP COMMAND ", "non_smtp_command"),
    ("BARE NEWLINE ", "bare_newline"),
    ("COMMAND TIME LIMIT ", "command_time_limit"),
    ("COMMAND COUNT LIMIT ", "command_count_limit"),
    ("COMMAND LENGTH LIMIT ", "command_length_limit"),
    ("DATA without valid RCPT ", "data_without_rcpt"),
    ("BDAT without valid RCPT ", "bdat_without_rcpt"),
)


MASTER_EVENTS = (
    ("daemon started", "started"),
    ("reload ", "reload"),
    ("terminating on signal", "terminated"),
)
SCRIPT_EVENTS = (
    ("starting the Postfix mail system", "starting"),
    ("stopping the Postfix mail system", "stopping"),
    ("waiting for the Postfix mail system to terminate", "stopping"),
    ("refreshing the Postfix mail system", "refreshing"),
    ("the Postfix mail system is running", "status"),
)
# Informational lines of several daemons that carry no delivery data.
CONFIG_NOTICES = (
    "Postfix is running with backwards-compatible",
    "See http://www.postfix.org/COMPATIBILITY_README",
    "To disable backwards compatibility",
    "Postfix is using backwards-compatible",
    "using backwards-compatible default setting",
)


# postscreen's first word -> action, for the words that decide alone
POSTSCREEN_WORDS = {
    "CONNECT": "connect",
    "PREGREET": "pregreet",
    "HANGUP": "hangup",
    "DISCONNECT": "disconnect",
    "WHITELISTED": "allowlisted",
    "ALLOWLISTED": "allowlisted",
    "BLACKLISTED": "denylisted",
    "DENYLISTED": "denylisted",
}


class PostscreenParser:
    def __init__(self, classify_reject: ReplyClassifier) -> None:
        self._classify = classify_reject

    def __call__(self, ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
        word, _, rest = msg.partition(" ")
        action = POSTSCREEN_WORDS.get(word)
        if action is not None:
            return PostscreenEvent(ts, service, action, 0)
        if word == "PASS":
            second = rest[:4]
            return PostscreenEvent(ts, service, "pass_new" if second == "NEW " else "pass_old", 0) if second in (
                "NEW ", "OLD ") else None  # fmt: skip
        if word == "DNSBL":
            # DNSBL rank 3 for [112.90.37.251]:20438
            parts = rest.split(" ", 2)
            rank = uint(parts[1], MAX_COUNT) if len(parts) == 3 and parts[0] == "rank" else None
            return PostscreenEvent(ts, service, "dnsbl", rank) if rank is not None else None
        if word == "NOQUEUE:":
            return parse_access_action(ts, service, daemon, msg, self._classify)
        for prefix, name in POSTSCREEN_PREFIXES:
            if msg.startswith(prefix):
                return PostscreenEvent(ts, service, name, 0)
        if msg.startswith("cache ") and " cleanup: retained=" in msg:
            return LogMessage(ts, service, daemon, "info", "cache")
        return None


def parse_anvil(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
    # statistics: max connection rate 1/60s for (smtp:1.2.3.4) at Jan 27 06:50:01
    # statistics: max cache size 1 at Oct 26 18:13:50
    if msg[:16] != "statistics: max ":
        return None
    words = msg[16:].split(" ", 3)
    if len(words) < 3:
        return None
    kind = f"{words[0]}_{words[1]}"
    value = uint(words[2].partition("/")[0], MAX_COUNT)
    if kind not in ANVIL_KINDS or value is None:  # a rate of 400 digits is no number anvil writes
        return None
    return AnvilStatistic(ts, service, kind, value)


def parse_dnsblog(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
    # addr 1.2.3.4 listed by domain zen.spamhaus.org as 127.0.0.4
    words = msg.split(" ", 6)
    if len(words) == 7 and words[0] == "addr" and words[2] == "listed" and words[4] == "domain":
        return DnsblHit(ts, service, words[5].lower())
    return None


def parse_tlsproxy(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
    """tlsproxy: postscreen's STARTTLS. Its sessions and handshake failures count as tlsproxy's, never as
    smtpd's (kumina's smtpd TLS family counts smtpd only)."""
    if msg.startswith(("CONNECT from ", "DISCONNECT ")):
        return LogMessage(ts, service, daemon, "info", "connection")
    return parse_tls(ts, service, daemon, msg)


def _lifecycle(table: tuple[tuple[str, str], ...]) -> Callable[[str, str, str, str, str], PostfixEvent | None]:
    def parse(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
        for prefix, event in table:
            if msg.startswith(prefix):
                return Lifecycle(ts, service, daemon, event)
        return parse_quiet(ts, service, daemon, level, msg)

    return parse


parse_master = _lifecycle(MASTER_EVENTS)
parse_postfix_script = _lifecycle(SCRIPT_EVENTS)


def parse_statistics(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
    """scache and verify: periodic statistics and cache cleanups."""
    if msg.startswith("statistics: ") or (msg.startswith("cache ") and " cleanup: retained=" in msg):
        return LogMessage(ts, service, daemon, "info", "statistics")
    return None


def parse_quiet(ts: str, service: str, daemon: str, level: str, msg: str) -> PostfixEvent | None:
    """Daemons that only log warnings and errors (trivial-rewrite, proxymap, tlsmgr, sendmail, ...)."""
    if msg.startswith(CONFIG_NOTICES):
        return LogMessage(ts, service, daemon, "info", "config")
    return None
