"""Syslog prefixes and timestamps: BSD without a year, RFC 3339 with fractions and offsets."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from mailpulse.parsers.syslog import TimestampParser, split_line, split_tag


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Jun  3 10:40:57 mail postfix/qmgr[1005]: 4AA: removed", ("Jun  3 10:40:57", "postfix/qmgr[1005]", "4AA: removed")),
        ("Jun 13 10:40:57 mail postfix/qmgr[1005]: x", ("Jun 13 10:40:57", "postfix/qmgr[1005]", "x")),
        ("Jan 1 00:00:00 h postfix/smtpd[1]: x", ("Jan 1 00:00:00", "postfix/smtpd[1]", "x")),
        ("2022-01-08T19:42:13.600000+00:00 mail postfix/qmgr[1]: x",
         ("2022-01-08T19:42:13.600000+00:00", "postfix/qmgr[1]", "x")),
        ("2022-01-08T19:42:13+0000 mail postfix/qmgr[1]: x", ("2022-01-08T19:42:13+0000", "postfix/qmgr[1]", "x")),
        ("Jun  3 10:40:57 mail kernel: [ 1.0] up", ("Jun  3 10:40:57", "kernel", "[ 1.0] up")),
        ("Jun  3 10:40:57 mail postfix/qmgr[1]:", ("Jun  3 10:40:57", "postfix/qmgr[1]", "")),
    ],
)  # fmt: skip
def test_split_line(line: str, expected: tuple[str, str, str]) -> None:
    """The three parts of a syslog line, whatever the timestamp format."""
    assert expected == split_line(line)


@pytest.mark.parametrize(
    "line", ["", "Jan", "Foo 1 00:00:00 hostname", "Jan 1 00:00:00", "Jun  3 10:40:57 mail no colon here"]
)
def test_split_line_rejects_garbage(line: str) -> None:
    """Lines without a syslog prefix give None rather than a guess."""
    assert split_line(line) is None


def test_split_tag() -> None:
    """Program and pid; a broken pid is None."""
    assert ("postfix/smtpd", "12") == split_tag("postfix/smtpd[12]")
    assert ("postfix", "") == split_tag("postfix")
    assert split_tag("postfix/smtpd[abc]") is None
    assert split_tag("postfix/smtpd[12") is None


def test_bsd_timestamp_is_local_time_in_the_reference_year() -> None:
    """BSD stamps carry no year: the reference time decides it."""
    reference = datetime(2026, 11, 24, 12, 0, 0).timestamp()
    parse = TimestampParser(reference)
    assert datetime(2026, 6, 3, 10, 40, 57).timestamp() == parse("Jun  3 10:40:57")


def test_bsd_timestamp_across_new_year() -> None:
    """A December line read in early January belongs to the previous year."""
    reference = datetime(2027, 1, 1, 0, 5, 0).timestamp()
    parse = TimestampParser(reference)
    assert datetime(2026, 12, 31, 23, 59, 59).timestamp() == parse("Dec 31 23:59:59")
    assert datetime(2027, 1, 1, 0, 0, 1).timestamp() == parse("Jan  1 00:00:01")


def test_rfc3339_timestamps() -> None:
    """Offsets with and without a colon, Z, and fractions."""
    parse = TimestampParser()
    expected = 1641670933.6
    assert expected == pytest.approx(parse("2022-01-08T19:42:13.600000+00:00"))
    assert expected == pytest.approx(parse("2022-01-08T19:42:13.600000+0000"))
    assert expected - 0.6 == pytest.approx(parse("2022-01-08T19:42:13Z"))
    assert expected - 3600 == pytest.approx(parse("2022-01-08T19:42:13.6+01:00"))


def test_unreadable_timestamps_are_none() -> None:
    """Garbage never raises."""
    parse = TimestampParser(time.time())
    assert parse("Foo 99 99:99:99") is None
    assert parse("Feb 30 10:00:00") is None
    assert parse("2022-13-45T99:00:00") is None
