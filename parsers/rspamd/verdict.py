"""The verdict line: one per scanned message, written by ``rspamd_task_write_log`` at notice level.

The packaged ``log_format`` (rspamd 3.x, conf/logging.inc; every part in ``$if_...{}`` is optional)::

    id: <$mid>,$if_qid{ qid: <$>,}$if_ip{ ip: $,}$if_user{ user: $,}$if_smtp_from{ from: <$>,}
    (default: $is_spam ($action): [$scores] [$symbols_scores_params]),
    len: $len, time: $time_real, dns req: $dns_req, digest: <$digest>$if_smtp_rcpts{, rcpts: <$>}
    $if_mime_rcpts{, mime_rcpts: <$>}$if_filename{, file: $}$if_forced_action{, forced: $}
    $if_settings_id{, settings_id: $}

This is the hot path: one call per scanned message. :func:`scan_from_parts` reads the default layout with
a handful of ``str.partition`` calls at its fixed separators (on CPython 3.11 a partition costs ~70 ns, a
regex over the line ~1.3 µs) and keeps the rest as logged for :class:`RspamdScan`'s properties.
:func:`parse_verdict` is the general entry; it also reads custom formats (fields in another order, another
metric name, no symbol options, extra variables, lines cut short) with key searches. The unescaped parts
are located from their ends: the symbol list ends at the last ``"]), len: "`` (``"]), "`` in a custom
format), the forced action's message at ``(set by <module>)``.
"""

from __future__ import annotations

import re

from mailpulse.parsers.numbers import MAX_BYTES, MAX_MILLISECONDS, MAX_SCORE, decimal, score, uint
from mailpulse.parsers.rspamd.events import RspamdScan, action_name
from mailpulse.parsers.rspamd.symbols import auth_results, with_scores

_NAN = float("nan")

# "F (no action" → "no_action", for every flag: one lookup for the text before "): ["
_FLAG_ACTIONS = {
    f"{flag} ({text}": action_name(text)
    for flag in "TFS"
    for text in ("no action", "greylist", "add header", "rewrite subject", "soft reject", "reject")
}
# a custom log_format may name the metric otherwise than "default"
_METRIC = re.compile(r" ?\(\w+: (?=[TFS] \()")


def scan_from_parts(ts: str, tag: str, head: str, verdict: str, rest: str) -> RspamdScan | None:
    """The default layout, split at ``" (default: "`` and ``"] ["``: ``head`` is ``id: <...>, qid: <...>,
    ...,``, ``verdict`` is ``F (no action): [-0.20/15.00`` and ``rest`` is ``SYM(...){...},...]), len:
    604, ...``. None when it is not the default layout (the caller then tries the general reader)."""
    # "F (no action" | "-0.20/15.00"
    flag_action, sep, scores = verdict.partition("): [")
    symbols, sep2, tail = rest.rpartition("]), len: ")
    # "604" | "46.243ms, dns req: 18, digest: <...>, ..., forced: ..., settings_id: x"
    size_text, sep3, fields = tail.partition(", time: ")
    if not (sep and sep2 and sep3):
        return None
    # The three numbers, checked inline (the hot path) by the rule of parsers/numbers.py: ASCII, within the
    # bound, finite (an int() of digits only). Anything else: the general reader decides (score required,
    # len and time optional; it also reads rspamd's "nan" score).
    score_text = scores.partition("/")[0]
    ms_text = fields.partition("ms")[0]
    if not (size_text.isdigit() and size_text.isascii() and len(size_text) <= 16):
        return None
    try:
        value, size, ms = float(score_text), int(size_text), float(ms_text)
    except ValueError:
        return None
    if not (-MAX_SCORE <= value <= MAX_SCORE and size <= MAX_BYTES and 0.0 <= ms <= MAX_MILLISECONDS
            and score_text.isascii() and ms_text.isascii()):  # fmt: skip
        return None
    action = _FLAG_ACTIONS.get(flag_action)
    if action is None:
        action = action_name(flag_action[3:])
    if "(" not in symbols:  # found at once in a list with scores; a whole scan only without them
        symbols = with_scores(symbols)
    seconds = ms * 0.001
    return RspamdScan(ts, tag, action, value, size, seconds, symbols, auth_results(symbols), True, verdict, head, tail)


def parse_verdict(ts: str, tag: str, text: str) -> RspamdScan | None:
    """``text`` is the message after ``rspamd_task_write_log: ``; None if it is no verdict we can read."""
    pre, sep, rest = text.partition("] [")
    head, sep2, verdict = pre.partition(" (default: ")
    if sep and sep2:
        scan = scan_from_parts(ts, tag, head, verdict, rest)
        if scan is not None:
            return scan
    head, sep, rest = text.partition(" (default: ")
    if not sep:
        m = _METRIC.search(text)
        if m is None:
            return None
        head, rest = text[: m.start()], text[m.end() :]
    return _custom(ts, tag, head, rest)


def _custom(ts: str, tag: str, head: str, rest: str) -> RspamdScan | None:
    """Any other layout: fields found by key, the symbol list possibly without options or cut short."""
    verdict, sep, rest = rest.partition("] [")
    if not sep:
        # no symbol list at all: "F (no action): [-0.20/15.00]), len: ..."
        verdict, sep, rest = rest.partition("]), ")
        if not sep:
            return None
        rest = "]), " + rest
    action_text, sep, scores = verdict[3:].partition("): [")
    if not sep or verdict[1:3] != " (":
        return None
    value = score(scores.partition("/")[0])
    if value is None:  # unreadable, inf or out of range: not a verdict we can count
        return None
    # The symbol list ends at the last "]), " (other fields may come first: "]), groups: [...], len: ...").
    # No end at all: the line was cut inside the list (8 KiB log buffer).
    symbols, sep, tail = rest.rpartition("]), ")
    complete = bool(sep)
    if not sep:
        symbols, tail = rest, ""
    if "(" not in symbols:
        symbols = with_scores(symbols)
    # optional fields: absent, unreadable or out of range, they are unknown (-1, nan)
    size = uint(_field(tail, "len: "), MAX_BYTES)
    ms = decimal(_field(tail, "time: ").partition("ms")[0], MAX_MILLISECONDS)
    return RspamdScan(
        ts,
        tag,
        action_name(action_text),
        value,
        -1 if size is None else size,
        _NAN if ms is None else ms * 0.001,
        symbols,
        auth_results(symbols),
        complete,
        verdict,
        head,
        tail,
    )


def _field(tail: str, key: str) -> str:
    """The value of ``key`` (``"len: "``) in a comma-separated field list, or ""."""
    if tail[: len(key)] == key:
        rest = tail[len(key) :]
    else:
        _, sep, rest = tail.partition(", " + key)
        if not sep:
            return ""
    return rest.partition(",")[0]
