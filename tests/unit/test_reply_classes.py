"""Reply classification (issue 9, section B): the strongest evidence first.

Enhanced status codes (RFC 3463, RFC 7372) that name one cause decide first, then reply text that names a
cause, then the object Postfix rejected (Client host, Helo command, Sender address, Recipient address),
then the codes that only say "mailbox" or "policy". Each case is a class of lines, with a line written by
hand after Postfix's source (smtpd_check.c, tls_misc.c, tlsproxy.c, postfix-script) and the replies of
real servers; tests/unit/test_realworld_corpus.py checks the same classes on lines found in public logs.
"""

from __future__ import annotations

import pytest

from mailpulse.exporter.metrics.postfix import SMTPD_TLS, TLS_CONNECTIONS, TLS_FAILURES, PostfixAggregator
from mailpulse.parsers.postfix import PostfixParser
from mailpulse.parsers.postfix import events as ev
from mailpulse.parsers.postfix.vocab import DELIVERY_REASONS, REJECT_REASONS
from mailpulse.parsers.rspamd import RspamdParser
from mailpulse.parsers.rspamd.events import RspamdScan
from mailpulse.parsers.rspamd.symbols import parse_symbols, with_scores

P = "Nov 24 16:58:17 mail"
ENVELOPE = "from=<a@example.org> to=<b@example.net> proto=ESMTP helo=<client.example.org>"


def reject(reply: str, stage: str = "RCPT", program: str = "postfix/smtpd[1]") -> str:
    return f"{P} {program}: NOQUEUE: reject: {stage} from client.example.org[192.0.2.10]: {reply}; {ENVELOPE}"


def deferred(reply: str, dsn: str, status: str = "deferred") -> str:
    return (
        f"{P} postfix/smtp[1]: 1A2B3C4D5E: to=<b@example.net>, relay=mx.example.net[198.51.100.7]:25, delay=1.2, "
        f"delays=0.1/0/0.6/0.5, dsn={dsn}, status={status} (host mx.example.net[198.51.100.7] said: {reply} "
        "(in reply to RCPT TO command))"
    )


@pytest.fixture(scope="module")
def parse() -> PostfixParser:
    return PostfixParser()


REJECTS = [
    # check_recipient_access ... REJECT: the object is the recipient, whatever "Access denied" suggests
    ("554 5.7.1 <b@example.net>: Recipient address rejected: Access denied", "recipient"),
    ("554 5.7.1 <client.example.org[192.0.2.10]>: Client host rejected: Access denied", "client"),
    ("554 5.7.1 <a@example.org>: Sender address rejected: Access denied", "sender"),
    ("554 5.7.1 <client.example.org>: Helo command rejected: Access denied", "helo"),
    # the enhanced code names the cause before the object does
    ("550 5.1.1 <b@example.net>: Recipient address rejected: Mailbox unavailable", "unknown_user"),
    ("550 5.7.23 <b@example.net>: Recipient address rejected: Message rejected due to: SPF fail - not authorized",
     "policy"),
    ("550 5.7.26 <b@example.net>: Recipient address rejected: multiple authentication checks failed", "policy"),
    # a cause named in the text beats the object
    ("450 4.2.0 <b@example.net>: Recipient address rejected: Greylisted, see https://postgrey.example/", "greylist"),
    ("450 4.7.1 <b@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
     "unknown_user"),
    # a 5xx is never temporary: a bare "Service unavailable" with X.7.1 is a policy refusal
    ("554 5.7.1 Service unavailable", "policy"),
    ("454 4.7.1 Service unavailable", "tempfail"),
    ("451 4.3.5 Server configuration error", "tempfail"),
    ("554 5.3.0 Server configuration error", "other"),
    # reject_unknown_client_hostname: RFC 7372's X.7.25 is about the client's reverse DNS
    ("450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.10]", "client"),
    # a class digit other than 2, 4, 5 is no enhanced status code
    ("123 1.2.3 Reasons", "other"),
]  # fmt: skip


def test_the_envelope_is_not_part_of_the_reply(parse: PostfixParser) -> None:
    """``from=<spam...>`` in the envelope after the reply does not make a HELO reject a content one."""
    line = (f"{P} postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.10]: 504 5.5.2 <WIN-X>: Helo "
            "command rejected: need fully-qualified hostname; from=<spameri@example.com> to=<spameri@example.com> "
            "proto=ESMTP helo=<WIN-X>")  # fmt: skip
    event = parse(line)
    assert isinstance(event, ev.AccessAction)
    assert "helo" == event.reason


@pytest.mark.parametrize(("reply", "reason"), REJECTS, ids=[r for r, _ in REJECTS])
def test_reject_reason(parse: PostfixParser, reply: str, reason: str) -> None:
    """smtpd rejects are classified by code, then cause, then the rejected object, then generic codes."""
    event = parse(reject(reply))
    assert isinstance(event, ev.AccessAction)
    assert reason == event.reason
    assert event.reason in REJECT_REASONS


def test_rspamd_greylisting_through_the_milter_is_greylist(parse: PostfixParser) -> None:
    """rspamd greylists through the milter with "4.7.1 Try again later": reason greylist, not milter."""
    line = (f"{P} postfix/cleanup[1]: 2B3C4D5E6F: milter-reject: END-OF-MESSAGE from client.example.org"
            f"[192.0.2.10]: 4.7.1 Try again later; {ENVELOPE}")  # fmt: skip
    event = parse(line)
    assert isinstance(event, ev.AccessAction)
    assert ("milter-reject", "4xx", "greylist") == (event.action, event.code, event.reason)
    # other milter verdicts stay "milter", whatever their text
    spam = parse(line.replace("4.7.1 Try again later", "5.7.1 Spam message rejected"))
    assert isinstance(spam, ev.AccessAction)
    assert "milter" == spam.reason


DELIVERIES = [
    # a remote SPF failure is an authentication failure, not an unknown user ("Recipient address rejected")
    ("550 5.7.23 <b@example.net>: Recipient address rejected: Message rejected due to: SPF fail - not authorized",
     "5.7.23", "bounced", "authentication"),
    ("550-5.7.26 This mail has been blocked because the sender is unauthenticated.", "5.7.26", "bounced",
     "authentication"),
    # a busy or disabled mailbox is neither an unknown user nor a full one
    ("450 4.2.0 <b@example.net>: Recipient address rejected: Mailbox busy, try again later", "4.2.0", "deferred",
     "mailbox_unavailable"),
    ("550 5.2.1 <b@example.net>: Recipient address rejected: mailbox disabled", "5.2.1", "bounced",
     "mailbox_unavailable"),
    ("452 4.2.2 The email account that you tried to reach is over quota.", "4.2.2", "deferred", "mailbox_full"),
    ("452 4.1.1 <someone@example.net>... user is over quota", "4.1.1", "deferred", "mailbox_full"),
    ("550 5.1.1 <b@example.net>: Recipient address rejected: User unknown in virtual mailbox table", "5.1.1",
     "bounced", "unknown_user"),
    # rspamd's greylisting reply from a remote rspamd
    ("451 4.7.1 Try again later", "4.7.1", "deferred", "greylisted"),
    ("550 5.7.1 Message rejected as spam by Content Filtering.", "5.7.1", "bounced", "spam"),
    ("554 5.7.1 Delivery not authorized", "5.7.1", "bounced", "policy"),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "dsn", "status", "reason"), DELIVERIES, ids=[d[0] for d in DELIVERIES])
def test_delivery_reason(parse: PostfixParser, reply: str, dsn: str, status: str, reason: str) -> None:
    """Deferred and bounced deliveries are classified by dsn= first, then by the reply text."""
    event = parse(deferred(reply, dsn, status))
    assert isinstance(event, ev.Delivery)
    assert reason == event.reason
    assert event.reason in DELIVERY_REASONS


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        # a refused greeting says nothing about lists here: we sent too many bad recipients
        ("550 Too many invalid recipients", "rate_limited"),
        ("554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org", "blocklisted"),
        ("421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume", "rate_limited"),
        (
            "554 Your access to this mail system has been rejected due to the sending MTA's poor reputation.",
            "blocklisted",
        ),
    ],
)
def test_refused_greeting_is_a_blocklisting_only_when_it_says_so(parse: PostfixParser, reply: str, reason: str) -> None:
    """``host X refused to talk to me: ...`` is classified like any reply, not blocklisted by default."""
    line = f"{P} postfix/smtp[1]: 1A2B3C4D5E: host mx.example.net[198.51.100.7] refused to talk to me: {reply}"
    event = parse(line)
    assert isinstance(event, ev.RemoteReply)
    assert reason == event.reason
    assert (event.blocklist != "") == (reason == "blocklisted")
    final = parse(
        f"{P} postfix/smtp[1]: 1A2B3C4D5E: to=<b@example.net>, relay=mx.example.net[198.51.100.7]:25, delay=1, "
        f"delays=0/0/1/0, dsn=4.0.0, status=deferred (host mx.example.net[198.51.100.7] refused to talk to me: {reply})"
    )
    assert isinstance(final, ev.Delivery)
    assert reason == final.reason


def test_improper_pipelining_is_not_an_aborted_session(parse: PostfixParser) -> None:
    """The session goes on after an improper pipelining note: no aborted-session count."""
    agg = PostfixAggregator()
    agg.handle(parse(f"{P} postfix/smtpd[1]: improper command pipelining after EHLO from x.example[192.0.2.10]: "
                     "MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.net>\\r\\n"))  # fmt: skip
    agg.handle(parse(f"{P} postfix/smtpd[1]: lost connection after DATA from x.example[192.0.2.10]"))
    aborts = agg.values["mailpulse_postfix_smtpd_aborted_sessions_total"]
    assert {("smtpd", "lost", "DATA"): 1} == aborts
    assert 1 == agg.values["mailpulse_postfix_log_messages_total"][("smtpd", "info", "pipelining")]


def test_tlsproxy_is_not_counted_as_smtpd_tls(parse: PostfixParser) -> None:
    """postscreen's tlsproxy sessions count in mailpulse's TLS family, not in kumina's smtpd one; its
    handshake failures are parsed."""
    agg = PostfixAggregator()
    for line in (
        f"{P} postfix/tlsproxy[7]: CONNECT from [192.0.2.10]:52644",
        f"{P} postfix/tlsproxy[7]: Anonymous TLS connection established from [192.0.2.10]:52644: TLSv1.3 with "
        "cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits)",
        f"{P} postfix/tlsproxy[7]: TLS handshake failed for service=smtp peer=[192.0.2.11]:63991",
        f"{P} postfix/smtpd[8]: Anonymous TLS connection established from x.example[192.0.2.12]: TLSv1.2 with "
        "cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
    ):
        agg.handle(parse(line))
    assert {("anonymous", "TLSv1.2"): 1} == agg.values[SMTPD_TLS.name]
    assert 1 == agg.values[TLS_CONNECTIONS.name][("inbound", "tlsproxy", "TLSv1.3", "anonymous")]
    assert {("inbound", "tlsproxy"): 1} == agg.values[TLS_FAILURES.name]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # tls_misc.c logs these with msg_info, no "warning:": the daemon runs on without TLS
        (f"{P} postfix/smtpd[3121]: cannot load Certificate Authority data: disabling TLS support",
         ev.LogMessage("Nov 24 16:58:17", "smtpd", "smtpd", "warning", "tls")),
        (f"{P} postfix/smtp[3121]: cannot set certificate verification paths: disabling TLS support",
         ev.LogMessage("Nov 24 16:58:17", "smtp", "smtp", "warning", "tls")),
        # Postfix 2.x: no trust word before "TLS connection established"
        (f"{P} postfix/smtpd[1]: TLS connection established from x.example[192.0.2.10]: TLSv1 with cipher "
         "DHE-RSA-AES256-SHA (256/256 bits)",
         ev.TlsConnection("Nov 24 16:58:17", "smtpd", "smtpd", "inbound", "other", "TLSv1")),
        (f"{P} postfix/smtp[1]: TLS connection established to mx.example.net[198.51.100.7]:25: TLSv1 with cipher "
         "AES256-SHA (256/256 bits)",
         ev.TlsConnection("Nov 24 16:58:17", "smtp", "smtp", "outbound", "other", "TLSv1")),
        (f"{P} postfix/tlsproxy[7]: TLS handshake failed for service=smtp peer=[192.0.2.11]:63991",
         ev.TlsFailure("Nov 24 16:58:17", "tlsproxy", "tlsproxy", "inbound")),
    ],
)  # fmt: skip
def test_tls_shapes(parse: PostfixParser, line: str, expected: object) -> None:
    """TLS lines without a level, of Postfix 2.x and of tlsproxy are parsed."""
    assert expected == parse(line)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        # postfix-script's chroot check: the file names are no evidence of DNS or TLS trouble
        ("/var/spool/postfix/lib/x86_64-linux-gnu/libnss_dns.so.2 and /lib/x86_64-linux-gnu/libnss_dns.so.2 differ",
         "config"),
        ("/var/spool/postfix/etc/ssl/certs/ca-certificates.crt and /etc/ssl/certs/ca-certificates.crt differ", "config"),
        ("/var/spool/postfix/etc/resolv.conf and /etc/resolv.conf differ", "config"),
        ("not owned by root: /var/spool/postfix/.", "config"),
        # what a file is still counts where it is the point: lookup tables, main.cf
        ("database /etc/postfix/virtual.db is older than source file /etc/postfix/virtual", "lookup_table"),
        ("/etc/postfix/main.cf, line 12: overriding earlier entry: relayhost=", "config"),
        ("cannot get RSA private key from file /etc/ssl/private/mail.key: disabling TLS support", "tls"),
    ],
)  # fmt: skip
def test_warnings_are_not_classified_by_file_names(parse: PostfixParser, message: str, kind: str) -> None:
    """Warning kinds come from the words of the warning, with file and directory names blanked."""
    event = parse(f"{P} postfix/postfix-script[1]: warning: {message}")
    assert ev.LogMessage("Nov 24 16:58:17", "postfix-script", "postfix-script", "warning", kind) == event


def test_rspamd_verdict_without_scores_keeps_auth_results() -> None:
    """Older rspamd (and the $symbols variable) logs names without scores; auth results are still read."""
    line = ("2016-03-18 15:15:01 #29588(normal) <b120f6>; task; rspamd_task_write_log: id: <m@example.org>, "
            "qid: <D4CFE300135>, ip: 192.0.2.10, from: <a@example.org>, (default: F (no action): [-2.11/15.00] "
            "[MIME_GOOD,R_SPF_FAIL,R_DKIM_ALLOW,DMARC_POLICY_ALLOW,ARC_NA]), len: 6849, time: 538.803ms real, "
            "26.851ms virtual, dns req: 22")  # fmt: skip
    scan = RspamdParser().parse_line(line)
    assert isinstance(scan, RspamdScan)
    assert ("allow", "fail", "allow", "na") == scan.auth
    assert ["MIME_GOOD", "R_SPF_FAIL", "R_DKIM_ALLOW", "DMARC_POLICY_ALLOW", "ARC_NA"] == [
        s.name for s in parse_symbols(scan.symbols)
    ]


def test_with_scores_keeps_option_blocks() -> None:
    """Names followed by options get a nan score; commas inside options are left alone."""
    text = "R_DKIM_ALLOW{example.org:s=sel;},ASN{asn:64496, ipnet:192.0.2.0/24, country:ZZ;},ARC_NA"
    assert "R_DKIM_ALLOW(nan){example.org:s=sel;},ASN(nan){asn:64496, ipnet:192.0.2.0/24, country:ZZ;},ARC_NA(nan)" == (
        with_scores(text)
    )
    assert "" == with_scores("")
