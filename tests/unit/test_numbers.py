"""Numbers read from log text: ASCII only, finite, within a bound; anything else is unreadable (None)."""

from __future__ import annotations

import math

import pytest

from mailpulse.parsers.numbers import MAX_COUNT, decimal, decimals4, is_digits, score, signed_decimal, uint

# text that str.isdigit, int() or float() accept (or half-accept) but that no number may be
NOT_NUMBERS = [
    "",
    "²",  # superscript two: isdigit() is True, int() raises
    "1²",
    "\u0661\u0662",  # Arabic-Indic 12: int() and float() read it
    "\uff11\uff12",  # fullwidth 12
    "0x10",
    "inf",
    "nan",
    "-inf",
    "Infinity",
    "1e999",
    "1\x00",
    "\x0012",
]
# float()'s own ASCII spellings: no integer, but read by decimal() as the finite numbers they are
FLOAT_SPELLINGS = [" 12", "12 ", "+12", "1_000", "1e3"]


@pytest.mark.parametrize("text", [*NOT_NUMBERS, *FLOAT_SPELLINGS, "-1", "1.5"])
def test_uint_reads_ascii_digits_only(text: str) -> None:
    """Anything but ASCII digits is unreadable, including what int() would read."""
    assert uint(text, MAX_COUNT) is None


@pytest.mark.parametrize("text", [*NOT_NUMBERS, "-1", "1.2.3", ".", "1/2", "1,5"])
def test_decimal_reads_ascii_finite_non_negative_only(text: str) -> None:
    """Unsigned decimals: ASCII, finite, not negative; never another script's digits, inf or nan."""
    assert decimal(text, 1e9) is None


@pytest.mark.parametrize("text", FLOAT_SPELLINGS)
def test_decimal_reads_floats_ascii_spellings_as_numbers(text: str) -> None:
    """Harmless: a finite number within the bound (checking every character costs 10 % on the verdict path)."""
    value = decimal(text, 1e9)
    assert value is not None
    assert 0 <= value <= 1e9


def test_bounds() -> None:
    """A number above its bound is unreadable; 400 digits never reach int() or float() at all."""
    assert 10**12 == uint("1" + "0" * 12, 10**12)
    assert uint("1" + "0" * 12 + "1", 10**12) is None
    assert uint("9" * 400, MAX_COUNT) is None
    assert uint("0" * 400, MAX_COUNT) is None  # longer than any number a daemon writes
    assert decimal("9" * 400, 1e9) is None
    assert decimal("1" + "0" * 308 + ".5", 1e9) is None
    assert 1e9 == decimal("1000000000", 1e9)
    assert decimal("1000000000.1", 1e9) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("0", 0), ("007", 7), ("604", 604), ("4194304", 4194304)]
)  # fmt: skip
def test_uint_values(text: str, expected: int) -> None:
    assert expected == uint(text, MAX_COUNT)


@pytest.mark.parametrize(
    ("text", "expected"), [("0", 0.0), ("0.03", 0.03), ("2017", 2017.0), (".5", 0.5), ("12.", 12.0)]
)
def test_decimal_values(text: str, expected: float) -> None:
    assert expected == decimal(text, 1e9)


def test_signed_decimal_and_score() -> None:
    """Scores may be negative; rspamd's nan is kept as nan (unknown), inf is unreadable."""
    assert -0.2 == signed_decimal("-0.20", 1e9)
    assert signed_decimal("--1", 1e9) is None
    assert signed_decimal("-", 1e9) is None
    assert signed_decimal("-1e999", 1e9) is None
    assert math.isnan(score("nan") or 0.0)
    assert math.isnan(score("-nan") or 0.0)
    for text in ("inf", "-inf", "1e999", "-" + "9" * 400, "\u0661", "²"):
        assert score(text) is None, text
    assert -1e9 == score("-1000000000")
    assert score("-1000000001") is None


def test_decimals4() -> None:
    """Postfix's delays=a/b/c/d: exactly four plain decimals within the bound."""
    assert (0.1, 2017.0, 0.03, 0.05) == decimals4("0.1/2017/0.03/0.05", 1e9)
    for text in ("0.1/2017/0.03", "0.1/2017/0.03/0.05/1", "0.1//0.03/0.05", "0.1/inf/0.03/0.05", "0.1/²/0/0",
                 "1.2.3/0/0/0", "./0/0/0", "0.1/2017/0.03/" + "9" * 400, "0.1/2017/0.03/1e10", "0/nan/0/0",
                 "0/-1/0/0", "\u0661/0/0/0", ""):  # fmt: skip
        assert decimals4(text, 1e9) is None, text


def test_is_digits() -> None:
    assert is_digits("123")
    assert not is_digits("²")
    assert not is_digits("")
    assert not is_digits("\u0661")
