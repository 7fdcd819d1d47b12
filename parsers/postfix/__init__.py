"""Postfix log parser: one line in, one typed event (or Unparsed / FOREIGN) out. Pure, never raises.

    >>> parse = PostfixParser()
    >>> parse("Jun  3 10:40:57 mail postfix/qmgr[1005]: 4AA091855DA0: removed")
    QueueRemoved(ts='Jun  3 10:40:57', service='qmgr', queue_id='4AA091855DA0')

To teach mailpulse a new line shape, find the daemon in ``HANDLERS`` below and open its module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailpulse.parsers.postfix.common import Handler, level_message
from mailpulse.parsers.postfix.delivery import DeliveryParser
from mailpulse.parsers.postfix.events import PostfixEvent
from mailpulse.parsers.postfix.others import (
    PostscreenParser,
    parse_anvil,
    parse_dnsblog,
    parse_master,
    parse_postfix_script,
    parse_quiet,
    parse_statistics,
    parse_tlsproxy,
)
from mailpulse.parsers.postfix.program import ProgramTable
from mailpulse.parsers.postfix.providers import ProviderTable
from mailpulse.parsers.postfix.queue import CleanupParser, QmgrParser, parse_bounce, parse_pickup, parse_postsuper
from mailpulse.parsers.postfix.smtpd import SmtpdParser
from mailpulse.parsers.postfix.vocab import (
    BLOCKLIST_RULES,
    DELIVERY_RULES,
    REJECT_RULES,
    make_classifier,
)
from mailpulse.parsers.results import FOREIGN, Foreign, RuleError, Unparsed, rule_error
from mailpulse.parsers.syslog import split_line, split_tag

ParseResult = PostfixEvent | Unparsed | Foreign | RuleError

_LEVEL_NAMES = frozenset({"warning", "error", "fatal", "panic"})
_LEVEL_INITIALS = frozenset("wefp")
_UNSEEN: Any = object()
_Entry = tuple[str, str, Handler, Handler]  # service, daemon, handler, level handler


def _common_literal_prefix(patterns: Iterable[str]) -> str | None:
    literal = [p[: min((p.find(c) for c in "*?[" if c in p), default=len(p))] for p in patterns]
    prefix = os.path.commonprefix(literal) if literal else ""  # noqa: RUF071 - strings, not paths
    return prefix or None


@dataclass(frozen=True)
class PostfixParserConfig:
    """What a site may tune; everything has a default that works for a stock Debian Postfix."""

    instances: tuple[str, ...] = ("postfix", "postfix-*")
    service_map: Mapping[str, str] = field(default_factory=dict)
    service_allow: tuple[str, ...] | None = None
    max_services: int = 50
    reject_rules: tuple[tuple[str, str], ...] = ()  # tried before the built-in REJECT_RULES
    delivery_rules: tuple[tuple[str, str], ...] = ()  # tried before the built-in DELIVERY_RULES
    relay_classes: tuple[tuple[str, str], ...] = ()  # (regex on the relay host, class name)
    providers: tuple[tuple[str, str], ...] = ()  # (relay host suffix, provider name), before the built-in ones
    internal_relays: tuple[str, ...] = ()  # relay host names that are ours (hops whose "queued as" links)


class PostfixParser:
    """Callable parser for Postfix log lines, built once from a :class:`PostfixParserConfig`."""

    def __init__(self, config: PostfixParserConfig | None = None) -> None:
        cfg = config or PostfixParserConfig()
        self.programs = ProgramTable(cfg.instances, cfg.service_map, cfg.service_allow, cfg.max_services)
        classify_reject = make_classifier(cfg.reject_rules + REJECT_RULES)
        delivery = DeliveryParser(
            make_classifier(cfg.delivery_rules + DELIVERY_RULES),
            make_classifier(BLOCKLIST_RULES),
            cfg.relay_classes,
            ProviderTable(cfg.providers, cfg.internal_relays),
        )
        smtpd = SmtpdParser(classify_reject)
        self._programs: dict[str, _Entry | None] = {}
        # If every instance name starts with the same letters ("postfix" for postfix and postfix-*), a
        # line whose tag starts otherwise is foreign without further work: half of a typical mail.log.
        self._prefix = _common_literal_prefix(cfg.instances)
        self.handlers: dict[str, Handler] = {
            "smtpd": smtpd,
            "smtp": delivery,
            "lmtp": delivery,
            "local": delivery,
            "virtual": delivery,
            "pipe": delivery,
            "error": delivery,
            "retry": delivery,
            "discard": delivery,
            "qmgr": QmgrParser(delivery),
            "nqmgr": QmgrParser(delivery),
            "oqmgr": QmgrParser(delivery),
            "cleanup": CleanupParser(classify_reject),
            "pickup": parse_pickup,
            "bounce": parse_bounce,
            "postsuper": parse_postsuper,
            "postscreen": PostscreenParser(classify_reject),
            "anvil": parse_anvil,
            "dnsblog": parse_dnsblog,
            "tlsproxy": parse_tlsproxy,
            "master": parse_master,
            "postfix-script": parse_postfix_script,
            "postfix": parse_postfix_script,
            "scache": parse_statistics,
            "verify": parse_statistics,
        }
        # warning/error/fatal/panic lines: a generic LogMessage unless a daemon has more to say
        self.level_handlers: dict[str, Handler] = {"smtpd": smtpd.warning}
        # The host name of the last Postfix line parsed ("" for journald fields). Message tracking reads it
        # in the event's handler, which the pipeline calls right after this parse under the same lock: one
        # attribute store per line instead of a field on every event.
        self.host = ""
        # ... and its program tag with the pid (``postfix/smtpd[1234]``): one smtpd process's lines belong together
        self.tag = ""

    def parse_line(self, line: str) -> ParseResult:
        """Parse one log line (with its syslog prefix).

        This is the hot path (1M lines in the benchmark), written for CPython 3.11's costs: indexing,
        slicing, ``in`` and ``partition`` are cheap there, while ``str.find``/``startswith`` parse their
        arguments the slow way and cost several times more. Another program's line is recognised from
        the first letters of its tag. :func:`parsers.syslog.split_line` is the readable equivalent, used
        for the prefixes this fast path does not cover.
        """
        # "Jun  3 10:40:57 host tag[pid]: message"
        if len(line) > 16 and line[15] == " " and line[9] == ":" and line[3] == " ":
            host, _, rest = line[16:].partition(" ")
            prefix = self._prefix
            if prefix is not None and rest[: len(prefix)] != prefix and rest[:1] != "/":
                return FOREIGN
            tag, sep, message = rest.partition(": ")
            if not sep:
                return self._slow(line)
            ts = line[:15]
            self.host = host
            self.tag = tag
        else:
            return self._slow(line)
        name, bracket, pid = tag.partition("[")
        entry: _Entry | None = self._programs.get(name, _UNSEEN)
        if entry is _UNSEEN:
            entry = self._resolve(name)
        if entry is None:
            return FOREIGN
        if bracket and not (pid[-1:] == "]" and pid[:-1].isdigit() and pid.isascii()):
            return Unparsed(ts, "unknown", "info", line)  # a Postfix tag with a broken pid
        return self._run(ts, entry, message)

    __call__ = parse_line

    def _resolve(self, name: str) -> _Entry | None:
        prog = self.programs.lookup(name)
        entry = None
        if prog is not None:
            daemon = prog.daemon
            handler = self.handlers.get(daemon, parse_quiet)
            entry = (prog.service, daemon, handler, self.level_handlers.get(daemon, level_message))
        # tag names are few; a flood of odd ones must not grow memory. A service still being counted towards
        # its own label (ProgramTable.admit_after) is looked up again on its next line.
        if len(self._programs) < 4096 and (prog is None or prog.settled):
            self._programs[name] = entry
        return entry

    def _slow(self, line: str) -> ParseResult:
        parts = split_line(line)
        if parts is None:
            return Unparsed("", "unknown", "info", line)
        ts, tag, message = parts
        self.host = line[len(ts) :].lstrip(" ").partition(" ")[0]
        self.tag = tag
        name_pid = split_tag(tag)
        if name_pid is None:
            # a broken pid on a Postfix tag is a damaged Postfix line; anything else is not ours
            if self.programs.lookup(tag.partition("[")[0]) is None:
                return FOREIGN
            return Unparsed(ts, "unknown", "info", line)
        return self._fields(ts, name_pid[0], message)

    def parse_fields(self, ts: str, program: str, message: str) -> ParseResult:
        """Parse a message whose program name (``postfix/smtpd``, no pid) is already known: journald."""
        self.host = ""  # journald's fields carry no syslog host
        self.tag = ""
        return self._fields(ts, program, message)

    def _fields(self, ts: str, program: str, message: str) -> ParseResult:
        entry = self._programs.get(program, _UNSEEN)
        if entry is _UNSEEN:
            entry = self._resolve(program)
        if entry is None:
            return FOREIGN
        return self._run(ts, entry, message)

    @staticmethod
    def _run(ts: str, entry: _Entry, message: str) -> ParseResult:
        """Route a message to its daemon's handler, or to its level handler for warning/error/fatal/panic."""
        service, daemon, handler, level_handler = entry
        level = "info"
        try:
            if message[:1] in _LEVEL_INITIALS:
                head, sep, tail = message.partition(": ")
                if sep and head in _LEVEL_NAMES:
                    level, message = head, tail
                    return level_handler(ts, service, daemon, level, message) or Unparsed(ts, daemon, level, message)
            event = handler(ts, service, daemon, level, message)
        except Exception as exc:  # a rule raised: a bug the line exposed, counted per rule, never hidden
            return rule_error(exc)
        if event is None:
            return Unparsed(ts, daemon, level, message)
        return event


def parse_lines(lines: Iterable[str], parser: PostfixParser | None = None) -> list[ParseResult]:
    """Convenience for tests and notebooks."""
    p = parser or PostfixParser()
    return [p(line) for line in lines]
