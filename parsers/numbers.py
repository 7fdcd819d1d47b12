"""Reading numbers from log text: plain ASCII digits only, each within a bound.

Every number a parser takes from a log line goes through one of these helpers, because the obvious
builtins are wrong for log text written by anyone who can call ``logger``:

* ``str.isdigit`` is True for ``²`` (superscript two) and U+0661 (Arabic-Indic one); ``int("²")`` then
  raises, and ``int``/``float`` accept Arabic-Indic digits, ``1_000``, ``" 12 "``, ``inf``, ``nan`` and
  ``1e999``;
* an integer of 400 digits is a valid ``int`` that no float can hold: counted into a metric, it made
  every later scrape fail (``OverflowError``), so one line broke ``/metrics`` for good.

The rule (docs/architecture.md, "Numbers"): a number is read only if it is plain ASCII (digits, and for
decimals one ``.``; a leading ``-`` where the field is signed) and within the bound the caller gives.
Anything else is *unreadable*, exactly like a field with letters in it: a line whose required number is
unreadable is ``Unparsed`` (counted, so the damage shows), an optional field that is unreadable is treated
as absent. The helpers return None for unreadable and never raise.
"""

from __future__ import annotations

# Bounds, generous for real logs and small enough that any sum of them stays an exact, finite float.
MAX_COUNT = 10**12  # things counted by a daemon: messages, recipients, connections, ranks, cache entries
MAX_BYTES = 10**15  # a message size: 1 PB
MAX_SECONDS = 1e9  # a delay or duration: 31 years
MAX_MILLISECONDS = 10**12  # the same in ms
MAX_SCORE = 10**9  # the absolute value of a spam score

_DECIMAL = "0123456789."
_DECIMALS = "0123456789./"
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
    """``text`` as a non-negative decimal (``12``, ``0.03``, ``.5``, ``12.``): ASCII digits and at most one
    ``.``, at most ``limit``; else None (so never inf, nan, an exponent, a sign or ``_``)."""
    # only digits and dots (one strip: cheaper than replace() + isdigit()); float() rejects "", "." and "1.2.3"
    if len(text) <= _MAX_LEN and not text.strip(_DECIMAL):
        try:
            value = float(text)
        except ValueError:
            return None
        if value <= limit:
            return value
    return None


def signed_decimal(text: str, limit: float) -> float | None:
    """Like :func:`decimal` with an optional leading ``-``; the absolute value is at most ``limit``."""
    if text[:1] == "-":
        value = decimal(text[1:], limit)
        return None if value is None else -value
    return decimal(text, limit)


def decimals4(text: str, limit: float) -> tuple[float, float, float, float] | None:
    """Four decimals separated by ``/`` (Postfix's ``delays=0.1/2017/0.03/0.05``), each as :func:`decimal`
    reads it. Written out for the hot path: one check of the whole text costs less than four calls."""
    if len(text) > 4 * _MAX_LEN or text.strip(_DECIMALS):
        return None
    try:
        a, b, c, d = text.split("/")
        values = float(a), float(b), float(c), float(d)
    except ValueError:  # not four parts, an empty part, "." or "1.2.3"
        return None
    if max(values) <= limit:
        return values
    return None


_NAN = float("nan")


def score(text: str, limit: float = MAX_SCORE) -> float | None:
    """A spam score as rspamd prints it (``%.2f``): :func:`signed_decimal`, or nan for ``nan``/``-nan``,
    which rspamd writes when a rule produced one (kept as "unknown", never observed). ``inf`` is
    unreadable."""
    if text[-3:] == "nan" and text in ("nan", "-nan"):
        return _NAN
    return signed_decimal(text, limit)
