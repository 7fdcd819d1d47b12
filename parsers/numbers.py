"""Reading numbers from log text: ASCII only, each within a bound.

Every number a parser takes from a log line goes through one of these helpers (or, on the two hottest
paths, the same checks written inline: Postfix's delivery line, rspamd's verdict line), because the obvious
builtins are wrong for log text written by anyone who can call ``logger``:

* ``str.isdigit`` is True for ``²`` (superscript two) and U+0661 (Arabic-Indic one); ``int("²")`` then
  raises, and ``int``/``float`` accept Arabic-Indic and fullwidth digits, ``inf``, ``nan`` and ``1e999``;
* an integer of 400 digits is a valid ``int`` that no float can hold: counted into a metric, it made
  every later scrape fail (``OverflowError``), so one line broke ``/metrics`` for good.

The rule (docs/architecture.md, "Numbers"):

* an integer is read only if it is plain ASCII digits (at most 32 of them) and within the caller's bound;
* a decimal only if it is ASCII, ``float()`` reads it, and the value is finite and within the bound
  (non-negative unless the field is signed). So never inf, nan, another script's digits or a number too
  big for a float; float's own ASCII spellings (``1e3``, ``1_000``, surrounding blanks) are read as the
  numbers they are: they cannot break anything, and checking every character costs 10 % on the rspamd
  verdict path (measured with callgrind).

Anything else is *unreadable*, exactly like a field with letters in it: out of range is the same as
unreadable. A line whose required number is unreadable is ``Unparsed`` (counted, so the damage shows), an
optional field that is unreadable is treated as absent. The helpers return None for unreadable and never
raise.
"""

from __future__ import annotations

# Bounds, generous for real logs and small enough that any sum of them stays a finite float. The float
# bounds are floats: CPython compares a float with a multi-digit int the slow way.
MAX_COUNT = 10**12  # things counted by a daemon: messages, recipients, connections, ranks, cache entries
MAX_BYTES = 10**15  # a message size: 1 PB
MAX_SECONDS = 1e9  # a delay or duration: 31 years
MAX_MILLISECONDS = 1e12  # the same in ms
MAX_SCORE = 1e9  # the absolute value of a spam score

_MAX_LEN = 32  # longer text is no number a mail daemon writes; int() on it is not free either


def is_digits(text: str) -> bool:
    """True if ``text`` is one or more ASCII digits (``"²"`` and the Arabic-Indic digits are not)."""
    return text.isascii() and text.isdigit()


def uint(text: str, limit: int) -> int | None:
    """``text`` as a non-negative integer: 1 to 32 ASCII digits, at most ``limit``; else None."""
    if len(text) <= _MAX_LEN and text.isascii() and text.isdigit():
        value = int(text)
        if value <= limit:
            return value
    return None


def decimal(text: str, limit: float) -> float | None:
    """``text`` as a decimal in ``[0, limit]`` (``12``, ``0.03``, ``.5``): ASCII that ``float()`` reads, finite;
    else None."""
    if len(text) <= _MAX_LEN and text.isascii():
        try:
            value = float(text)
        except ValueError:
            return None
        if 0.0 <= value <= limit:  # False for nan
            return value
    return None


def signed_decimal(text: str, limit: float) -> float | None:
    """Like :func:`decimal` in ``[-limit, limit]``."""
    if len(text) <= _MAX_LEN and text.isascii():
        try:
            value = float(text)
        except ValueError:
            return None
        if -limit <= value <= limit:
            return value
    return None


def decimals4(text: str, limit: float) -> tuple[float, float, float, float] | None:
    """Four decimals separated by ``/`` (Postfix's ``delays=0.1/2017/0.03/0.05``), each as :func:`decimal`
    reads it. Written out for the hot path: one check of the whole text costs less than four calls."""
    if len(text) > 4 * _MAX_LEN or not text.isascii():
        return None
    try:
        a, b, c, d = text.split("/")
        fa, fb, fc, fd = float(a), float(b), float(c), float(d)
    except ValueError:  # not four parts, or one float() cannot read
        return None
    # each compared on its own: min() and max() let a nan through
    if 0.0 <= fa <= limit and 0.0 <= fb <= limit and 0.0 <= fc <= limit and 0.0 <= fd <= limit:
        return fa, fb, fc, fd
    return None


_NAN = float("nan")


def score(text: str, limit: float = MAX_SCORE) -> float | None:
    """A spam score as rspamd prints it (``%.2f``): :func:`signed_decimal`, or nan for ``nan``/``-nan``,
    which rspamd writes when a rule produced one (kept as "unknown", never observed). ``inf`` is
    unreadable."""
    if text[-3:] == "nan" and text in ("nan", "-nan"):
        return _NAN
    return signed_decimal(text, limit)
