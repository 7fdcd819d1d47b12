"""rspamd log parser: one line in, one typed event (or Unparsed / FOREIGN) out. Never raises.

    >>> parse = RspamdParser().parse_line
    >>> parse("2026-11-24 15:43:11 #1287(normal) <dd0f18>; task; rspamd_task_timeout: processing of task "
    ...       "time out: 8.0s spent; 8.0s limit; forced processing")
    RspamdError(ts='2026-11-24 15:43:11', tag='dd0f18', error_class='task_timeout')

Prefixes read (rspamd 3.x, logger_file.c / logger_console.c / logger_syslog.c)::

    2026-11-24 15:43:07 #1287(normal) <16afc4>; task; rspamd_task_write_log: ...      file logger
    2026-11-24 15:43:07.12345 #1287(normal) ...                                       log_usec = true
    2026-11-24 15:43:07 [notice] #1287(normal) ...                                    log_severity = true
    (normal) <16afc4>; task; rspamd_task_write_log: ...                               file, systemd = true
    #1287(normal) <16afc4>; task; ...                                                 console, systemd = true
    Nov 24 15:43:07 mx rspamd[1287]: <16afc4>; task; rspamd_task_write_log: ...       syslog (no process type;
                                                                                     module may be empty)
    journald: SYSLOG_IDENTIFIER=rspamd, MESSAGE=<16afc4>; task; rspamd_task_write_log: ... (parse_fields)

The tag (``<16afc4>``) and the module are optional in the file logger; the function (``file.lua:LINE``
for Lua) always ends with ``": "``. Lines of other programs in a syslog file are FOREIGN; a line that
has none of these shapes, or a verdict line that cannot be read, is Unparsed.

To teach mailpulse a new rspamd line, add a handler in :mod:`parsers.rspamd.side`.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailpulse.parsers.numbers import is_digits, uint
from mailpulse.parsers.results import FOREIGN, Foreign, RuleError, Unparsed, rule_error
from mailpulse.parsers.rspamd.events import NOISE, Noise, RspamdError, RspamdEvent, RspamdRepeated, RspamdScan
from mailpulse.parsers.rspamd.side import Handler, resolve
from mailpulse.parsers.rspamd.verdict import parse_verdict, scan_from_parts
from mailpulse.parsers.syslog import split_line, split_tag

__all__ = ["ParseResult", "RspamdParser", "parse_lines", "rspamd_timestamp"]

ParseResult = RspamdEvent | Noise | Unparsed | Foreign | RuleError

_VERDICT = "rspamd_task_write_log"
_REPEATED = "rspamd_log_reset_repeated"
_PROGRAMS = frozenset({"rspamd"})
_ERROR_SEVERITIES = frozenset({"error", "crit"})
_MAX_TRACKED = 1024  # processes whose last line is kept for "Last message repeated"
_HEAD = 200  # the prefix and function name of a line fit in this many characters
# rspamd writes "Last message repeated N times" with N <= 298 (logger_file.c: REPEATS_MAX 300 - REPEATS_MIN 3
# + 1); a larger N is no line rspamd writes (anyone can write to a syslog file): unreadable, so Unparsed.
MAX_REPEATS = 1000


class RspamdParser:
    """Parser for rspamd log lines. Keeps, per process, the event of its last line, because rspamd's
    file logger collapses repeats into ``Last message repeated N times`` (see :class:`RspamdRepeated`)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._last: dict[str, object] = {}

    def parse_line(self, line: str) -> ParseResult:
        """Parse one line of an rspamd log file (any logger: file, console, syslog).

        The hot path is the verdict line under the file logger's plain prefix
        (``2026-11-24 15:43:07 #1287(normal) <16afc4>; task; rspamd_task_write_log: id: ...``). It is
        recognised by index checks and split with ``partition`` at fixed separators: on CPython 3.11 these
        are several times cheaper than a regex or ``str.find`` with arguments, and the long symbol list is
        copied only twice (out of the line, then without the fields after it). Everything else goes
        through :meth:`_line`.

        Verdict lines on this path do not become a process's "last line" for ``Last message repeated``:
        each carries its own scan time, so rspamd never collapses them.
        """
        try:
            plain = line[20] == "#" and line[19] == " "
        except IndexError:
            plain = False
        if plain:
            # "...; rspamd_task_write_log: id: <m@x>, ..., (default: F (no action): [-0.20/15.00" | "SYM(..."
            pre, sep, rest = line.partition("] [")
            if sep:
                # "2026-11-24 15:43:07 #1287(normal) <16afc4" | "id: <m@x>, ..., (default: F (no action): [..."
                before, sep, pre = pre.partition(">; task; rspamd_task_write_log: ")
                if sep and before[-7:-6] == "<":
                    head, sep, verdict = pre.partition(" (default: ")
                    if sep:
                        try:
                            scan = scan_from_parts(line[:19], before[-6:], head, verdict, rest)
                        except Exception as exc:  # a bug the line exposed: counted per rule, never hidden
                            return rule_error(exc)
                        if scan is not None:
                            return scan
            return self._line(line, line[:19], "", 21)
        return self._slow(line)

    def _line(self, line: str, ts: str, severity: str, start: int) -> ParseResult:
        """A file-logger line whose ``#pid(proc) `` starts at ``start``."""
        # "1287(normal) <16afc4>; task; rspamd_task_write_log" + ": "
        pid_proc, sep, body = line[start : start + _HEAD].partition(") ")
        if not sep:
            return Unparsed(ts, "unknown", severity or "info", line)
        header, sep, _ = body.partition(": ")
        if not sep:  # a very long function name: look in the whole line
            header, sep, _ = line[start + len(pid_proc) + 2 :].partition(": ")
            if not sep:
                return Unparsed(ts, "unknown", severity or "info", line)
        msg = line[start + len(pid_proc) + len(header) + 4 :]
        event = self._event(ts, pid_proc, severity, header, msg)
        if type(event) is Unparsed:
            event.text = line
        return event

    __call__ = parse_line

    def parse_fields(self, ts: str, program: str, message: str) -> ParseResult:
        """A journald entry: ``program`` is SYSLOG_IDENTIFIER, ``message`` the MESSAGE field."""
        if program not in _PROGRAMS:
            return FOREIGN
        return self._body(ts, program, "", message, message)

    # -- the prefixes besides the common one ------------------------------------------------------------
    def _slow(self, line: str) -> ParseResult:
        while line[:2] == "\x1b[":  # the console logger's colour codes ("color = true")
            line = line.partition("m")[2]
        first = line[:1]
        if is_digits(first) and line[4:5] == "-" and line[10:11] == " ":
            return self._file(line)
        if first in {"(", "#"}:
            # systemd = true: "(normal) <tag>; ..." (file logger) or "#1287(normal) <tag>; ..." (console)
            return self._body("", "", "", line, line)
        parts = split_line(line)
        if parts is None:
            return Unparsed("", "unknown", "info", line)
        ts, tag, message = parts
        name_pid = split_tag(tag)
        if name_pid is None or name_pid[0] not in _PROGRAMS:
            return FOREIGN
        return self._body(ts, name_pid[1] or name_pid[0], "", message, line)

    def _file(self, line: str) -> ParseResult:
        # "2026-11-24 15:43:07.12345 [notice] #1287(normal) ..." -- fraction and severity are optional
        stamp, sep, _ = line.partition(" #")
        if not sep:
            return Unparsed("", "unknown", "info", line)
        ts, _, severity = stamp.partition(" [")
        if severity:
            if severity[-1:] != "]":
                return Unparsed("", "unknown", "info", line)
            severity = severity[:-1]
        return self._line(line, ts, severity, len(stamp) + 2)

    def _body(self, ts: str, key: str, severity: str, text: str, line: str) -> ParseResult:
        """``text`` starts at ``#pid(proc) ``, ``(proc) `` or the tag; ``key`` names the process if known."""
        if text[:1] in {"#", "("}:
            pid_proc, sep, text = text.partition(") ")
            if not sep:
                return Unparsed(ts, "unknown", "info", line)
            key = pid_proc
        header, sep, msg = text.partition(": ")
        if not sep:
            return Unparsed(ts, "unknown", severity or "info", line)
        event = self._event(ts, key, severity, header, msg)
        if type(event) is Unparsed:
            event.text = line
        return event

    # -- shared by every prefix -----------------------------------------------------------------------------
    def _event(self, ts: str, key: str, severity: str, header: str, msg: str) -> ParseResult:
        """``header`` is ``<tag>; module; function`` (tag and module optional), ``key`` the process."""
        tag = ""
        if header[:1] == "<":
            tag, sep, header = header[1:].partition(">; ")
            if not sep:
                return Unparsed(ts, "unknown", severity or "info", header)
        module, _, function = header.rpartition("; ")
        try:
            if function == _VERDICT:
                event: ParseResult = parse_verdict(ts, tag, msg) or self._not_verdict(ts, tag, msg)
            elif function == _REPEATED:
                event = self._repeated(ts, tag, key, msg)
                self._last[key] = NOISE
                return event
            else:
                handler = self._handlers.get(function)
                if handler is None:
                    handler = resolve(function, module)
                    if len(self._handlers) < 4096:  # function names are few; odd lines must not grow memory
                        self._handlers[function] = handler
                event = handler(ts, tag, msg)
        except Exception as exc:  # a rule raised: a bug the line exposed, counted per rule, never hidden
            return rule_error(exc)
        if event is NOISE and severity in _ERROR_SEVERITIES:
            event = RspamdError(ts, tag, "other")
        last = self._last
        if len(last) >= _MAX_TRACKED and key not in last:
            last.clear()
        last[key] = event
        return event

    @staticmethod
    def _not_verdict(ts: str, tag: str, msg: str) -> ParseResult:
        # the same function logs failures of a $lua{} log variable: "call to log function failed: ..."
        if msg[:8] == "call to " and "failed" in msg:
            return RspamdError(ts, tag, "lua")
        return Unparsed(ts, "task", "notice", msg)

    def _repeated(self, ts: str, tag: str, key: str, msg: str) -> ParseResult:
        # "Last message repeated 5 times"
        words = msg.split(" ")
        count = uint(words[3], MAX_REPEATS) if len(words) == 5 and words[4] == "times" else None
        if count is None or words[:3] != ["Last", "message", "repeated"]:
            return Unparsed(ts, "unknown", "info", msg)
        previous = self._last.get(key, NOISE)
        return RspamdRepeated(ts, tag, max(count - 1, 0), previous)


def rspamd_timestamp(line: str) -> str | None:
    """The raw timestamp of a line (file logger ``2026-11-24 15:43:07[.12345]`` or a syslog prefix), in a
    form :class:`parsers.syslog.TimestampParser` reads; None without one (systemd mode)."""
    if len(line) > 19 and line[4] == "-" and line[10] == " ":
        stamp = line.partition(" ")[2].partition(" ")[0]
        return f"{line[:10]} {stamp}"
    parts = split_line(line)
    return parts[0] if parts is not None else None


def parse_lines(lines: Iterable[str], parser: RspamdParser | None = None) -> list[ParseResult]:
    """Convenience for tests and notebooks."""
    p = parser or RspamdParser()
    return [p.parse_line(line) for line in lines]


__all__ += ["RspamdScan"]
