"""The edges to the libraries: aioimaplib's raw FETCH/LIST lines parsed, folders resolved, SMTP errors and
replies classified into bounded reasons."""

from __future__ import annotations

import socket
import ssl
from typing import NoReturn

import aiosmtplib
import pytest

from mailpulse.probes.imapparse import decode_mutf7, find_named, find_special, parse_fetch, parse_list, quote
from mailpulse.probes.send import classify, queue_id_of

HEADER = bytearray(b"Subject: x\r\nX-Mailpulse-Probe: v=1\r\n\r\n")


def test_fetch_dovecot_order() -> None:
    """UID, INTERNALDATE and size before the literal (Dovecot), several messages, trailing status line."""
    lines = [b'1 FETCH (UID 7 INTERNALDATE "24-Nov-2026 17:05:24 +0000" RFC822.SIZE 2890 BODY[HEADER] {38}',
             HEADER, b")", b'2 FETCH (UID 9 INTERNALDATE " 4-Nov-2026 01:02:03 +0100" RFC822.SIZE 10 BODY[HEADER] {38}',
             HEADER, b")", b"Fetch completed (0.001 + 0.000 secs)."]  # fmt: skip
    a, b = parse_fetch(lines)  # type: ignore[arg-type]
    assert (7, 2890, bytes(HEADER)) == (a.uid, a.size, a.section("BODY[HEADER]"))
    assert 1795539924.0 == a.internaldate
    assert (9, 1793750523.0) == (b.uid, b.internaldate)


def test_fetch_fields_after_the_literal() -> None:
    """Exchange/Gmail may put UID and INTERNALDATE after the literal: still found."""
    lines = [b"3 FETCH (BODY[HEADER] {38}", HEADER, b' UID 12 INTERNALDATE "01-Jan-2027 00:00:00 +0000" FLAGS (\\Seen))',
             b"OK done"]  # fmt: skip
    (item,) = parse_fetch(lines)  # type: ignore[arg-type]
    assert (12, ("\\Seen",), bytes(HEADER)) == (item.uid, item.flags, item.section("BODY[HEADER]"))


def test_list_special_use_quoted_literal_and_utf7() -> None:
    """SPECIAL-USE flags, quoted names with spaces, names as literals, modified UTF-7 display names."""
    lines = [b'(\\HasNoChildren \\Junk) "/" Junk', b'(\\HasNoChildren) "/" "Junk Email"',
             b'(\\HasNoChildren \\Trash) "." {14}', bytearray(b"INBOX.Papierkorb"),
             b'(\\HasNoChildren) "/" "Entw&APw-rfe"', b'(\\HasNoChildren) "/" INBOX', b"List completed."]  # fmt: skip
    folders = parse_list(lines)  # type: ignore[arg-type]
    assert ["Junk", "Junk Email", "INBOX.Papierkorb", "Entw&APw-rfe", "INBOX"] == [f.name for f in folders]
    assert "Entwürfe" == folders[3].display
    assert "Junk" == (find_special(folders, "\\Junk") or _no()).name
    assert "INBOX.Papierkorb" == (find_special(folders, "\\Trash") or _no()).name
    assert "Entw&APw-rfe" == (find_named(folders, "Entwürfe") or _no()).name


def test_folder_heuristics_without_special_use() -> None:
    """Exchange (no SPECIAL-USE before auth) and Yahoo: the usual names are recognised."""
    exchange = parse_list([b'(\\HasNoChildren) "/" "Junk Email"', b'(\\HasNoChildren) "/" "Deleted Items"'])
    yahoo = parse_list([b'(\\HasNoChildren) "/" "Bulk"', b'(\\HasNoChildren) "/" "Trash"'])
    assert ("Junk Email", "Deleted Items") == ((find_special(exchange, "\\Junk") or _no()).name,
                                               (find_special(exchange, "\\Trash") or _no()).name)  # fmt: skip
    assert "Bulk" == (find_special(yahoo, "\\Junk") or _no()).name
    assert find_special(parse_list([b'() "/" INBOX']), "\\Junk") is None


def test_quote_and_mutf7_edge_cases() -> None:
    """Names with quotes and backslashes are escaped; '&-' is '&'; broken UTF-7 stays as is."""
    assert '"a \\"b\\" \\\\c"' == quote('a "b" \\c')
    assert "R&D" == decode_mutf7("R&-D")
    assert "x&broken" == decode_mutf7("x&broken")


def _no() -> NoReturn:
    raise AssertionError("not found")


def _caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "step", "reason"),
    [
        (_caused(aiosmtplib.SMTPConnectError("x"), socket.gaierror(-2, "Name or service not known")), "connect",
         "dns"),
        (_caused(aiosmtplib.SMTPConnectError("x"), ConnectionRefusedError(111, "refused")), "connect", "connect"),
        (_caused(aiosmtplib.SMTPConnectError("x"), ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED")),
         "connect", "tls"),
        (aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."), "connect", "tls"),
        (aiosmtplib.SMTPConnectTimeoutError("Timed out connecting"), "connect", "timeout"),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Error: authentication failed"), "auth", "auth"),
        (aiosmtplib.SMTPException("No suitable authentication method found."), "auth", "auth"),
        (aiosmtplib.SMTPRecipientRefused(450, "4.7.1 greylisted", "x@y"), "rcpt", "rejected_4xx"),
        (aiosmtplib.SMTPDataError(554, "5.7.1 Gtube pattern"), "data", "rejected_5xx"),
        (aiosmtplib.SMTPServerDisconnected("Connection lost"), "data", "protocol"),
    ],
)  # fmt: skip
def test_smtp_errors_are_classified(exc: BaseException, step: str, reason: str) -> None:
    """Each library error maps to one bounded reason."""
    assert reason == classify(exc, step)


def test_queue_ids_from_replies() -> None:
    """Postfix, Gmail and Exchange style 250 replies yield their queue ID."""
    assert "37D7220C2F3" == queue_id_of("2.0.0 Ok: queued as 37D7220C2F3")
    assert "a1-20020a.3" == queue_id_of("2.0.0 OK  1700000000 a1-20020a.3 - gsmtp")
    assert "12345" == queue_id_of("2.6.0 <x@y> [InternalId=12345, Hostname=AM0PR] Queued mail for delivery")
    assert queue_id_of("250 ok") is None
