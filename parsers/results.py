"""What every parser returns besides its own events: a line it could not read, or a line not meant for it.

Parsers never raise on input. A line either becomes a typed event, an :class:`Unparsed` (the format is
ours but the shape is unknown: counted, so drift shows), :data:`FOREIGN` (another program's line in the
same file: counted separately, never an error) or, when one of our own rules raised on it (a bug, not bad
input), a :class:`RuleError` naming the rule: counted per rule and logged by the pipeline, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType


@dataclass(slots=True)
class Unparsed:
    """A line of our format whose shape no rule recognises.

    ``daemon`` is a bounded name (a known daemon or ``"unknown"``); ``level`` is the syslog-style level
    the line carried (``info`` when none); ``text`` is kept for debug logging only, never for a label.
    """

    ts: str
    daemon: str
    level: str
    text: str


@dataclass(slots=True)
class Foreign:
    """A line from another program (Dovecot, OpenDKIM, the kernel ...)."""


# One shared instance: foreign lines are common (half of a typical mail.log) and carry no data.
FOREIGN = Foreign()


@dataclass(slots=True)
class RuleError:
    """A parser rule raised on a line: a bug in mailpulse, which the line exposed.

    ``rule`` is a bounded name (``module.function`` of the innermost parser frame, e.g.
    ``delivery.DeliveryParser._delivery``), fit for a label; ``error`` is the exception, for the log.
    """

    rule: str
    error: Exception


_strict = False


def set_strict(strict: bool) -> None:
    """In strict mode a rule that raises is not turned into a :class:`RuleError`: the exception propagates.
    The property tests run strict, so a rule that raises on generated input fails them."""
    global _strict
    _strict = strict


def rule_error(exc: Exception) -> RuleError:
    """The result for a rule that raised ``exc`` (re-raises it in strict mode)."""
    if _strict:
        raise exc
    return RuleError(rule_name(exc.__traceback__), exc)


# "parsers." in a checkout's folder name, "mailpulse.parsers." as installed: taken from this module's name
PARSERS_PACKAGE = __name__.rpartition(".")[0]


def rule_name(tb: TracebackType | None, packages: tuple[str, ...] = (PARSERS_PACKAGE + ".",)) -> str:
    """``module.qualname`` of the innermost traceback frame in one of ``packages`` ("unknown" if none).

    Bounded: the names come from mailpulse's code, not from the line.
    """
    name = "unknown"
    while tb is not None:
        frame = tb.tb_frame
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(packages):
            name = f"{module.rpartition('.')[2]}.{frame.f_code.co_qualname}"
        tb = tb.tb_next
    return name
