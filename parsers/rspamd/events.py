"""Typed events for rspamd log lines.

Every event carries ``ts`` (the timestamp exactly as logged, ``""`` for a systemd-mode line without one)
and ``tag``, rspamd's 6-character log id that links the lines of one scan (``""`` for global lines). Fields
documented as "not a label" (qid, Message-ID, tag, module names) are kept for correlation (the qid is the
Postfix queue ID when rspamd runs as a milter) and never reach a metric.

The classes are ``slots=True`` but not ``frozen=True`` (a frozen dataclass sets each field through
``object.__setattr__``, too slow for one event per scanned message). Treat them as immutable all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailpulse.parsers.numbers import score
from mailpulse.parsers.rspamd.symbols import signed_domains


@dataclass(slots=True)
class RspamdEvent:
    ts: str
    tag: str  # not a label


@dataclass(slots=True)
class RspamdScan(RspamdEvent):
    """The per-message verdict line, ``rspamd_task_write_log: id: <...>, qid: <...>, ... (default: F
    (no action): [-0.20/15.00] [SYMBOL(score){options;},...]), len: 604, time: 46.243ms, ...``.

    The parser fills only what every metric needs; the rest is kept as logged and read by the properties
    below when asked. The verdict line is the hot path (one per scanned message), and the labeller
    classifies whole batches of them at once (exporter/metrics/rspamd_labels.py), so the parser does not.

    * ``action``: rspamd's action, spaces made underscores (``no_action``, ``soft_reject``, a custom
      action's name); the metrics bound it.
    * ``symbols``: the raw symbol list between the brackets, options unescaped; read it with
      :mod:`parsers.rspamd.symbols` (or the property ``signed``). A list logged without scores (older
      rspamd, ``$symbols``) is stored with ``(nan)`` after each name, so every reader sees one shape.
    * ``auth``: the DKIM, SPF, DMARC and ARC results, also the properties ``dkim``, ``spf``, ``dmarc``,
      ``arc``.
    * ``verdict`` (``F (no action): [-0.20/15.00``): ``flag``, ``required``.
    * ``head`` (``id: <...>, qid: <...>, ip: ..., user: ..., from: <...>,``): ``qid``, ``message_id``,
      ``authenticated``.
    * ``tail`` (the fields after the symbol list; in the default layout from the value of ``len:`` on):
      ``forced_action``, ``forced_by``, ``settings_id``.
    """

    action: str
    score: float  # nan when rspamd logged nan
    size: int  # message bytes; -1 when not logged
    seconds: float  # scan wall time; nan when not logged
    symbols: str
    auth: tuple[str, str, str, str]  # (dkim, spf, dmarc, arc): vocab enums, "none" when not checked
    complete: bool  # False when the line was cut (rspamd's 8 KiB log buffer) inside the symbol list
    verdict: str
    head: str  # not a label
    tail: str  # not a label

    @property
    def dkim(self) -> str:
        return self.auth[0]

    @property
    def spf(self) -> str:
        return self.auth[1]

    @property
    def dmarc(self) -> str:
        return self.auth[2]

    @property
    def arc(self) -> str:
        return self.auth[3]

    @property
    def signed(self) -> tuple[str, ...]:
        """DKIM signing domains from DKIM_SIGNED's options, lowercase; () when rspamd did not sign."""
        return signed_domains(self.symbols)

    @property
    def authenticated(self) -> bool:
        """The scan had an SMTP AUTH user (``user:`` field)."""
        return " user: " in self.head

    @property
    def forced_action(self) -> str:
        """The action a module forced (same form as ``action``), "" if none."""
        return forced_parts(self.tail)[0]

    @property
    def forced_by(self) -> str:
        """The module that forced the action, as logged (``greylist``, ``GTUBE``, ``task timeout``); ""
        if none or if rspamd cut the value (127 bytes) before it. Not a label."""
        return forced_parts(self.tail)[1]

    @property
    def flag(self) -> str:
        """``T``/``F`` (the action has no/has the ham flag; not a spam flag) or ``S`` (skipped, GTUBE)."""
        return self.verdict[:1]

    @property
    def required(self) -> float:
        """The highest action threshold that applied (settings can change it); nan when unknown."""
        value = score(self.verdict.rpartition("/")[2])
        return float("nan") if value is None else value

    @property
    def qid(self) -> str:
        """rspamd's queue id: Postfix's queue ID when rspamd runs as a milter; "" when absent. Not a label."""
        head = self.head
        if head[:5] == "id: <":
            head = head.partition(">, ")[2]
        if head[:6] == "qid: <":
            qid = head[6:].partition(">")[0]
        else:
            _, sep, rest = head.partition(" qid: <")
            qid = rest.partition(">")[0] if sep else ""
        return "" if qid == "undef" else qid

    @property
    def message_id(self) -> str:
        """The Message-ID without brackets ("undef" if the message had none). Not a label."""
        head = self.head
        return head[5:].partition(">, ")[0] if head[:5] == "id: <" else ""

    @property
    def settings_id(self) -> str:
        """The settings id applied to the scan, "" if none. Not a label."""
        _, sep, value = self.tail.rpartition(", settings_id: ")
        return value if sep else ""


_SET_BY = " (set by "
_ACTION_NAMES = {
    "no action": "no_action", "greylist": "greylist", "add header": "add_header",
    "rewrite subject": "rewrite_subject", "soft reject": "soft_reject", "reject": "reject",
}  # fmt: skip


def action_name(text: str) -> str:
    """``no action`` → ``no_action``; a custom action's name the same way."""
    name = _ACTION_NAMES.get(text)
    return name if name is not None else text.strip().lower().replace(" ", "_")


def forced_parts(tail: str) -> tuple[str, str]:
    """(action, module) from ``..., forced: <action> "<message>"; score=<x> (set by <module>)[, ...]``,
    ("", "") without a forced action.

    The message is not escaped, and rspamd cuts the whole value at 127 bytes (task.c, numbuf), in which
    case the module is lost (""). A settings_id may follow: the module ends at the first ``)`` after the
    last ``(set by``.
    """
    _, sep, forced = tail.partition("forced: ")
    if not sep:
        return "", ""
    action_text, _, message = forced.partition(' "')
    _, sep, module = message.rpartition(_SET_BY)
    if not sep:
        return action_name(action_text), ""
    module, sep, _ = module.partition(")")
    return action_name(action_text), module if sep else ""


@dataclass(slots=True)
class RspamdError(RspamdEvent):
    """A line reporting a failure, by ``error_class`` (vocab.ERROR_CLASSES)."""

    error_class: str


@dataclass(slots=True)
class RspamdLifecycle(RspamdEvent):
    """Daemon and worker lifecycle: ``event`` from vocab.LIFECYCLE_EVENTS, ``process`` the worker type the
    event is about (vocab.PROCESS_TYPES or "other")."""

    event: str
    process: str


@dataclass(slots=True)
class RspamdGreylist(RspamdEvent):
    """greylist.lua's decision: ``greylisted until "..."`` (``detail`` new_record or too_early) or
    ``greylisting pass``."""

    result: str  # greylisted | pass
    detail: str


@dataclass(slots=True)
class RspamdRatelimit(RspamdEvent):
    """``ratelimit "to(50000:limited@example.test)" exceeded``: ``bucket`` is the rule name (``to``);
    the key after it (an address) is never kept."""

    bucket: str


@dataclass(slots=True)
class RspamdLearn(RspamdEvent):
    """A controller learn: ``learned message as spam: <mid>``, ``skip learning: ... already learned as
    ham``."""

    klass: str  # spam | ham | "" when the line does not say
    result: str  # learned | skipped | failed


@dataclass(slots=True)
class RspamdRepeated(RspamdEvent):
    """``Last message repeated N times``: the file logger suppressed identical lines of one process.

    rspamd logs the first four lines, then keeps one copy back, writes it again when the run ends and
    follows it with this line (logger_file.c, REPEATS_MIN = 3): N occurrences were held back, one of which
    was just written. ``count`` is therefore N - 1, the occurrences not seen as lines, and ``previous`` the
    event of that process's previous line, which the aggregator counts ``count`` more times.
    """

    count: int
    previous: object


@dataclass(slots=True)
class Noise:
    """An rspamd line that is well formed but carries nothing mailpulse counts (most info-level lines)."""


# One shared instance, like parsers.results.FOREIGN: most lines of an info-level rspamd log are noise.
NOISE = Noise()
