"""``scan --summary`` grand totals, compared with pflogsumm's definitions (issue 9, section B).

The logs are written by hand after Postfix's own lines (amavis-style content filter on 127.0.0.1:10024
re-injecting through 127.0.0.1:10025, local(8) forwarding, smtpd sessions).
"""

from __future__ import annotations

import io
from pathlib import Path

from mailpulse.exporter.features import scan_logs as scan
from mailpulse.exporter.summary import FOOTER

P = "Nov 24 16:58"


def totals(tmp_path: Path, lines: list[str]) -> tuple[dict[str, int], str]:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    out = io.StringIO()
    assert 0 == scan([str(log)], [], summary=True, progress=False, out=out, err=io.StringIO())
    text = out.getvalue()
    grand = text.partition("Grand totals\n------------\n")[2].partition("\n\n")[0]
    values: dict[str, int] = {}
    for row in grand.splitlines():
        number, _, label = row.strip().partition("  ")
        if number.isdigit():
            values[label.strip()] = int(number)
    return values, text


def filtered_message(syslog_name: str, reinject_client: str) -> list[str]:
    """One message from outside, through a content filter, re-injected, delivered by lmtp."""
    return [
        f"{P}:01 mx postfix/smtpd[10]: connect from client.example.org[192.0.2.10]",
        f"{P}:01 mx postfix/smtpd[10]: 3F1A2B3C4D: client=client.example.org[192.0.2.10]",
        f"{P}:01 mx postfix/cleanup[11]: 3F1A2B3C4D: message-id=<m1@example.org>",
        f"{P}:01 mx postfix/qmgr[12]: 3F1A2B3C4D: from=<a@example.org>, size=1315, nrcpt=1 (queue active)",
        f"{P}:01 mx postfix/smtpd[10]: disconnect from client.example.org[192.0.2.10] ehlo=1 mail=1 rcpt=1 data=1 "
        "quit=1 commands=5",
        f"{P}:02 mx {syslog_name}/smtpd[13]: connect from {reinject_client}",
        f"{P}:02 mx {syslog_name}/smtpd[13]: 7E8F9A0B1C: client={reinject_client}, orig_queue_id=3F1A2B3C4D, "
        "orig_client=client.example.org[192.0.2.10]",
        f"{P}:02 mx postfix/cleanup[11]: 7E8F9A0B1C: message-id=<m1@example.org>",
        f"{P}:02 mx postfix/qmgr[12]: 7E8F9A0B1C: from=<a@example.org>, size=2135, nrcpt=1 (queue active)",
        f"{P}:02 mx {syslog_name}/smtpd[13]: disconnect from {reinject_client} ehlo=1 xforward=1 mail=1 rcpt=1 "
        "data=1 quit=1 commands=6",
        f"{P}:02 mx postfix/smtp[14]: 3F1A2B3C4D: to=<b@example.net>, relay=127.0.0.1[127.0.0.1]:10024, delay=1.1, "
        "delays=0.1/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: "
        "queued as 7E8F9A0B1C)",
        f"{P}:02 mx postfix/qmgr[12]: 3F1A2B3C4D: removed",
        f"{P}:03 mx postfix/lmtp[15]: 7E8F9A0B1C: to=<b@example.net>, relay=mx.example.net[private/dovecot-lmtp], "
        "delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 <b@example.net> Saved)",
        f"{P}:03 mx postfix/qmgr[12]: 7E8F9A0B1C: removed",
    ]


def test_reinjection_through_a_second_smtpd_is_received_once(tmp_path: Path) -> None:
    """A content filter that re-injects through postfix/10025/smtpd: one message received, one delivered."""
    values, _ = totals(tmp_path, filtered_message("postfix/10025", "localhost[127.0.0.1]"))
    assert 1 == values["received"]
    assert 1 == values["delivered"]
    assert 1 == values["handed on and received again (content filter, next host)"]


def test_reinjection_through_the_main_smtpd_is_received_once(tmp_path: Path) -> None:
    """The same through the main smtpd from localhost (where pflogsumm counts two): still one, also in the
    per-hour table."""
    values, text = totals(tmp_path, filtered_message("postfix", "localhost[127.0.0.1]"))
    assert (1, 1) == (values["received"], values["delivered"])
    hours = text.partition("Per hour\n--------\n")[2].partition("\n\n")[0].splitlines()[1:]
    columns = [row.split()[-5:] for row in hours]
    assert [1, 1] == [sum(int(c[0]) for c in columns), sum(int(c[1]) for c in columns)]


def test_a_loopback_relay_that_does_not_reinject_is_a_delivery(tmp_path: Path) -> None:
    """A relay on 127.0.0.1 whose queue ID never comes back into this log is an ordinary delivery."""
    relayed = (
        f"{P}:02 mx postfix/smtp[14]: 3F1A2B3C4D: to=<b@example.net>, relay=127.0.0.1[127.0.0.1]:2525, delay=1.1, "
        "delays=0.1/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 0A1B2C3D4E)"
    )
    values, _ = totals(tmp_path, [*filtered_message("postfix", "localhost[127.0.0.1]")[:5], relayed])
    handed = values["handed on and received again (content filter, next host)"]
    assert (1, 1, 0) == (values["received"], values["delivered"], handed)


def test_forwarded_is_not_delivered(tmp_path: Path) -> None:
    """local's ``forwarded as`` is counted as forwarded (as pflogsumm does), not as delivered."""
    values, _ = totals(tmp_path, [
        f"{P}:01 mx postfix/pickup[20]: 5C6D7E8F9A: uid=0 from=<root>",
        f"{P}:01 mx postfix/qmgr[12]: 5C6D7E8F9A: from=<root@mx.example.org>, size=391, nrcpt=1 (queue active)",
        f"{P}:01 mx postfix/local[21]: 5C6D7E8F9A: to=<root@mx.example.org>, orig_to=<root>, relay=local, delay=0.02, "
        "delays=0.01/0/0/0.01, dsn=2.0.0, status=sent (forwarded as 6D7E8F9A0B)",
        f"{P}:02 mx postfix/smtp[14]: 6D7E8F9A0B: to=<admin@example.net>, relay=mx.example.net[198.51.100.7]:25, "
        "delay=0.5, delays=0/0/0.2/0.3, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1234ABCD)",
    ])  # fmt: skip
    assert (1, 1, 1) == (values["received"], values["delivered"], values["forwarded"])


def test_connections_are_completed_smtpd_sessions_of_every_service(tmp_path: Path) -> None:
    """Connections count completed sessions (disconnect lines), on every smtpd service; the footer says
    where pflogsumm differs."""
    values, text = totals(tmp_path, [
        f"{P}:01 mx postfix/smtpd[10]: connect from a.example.org[192.0.2.10]",
        f"{P}:01 mx postfix/smtpd[10]: disconnect from a.example.org[192.0.2.10] ehlo=1 quit=1 commands=2",
        f"{P}:02 mx postfix/submission/smtpd[11]: connect from b.example.org[192.0.2.11]",
        f"{P}:02 mx postfix/submission/smtpd[11]: disconnect from b.example.org[192.0.2.11] ehlo=1 auth=0/1 quit=1 "
        "commands=2/3",
        f"{P}:03 mx postfix/smtpd[12]: connect from c.example.org[192.0.2.12]",  # still open at the end
    ])  # fmt: skip
    assert 2 == values["smtpd connections (completed sessions)"]
    assert FOOTER in text
    assert "submission" in text.partition("smtpd sessions by service")[2]
