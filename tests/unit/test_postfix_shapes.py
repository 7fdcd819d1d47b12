"""One Postfix line in, one typed event out: every line shape mailpulse recognises.

Lines marked "lab" were written by the project's own lab Postfix (tests/fixtures/lab/postfix.log);
the others are written by hand after Postfix's source and documentation.
"""

from __future__ import annotations

import pytest

from mailpulse.parsers.postfix import PostfixParser
from mailpulse.parsers.postfix import events as ev
from mailpulse.parsers.results import FOREIGN, Unparsed

P = "Nov 24 16:58:17 mail"

CASES: list[tuple[str, object]] = [
    # --- smtpd ------------------------------------------------------------------------------------------
    (f"{P} postfix/submission/smtpd[25880]: connect from localhost[127.0.0.1]",  # lab
     ev.SmtpdConnect("Nov 24 16:58:17", "submission")),
    (f"{P} postfix/smtpd[1]: connect from unknown[2001:db8::1]", ev.SmtpdConnect("Nov 24 16:58:17", "smtpd")),
    (f"{P} postfix/submission/smtpd[25880]: disconnect from localhost[127.0.0.1] ehlo=2 starttls=1 auth=1 mail=1 "
     "rcpt=1 data=1 quit=1 commands=8",  # lab
     ev.SmtpdDisconnect("Nov 24 16:58:17", "submission", ())),
    (f"{P} postfix/smtpd[1]: disconnect from x[1.2.3.4] ehlo=1 auth=0/1 mail=1 rcpt=0/2 quit=1 commands=3/6",
     ev.SmtpdDisconnect("Nov 24 16:58:17", "smtpd", ("auth", "rcpt"))),
    (f"{P} postfix/submission/smtpd[25880]: D570620C5A2: client=localhost[127.0.0.1], sasl_method=PLAIN, "
     "sasl_username=probe@example.test",  # lab
     ev.SmtpdAccepted("Nov 24 16:58:17", "submission", "D570620C5A2", "PLAIN")),
    (f"{P} postfix/smtpd[1]: 3mPVKl0Mhjz7sXv: client=mx.example.net[192.0.2.1]",
     ev.SmtpdAccepted("Nov 24 16:58:17", "smtpd", "3mPVKl0Mhjz7sXv", "")),
    (f"{P} postfix/smtpd[1]: ABC123: client=localhost[127.0.0.1], orig_queue_id=DEF456, orig_client=x[1.2.3.4]",
     ev.SmtpdAccepted("Nov 24 16:58:17", "smtpd", "ABC123", "")),
    (f"{P} postfix/smtps/smtpd[42]: warning: unknown[62.138.2.143]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
     ev.SaslFailure("Nov 24 16:58:17", "smtps", "LOGIN")),
    (f"{P} postfix/submission/smtpd[25880]: warning: localhost[127.0.0.1]: SASL PLAIN authentication failed: "
     "(reason unavailable), sasl_username=probe@example.test",  # lab
     ev.SaslFailure("Nov 24 16:58:17", "submission", "PLAIN")),
    (f"{P} postfix/submission/smtpd[25880]: NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 "
     "<nobody@remote.test>: Recipient address rejected: User unknown in virtual mailbox table; "
     "from=<probe@example.test> to=<nobody@remote.test> proto=ESMTP helo=<probe.example.test>",  # lab
     ev.AccessAction("Nov 24 16:58:17", "submission", "smtpd", "reject", "RCPT", "550", "5.1.1", "unknown_user", "")),
    (f"{P} postfix/smtpd[8738]: NOQUEUE: reject: RCPT from 1-2-3-4.example.com[1.2.3.4]: 554 5.7.1 "
     "<smtp@example.com>: Relay access denied; from=<john@example.com> to=<smtp@example.org> proto=SMTP "
     "helo=<198.51.100.17>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "reject", "RCPT", "554", "5.7.1", "relay_denied", "")),
    (f"{P} postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 Service unavailable; Client host "
     "[1.2.3.4] blocked using zen.spamhaus.org; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "reject", "RCPT", "554", "5.7.1", "rbl", "")),
    (f"{P} postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 450 4.2.0 <c@d>: Recipient address rejected: "
     "Greylisted, see https://postgrey.schweikert.ch/; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "reject", "RCPT", "450", "4.2.0", "greylist", "")),
    (f"{P} postfix/smtpd[1]: NOQUEUE: reject: EHLO from x[1.2.3.4]: 504 5.5.2 <localhost>: Helo command rejected: "
     "need fully-qualified hostname; proto=SMTP helo=<localhost>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "reject", "EHLO", "504", "5.5.2", "helo", "")),
    (f"{P} postfix/smtpd[1]: NOQUEUE: reject: MAIL from x[1.2.3.4]: 553 5.7.1 <a@b>: Sender address rejected: "
     "not owned by user u; from=<a@b> proto=ESMTP helo=<x>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "reject", "MAIL", "553", "5.7.1", "sender", "")),
    (f"{P} postfix/smtpd[1]: NOQUEUE: reject: CONNECT from x[1.2.3.4]: 554 5.7.1 <x[1.2.3.4]>: Client host "
     "rejected: Access denied; proto=SMTP",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "reject", "CONNECT", "554", "5.7.1", "client", "")),
    (f"{P} postfix/smtpd[1]: NOQUEUE: reject_warning: RCPT from x[1.2.3.4]: 450 4.7.1 Client host rejected: cannot "
     "find your hostname, [1.2.3.4]; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "reject_warning", "RCPT", "450", "4.7.1", "client", "")),
    (f"{P} postfix/smtpd[1]: NOQUEUE: milter-reject: DATA from x[1.2.3.4]: 451 4.7.1 Service unavailable - try again "
     "later; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "milter-reject", "DATA", "451", "4.7.1", "milter", "")),
    (f"{P} postfix/smtpd[1]: 4104E3D: hold: RCPT from x[1.2.3.4]: <c@d>: Recipient address triggers HOLD action; "
     "from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "hold", "RCPT", "", "", "", "4104E3D")),
    (f"{P} postfix/smtpd[1]: proxy-reject: END-OF-MESSAGE: 554 5.7.0 Reject, id=31619-02 - spam; from=<> to=<c@d> "
     "proto=SMTP helo=<x>",
     ev.AccessAction("Nov 24 16:58:17", "smtpd", "smtpd", "proxy-reject", "END-OF-MESSAGE", "554", "5.7.0", "content",
                     "")),
    (f"{P} postfix/submission/smtpd[13312]: lost connection after CONNECT from 60.45.239.202.h[202.239.45.60]",
     ev.ConnectionLost("Nov 24 16:58:17", "submission", "lost", "CONNECT")),
    (f"{P} postfix/smtpd[1]: lost connection after DATA (0 bytes) from unknown[1.2.3.4]",
     ev.ConnectionLost("Nov 24 16:58:17", "smtpd", "lost", "DATA")),
    (f"{P} postfix/smtpd[1]: timeout after END-OF-MESSAGE from x[1.2.3.4]",
     ev.ConnectionLost("Nov 24 16:58:17", "smtpd", "timeout", "END-OF-MESSAGE")),
    (f"{P} postfix/smtpd[1]: too many errors after RCPT from x[1.2.3.4]",
     ev.ConnectionLost("Nov 24 16:58:17", "smtpd", "too_many_errors", "RCPT")),
    # pipelining is a protocol note, not an aborted session: smtpd goes on with the session
    (f"{P} postfix/smtpd[1]: improper command pipelining after CONNECT from x[1.2.3.4]: QUIT\\r\\n",
     ev.LogMessage("Nov 24 16:58:17", "smtpd", "smtpd", "info", "pipelining")),
    (f"{P} postfix/smtpd[1]: NOQUEUE: lost connection after CONNECT from unknown[192.0.2.25]",
     ev.ConnectionLost("Nov 24 16:58:17", "smtpd", "lost", "CONNECT")),
    (f"{P} postfix/submission/smtpd[25880]: Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1.3 "
     "with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (prime256v1) "
     "server-digest SHA256",  # lab
     ev.TlsConnection("Nov 24 16:58:17", "submission", "smtpd", "inbound", "anonymous", "TLSv1.3")),
    (f"{P} postfix/smtpd[1]: SSL_accept error from x[1.2.3.4]: lost connection",
     ev.TlsFailure("Nov 24 16:58:17", "smtpd", "smtpd", "inbound")),
    (f"{P} postfix/smtpd[1]: warning: hostname x.example does not resolve to address 1.2.3.4: Name or service not known",
     ev.LogMessage("Nov 24 16:58:17", "smtpd", "smtpd", "warning", "reverse_dns")),
    # --- delivery agents -------------------------------------------------------------------------------
    (f"{P} postfix/smtp[25887]: D570620C5A2: to=<probe@remote.test>, relay=127.0.0.1[127.0.0.1]:20625, delay=0.28, "
     "delays=0.14/0.03/0.03/0.08, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 0F99220C5E2)",  # lab
     ev.Delivery("Nov 24 16:58:17", "smtp", "smtp", "D570620C5A2", "sent", "loopback", 0.28, (0.14, 0.03, 0.03, 0.08),
                 "2.0.0", "", "", "", "0F99220C5E2", provider="internal")),
    (f"{P} postfix/lmtp[25895]: 0F99220C5E2: to=<probe@remote.test>, relay=mail.example.test[/srv/dovecot/run/lmtp], "
     "delay=0.15, delays=0.08/0.03/0.03/0.02, dsn=2.0.0, status=sent (250 2.0.0 <probe@remote.test> p7Tg Saved)",
     ev.Delivery("Nov 24 16:58:17", "lmtp", "lmtp", "0F99220C5E2", "sent", "socket", 0.15, (0.08, 0.03, 0.03, 0.02),
                 "2.0.0", "", "", "", provider="local")),
    (f"{P} postfix/smtp[1]: 01E12901F9D: to=<postfix-users@postfix.org>, relay=list.sys4.de[45.90.5.195]:25, "
     "delay=5.4, delays=0.08/0.01/3.5/1.9, tls=dane, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4cbdb56t4MzPjfw)",
     ev.Delivery("Nov 24 16:58:17", "smtp", "smtp", "01E12901F9D", "sent", "remote", 5.4, (0.08, 0.01, 3.5, 1.9),
                 "2.0.0", "dane", "", "", provider="other")),
    (f"{P} postfix/smtp[1]: 01E12901F9E: to=<a@b>, orig_to=<x@y>, relay=mx.b[192.0.2.7]:25, conn_use=2, delay=1, "
     "delays=0.1/0/0.5/0.4, tls=dane/!requiretls:nocertmatch, dsn=4.7.5, status=deferred (TLS is required, but ...)",
     ev.Delivery("Nov 24 16:58:17", "smtp", "smtp", "01E12901F9E", "deferred", "remote", 1.0, (0.1, 0.0, 0.5, 0.4),
                 "4.7.5", "dane", "tls", "", provider="other")),
    (f"{P} postfix/relay/smtp[1]: ABCDEF: to=<a@b>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred "
     "(connect to mx.b[192.0.2.1]:25: Connection timed out)",
     ev.Delivery("Nov 24 16:58:17", "relay", "smtp", "ABCDEF", "deferred", "none", 30.0, (0.0, 0.0, 30.0, 0.0), "4.4.1",
                 "", "connection_timeout", "", provider="other")),
    (f"{P} postfix/smtp[1]: 776E41855DB2: to=<a@hotmail.com>, relay=mx.outlook.com[11.22.33.44]:25, delay=1.9, "
     "delays=0/0/1.5/0.37, dsn=5.7.1, status=bounced (host mx.outlook.com[11.22.33.44] said: 550 5.7.1 Service "
     "unavailable, Client host [1.2.3.4] blocked using Spamhaus. (S3140) (in reply to RCPT TO command))",
     ev.Delivery("Nov 24 16:58:17", "smtp", "smtp", "776E41855DB2", "bounced", "remote", 1.9, (0.0, 0.0, 1.5, 0.37),
                 "5.7.1", "", "blocklisted", "microsoft", provider="microsoft")),
    (f"{P} postfix/local[1]: ABC123: to=<root@mail.example>, orig_to=<root>, relay=local, delay=0.01, "
     "delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)",
     ev.Delivery("Nov 24 16:58:17", "local", "local", "ABC123", "sent", "local", 0.01, (0.0, 0.0, 0.0, 0.0), "2.0.0",
                 "", "", "", provider="local")),
    (f"{P} postfix/virtual[1]: ABC124: to=<u@v.example>, relay=virtual, delay=0.1, delays=0.1/0/0/0, dsn=2.0.0, "
     "status=sent (delivered to maildir)",
     ev.Delivery("Nov 24 16:58:17", "virtual", "virtual", "ABC124", "sent", "local", 0.1, (0.1, 0.0, 0.0, 0.0), "2.0.0",
                 "", "", "", provider="local")),
    (f"{P} postfix/pipe[1]: ABC125: to=<u@v.example>, relay=dovecot, delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, "
     "status=sent (delivered via dovecot service)",
     ev.Delivery("Nov 24 16:58:17", "pipe", "pipe", "ABC125", "sent", "local", 0.2, (0.1, 0.0, 0.0, 0.1), "2.0.0",
                 "", "", "", provider="local")),
    (f"{P} postfix/error[1]: ABC126: to=<u@deferred.test>, relay=none, delay=100, delays=99/1/0/0, dsn=4.4.1, "
     "status=deferred (delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:1: Connection refused)",
     ev.Delivery("Nov 24 16:58:17", "error", "error", "ABC126", "deferred", "none", 100.0, (99.0, 1.0, 0.0, 0.0),
                 "4.4.1", "", "connection_refused", "", provider="internal")),
    (f"{P} postfix/retry[1]: ABC127: to=<u@x.test>, relay=none, delay=5, delays=5/0/0/0, dsn=4.3.0, status=deferred "
     "(mail transport unavailable)",
     ev.Delivery("Nov 24 16:58:17", "retry", "retry", "ABC127", "deferred", "none", 5.0, (5.0, 0.0, 0.0, 0.0), "4.3.0",
                 "", "transport_unavailable", "", provider="none")),
    (f"{P} postfix/smtp[1]: ABC128: to=<a@null.example>, relay=none, delay=0.1, delays=0.1/0/0/0, dsn=5.1.0, "
     "status=bounced (Domain null.example does not accept mail (nullMX))",
     ev.Delivery("Nov 24 16:58:17", "smtp", "smtp", "ABC128", "bounced", "none", 0.1, (0.1, 0.0, 0.0, 0.0), "5.1.0", "",
                 "dns", "", provider="none")),
    (f"{P} postfix/smtp[1]: connect to some.host.com[111.111.73.15]:25: Connection timed out",
     ev.ConnectFailure("Nov 24 16:58:17", "smtp", "smtp", "timeout")),
    (f"{P} postfix/smtp[25922]: connect to 127.0.0.1[127.0.0.1]:1: Connection refused",  # lab
     ev.ConnectFailure("Nov 24 16:58:17", "smtp", "smtp", "refused")),
    (f"{P} postfix/smtp[1]: connect to mx.example.net[2001:db8::1]:25: Network is unreachable",
     ev.ConnectFailure("Nov 24 16:58:17", "smtp", "smtp", "unreachable")),
    (f"{P} postfix/smtp[1]: ABC129: host mx.example.net[192.0.2.1] said: 451-4.7.1 Greylisted, please try again in "
     "180 seconds (in reply to RCPT TO command)",
     ev.RemoteReply("Nov 24 16:58:17", "smtp", "smtp", "ABC129", "451", "greylisted", "", provider="other")),
    (f"{P} postfix/smtp[1]: ABC130: host mta7.am0.yahoodns.net[67.195.204.72] refused to talk to me: 421 4.7.0 [TSS04] "
     "Messages from 1.2.3.4 temporarily deferred due to unexpected volume",  # a refused greeting: rate, not a list
     ev.RemoteReply("Nov 24 16:58:17", "smtp", "smtp", "ABC130", "421", "rate_limited", "", provider="yahoo")),
    (f"{P} postfix/smtp[1]: ABC131: lost connection with mx.b[192.0.2.1] while receiving the initial server greeting",
     ev.ConnectFailure("Nov 24 16:58:17", "smtp", "smtp", "lost_connection")),
    (f"{P} postfix/smtp[1]: ABC132: conversation with mx.b[192.0.2.1] timed out while sending message body",
     ev.ConnectFailure("Nov 24 16:58:17", "smtp", "smtp", "timeout")),
    (f"{P} postfix/smtp[25887]: Trusted TLS connection established to 127.0.0.1[127.0.0.1]:20625: TLSv1.3 with cipher "
     "TLS_AES_256_GCM_SHA384 (256/256 bits)",  # lab
     ev.TlsConnection("Nov 24 16:58:17", "smtp", "smtp", "outbound", "trusted", "TLSv1.3")),
    (f"{P} postfix/smtp[1]: Verified TLS connection established to mx.b[192.0.2.1]:25: TLSv1.2 with cipher X (256/256 "
     "bits)",
     ev.TlsConnection("Nov 24 16:58:17", "smtp", "smtp", "outbound", "verified", "TLSv1.2")),
    (f"{P} postfix/smtp[1]: Untrusted TLS connection established to mx.b[192.0.2.1]:25: TLSv1.2 with cipher X",
     ev.TlsConnection("Nov 24 16:58:17", "smtp", "smtp", "outbound", "untrusted", "TLSv1.2")),
    (f"{P} postfix/smtp[25892]: 5CDC320C637: replace: body signed text, LAB-TAMPER-ME on the way: signed text, "
     "LAB-TAMPERED-IN-TRANSIT on the way",  # lab
     ev.AccessAction("Nov 24 16:58:17", "smtp", "smtp", "replace", "body", "", "", "", "5CDC320C637")),
    # --- queue lifecycle -------------------------------------------------------------------------------
    (f"{P} postfix/cleanup[25886]: D570620C5A2: message-id=<lab-1658@example.test>",  # lab
     ev.CleanupMessage("Nov 24 16:58:17", "cleanup", "D570620C5A2", "lab-1658@example.test")),
    (f"{P} postfix/sender-cleanup/cleanup[1]: 2AA0F3004142: message-id=<x@y>",
     ev.CleanupMessage("Nov 24 16:58:17", "sender-cleanup", "2AA0F3004142", "x@y")),
    (f"{P} postfix/cleanup[25891]: B11E020C636: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 5.7.1 Gtube "
     "pattern; from=<probe@example.test> to=<probe@remote.test> proto=ESMTP helo=<probe.example.test>",  # lab
     ev.AccessAction("Nov 24 16:58:17", "cleanup", "cleanup", "milter-reject", "END-OF-MESSAGE", "5xx", "5.7.1",
                     "milter", "B11E020C636")),
    (f"{P} postfix/cleanup[1]: ABC133: reject: header Subject: cheap pills from x[1.2.3.4]; from=<a@b> to=<c@d> "
     "proto=ESMTP helo=<x>: 5.7.1 message content rejected",
     ev.AccessAction("Nov 24 16:58:17", "cleanup", "cleanup", "reject", "header", "5xx", "5.7.1", "content", "ABC133")),
    (f"{P} postfix/cleanup[1]: ABC134: warning: header Subject: hi from x[1.2.3.4]; from=<a@b> to=<c@d> proto=ESMTP "
     "helo=<x>: watch this",
     ev.AccessAction("Nov 24 16:58:17", "cleanup", "cleanup", "warning", "header", "", "", "other", "ABC134")),
    (f"{P} postfix/qmgr[25869]: D570620C5A2: from=<probe@example.test>, size=886, nrcpt=1 (queue active)",  # lab
     ev.QueueActive("Nov 24 16:58:17", "qmgr", "D570620C5A2", 886, 1)),
    (f"{P} postfix/qmgr[1]: D570620C5A3: from=<>, size=2300, nrcpt=3 (queue active)",
     ev.QueueActive("Nov 24 16:58:17", "qmgr", "D570620C5A3", 2300, 3)),
    (f"{P} postfix/qmgr[25869]: D570620C5A2: removed", ev.QueueRemoved("Nov 24 16:58:17", "qmgr", "D570620C5A2")),
    (f"{P} postfix/qmgr[1]: 23EBE3D5C0: from=<a@b>, status=expired, returned to sender",
     ev.QueueExpired("Nov 24 16:58:17", "qmgr", "23EBE3D5C0", False)),
    (f"{P} postfix/qmgr[25869]: B08F120CA12: from=<probe@example.test>, status=force-expired, returned to sender",
     ev.QueueExpired("Nov 24 16:58:17", "qmgr", "B08F120CA12", True)),  # lab
    (f"{P} postfix/qmgr[1]: ABC135: to=<a@b>, relay=none, delay=0.5, delays=0.5/0/0/0, dsn=4.3.0, status=deferred "
     "(mail transport unavailable)",
     ev.Delivery("Nov 24 16:58:17", "qmgr", "qmgr", "ABC135", "deferred", "none", 0.5, (0.5, 0.0, 0.0, 0.0), "4.3.0", "",
                 "transport_unavailable", "", provider="none")),
    (f"{P} postfix/pickup[28541]: 08ACF1541B01: uid=0 from=<root>",
     ev.Pickup("Nov 24 16:58:17", "pickup", "08ACF1541B01")),
    (f"{P} postfix/bounce[25925]: DA17E20CA73: sender non-delivery notification: EDD4820CAA3",  # lab
     ev.BounceNotice("Nov 24 16:58:17", "bounce", "non_delivery", "DA17E20CA73", notice_id="EDD4820CAA3")),
    (f"{P} postfix/bounce[1]: DA17E20CA74: sender delay notification: EDD4820CAA4",
     ev.BounceNotice("Nov 24 16:58:17", "bounce", "delay", "DA17E20CA74", notice_id="EDD4820CAA4")),
    (f"{P} postfix/postsuper[25927]: Force-expired: 1 message",  # lab
     ev.QueueAdmin("Nov 24 16:58:17", "postsuper", "expired", 1)),
    (f"{P} postfix/postsuper[1]: Deleted: 12 messages", ev.QueueAdmin("Nov 24 16:58:17", "postsuper", "deleted", 12)),
    # --- postscreen, dnsblog, anvil --------------------------------------------------------------------
    (f"{P} postfix/postscreen[1]: CONNECT from [155.63.95.6]:63966 to [10.0.0.1]:25",
     ev.PostscreenEvent("Nov 24 16:58:17", "postscreen", "connect", 0)),
    (f"{P} postfix/postscreen[1]: PASS NEW [155.63.95.6]:63966", ev.PostscreenEvent("Nov 24 16:58:17", "postscreen",
                                                                                    "pass_new", 0)),
    (f"{P} postfix/postscreen[1]: PASS OLD [155.63.95.6]:63966", ev.PostscreenEvent("Nov 24 16:58:17", "postscreen",
                                                                                    "pass_old", 0)),
    (f"{P} postfix/postscreen[1]: DNSBL rank 3 for [112.90.37.251]:20438",
     ev.PostscreenEvent("Nov 24 16:58:17", "postscreen", "dnsbl", 3)),
    (f"{P} postfix/postscreen[1]: PREGREET 11 after 0.07 from [1.2.3.4]:5678: EHLO x\\r\\n",
     ev.PostscreenEvent("Nov 24 16:58:17", "postscreen", "pregreet", 0)),
    (f"{P} postfix/postscreen[1]: HANGUP after 0.5 from [1.2.3.4]:5678 in tests after SMTP handshake",
     ev.PostscreenEvent("Nov 24 16:58:17", "postscreen", "hangup", 0)),
    (f"{P} postfix/postscreen[1]: COMMAND PIPELINING from [1.2.3.4]:5678 after EHLO: MAIL FROM:<a@b>",
     ev.PostscreenEvent("Nov 24 16:58:17", "postscreen", "pipelining", 0)),
    (f"{P} postfix/postscreen[8291]: NOQUEUE: reject: RCPT from [155.63.95.6]:63966: 550 5.7.1 Service unavailable; "
     "client [155.63.95.6] blocked using zen.spamhaus.org; from=<a@b>, to=<c@d>, proto=ESMTP, helo=<WIN-QG>",
     ev.AccessAction("Nov 24 16:58:17", "postscreen", "postscreen", "reject", "RCPT", "550", "5.7.1", "rbl", "")),
    (f"{P} postfix/dnsblog[1]: addr 1.2.3.4 listed by domain Zen.Spamhaus.org as 127.0.0.4",
     ev.DnsblHit("Nov 24 16:58:17", "dnsblog", "zen.spamhaus.org")),
    (f"{P} postfix/anvil[1]: statistics: max connection rate 1/60s for (smtp:1.2.3.4) at Jan 27 06:50:01",
     ev.AnvilStatistic("Nov 24 16:58:17", "anvil", "connection_rate", 1)),
    (f"{P} postfix/anvil[1]: statistics: max cache size 7 at Jan 27 06:50:01",
     ev.AnvilStatistic("Nov 24 16:58:17", "anvil", "cache_size", 7)),
    # --- lifecycle and levels --------------------------------------------------------------------------
    (f"{P} postfix/master[25867]: daemon started -- version 3.7.11, configuration /srv/mail-lab/postfix/etc",  # lab
     ev.Lifecycle("Nov 24 16:58:17", "master", "master", "started")),
    (f"{P} postfix/master[1]: reload -- version 3.7.11, configuration /etc/postfix",
     ev.Lifecycle("Nov 24 16:58:17", "master", "master", "reload")),
    (f"{P} postfix/master[1]: terminating on signal 15", ev.Lifecycle("Nov 24 16:58:17", "master", "master",
                                                                       "terminated")),
    (f"{P} postfix/postfix-script[25865]: starting the Postfix mail system",  # lab
     ev.Lifecycle("Nov 24 16:58:17", "postfix-script", "postfix-script", "starting")),
    (f"{P} postfix/postfix-script[1]: stopping the Postfix mail system",
     ev.Lifecycle("Nov 24 16:58:17", "postfix-script", "postfix-script", "stopping")),
    (f"{P} postfix/master[1]: warning: process /usr/lib/postfix/sbin/smtpd pid 123 exit status 1",
     ev.LogMessage("Nov 24 16:58:17", "master", "master", "warning", "process")),
    (f"{P} postfix/smtpd[1]: fatal: open /etc/postfix/main.cf: No such file or directory",
     ev.LogMessage("Nov 24 16:58:17", "smtpd", "smtpd", "fatal", "config")),
    (f"{P} postfix/cleanup[1]: warning: connect to Milter service inet:127.0.0.1:10891: Connection refused",
     ev.LogMessage("Nov 24 16:58:17", "cleanup", "cleanup", "warning", "milter")),
    (f"{P} postfix/trivial-rewrite[1]: error: unsupported dictionary type: foo",
     ev.LogMessage("Nov 24 16:58:17", "trivial-rewrite", "trivial-rewrite", "error", "other")),
    (f"{P} postfix/qmgr[1]: panic: myfree: corrupt or unallocated memory block",
     ev.LogMessage("Nov 24 16:58:17", "qmgr", "qmgr", "panic", "other")),
    # --- prefixes and program names --------------------------------------------------------------------
    ("2022-01-08T19:42:13.600000+00:00 mail postfix/qmgr[1]: 1F5A2194AA9: removed",
     ev.QueueRemoved("2022-01-08T19:42:13.600000+00:00", "qmgr", "1F5A2194AA9")),
    ("2022-01-08T09:42:13.600000+0000 mail postfix/qmgr[1]: 1F5A2194AB0: removed",
     ev.QueueRemoved("2022-01-08T09:42:13.600000+0000", "qmgr", "1F5A2194AB0")),
    ("2022-01-08T09:42:13Z mail postfix/qmgr[1]: 1F5A2194AB1: removed",
     ev.QueueRemoved("2022-01-08T09:42:13Z", "qmgr", "1F5A2194AB1")),
    ("Jan  8 19:42:13 mail postfix/qmgr[1]: 1F5A2194AA9: removed", ev.QueueRemoved("Jan  8 19:42:13", "qmgr",
                                                                                    "1F5A2194AA9")),
    ("Jan 8 19:42:13 mail postfix/qmgr[1]: 1F5A2194AA9: removed", ev.QueueRemoved("Jan 8 19:42:13", "qmgr",
                                                                                   "1F5A2194AA9")),
    (f"{P} postfix-out/smtp[1]: connect to mx[192.0.2.1]:25: Connection refused",
     ev.ConnectFailure("Nov 24 16:58:17", "postfix-out", "smtp", "refused")),
    (f"{P} postfix-239.58.50.50/qmgr[31214]: 23EBE3D5C0: removed",
     ev.QueueRemoved("Nov 24 16:58:17", "postfix-239.58.50.50", "23EBE3D5C0")),
    (f"{P} postfix-out/relay/smtp[1]: connect to mx[192.0.2.1]:25: Connection refused",
     ev.ConnectFailure("Nov 24 16:58:17", "postfix-out/relay", "smtp", "refused")),
    (f"{P} /postfix-script[1]: starting the Postfix mail system",
     ev.Lifecycle("Nov 24 16:58:17", "postfix-script", "postfix-script", "starting")),
]  # fmt: skip


@pytest.fixture(scope="module")
def parse() -> PostfixParser:
    return PostfixParser()


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_line_shape(parse: PostfixParser, line: str, expected: object) -> None:
    """Each known shape becomes exactly the expected event, with bounded label fields."""
    assert expected == parse(line)


FOREIGN_LINES = [
    f"{P} dovecot: imap-login: Login: user=<a@b>, method=PLAIN, rip=1.2.3.4, lip=5.6.7.8, TLS",
    f"{P} opendkim[123]: 4A2: DKIM-Signature field added (s=mail, d=example.com)",
    f"{P} postfix1[12345]: foo",
    f"{P} amavis[1202]: (01202-01) Passed CLEAN",
    f"{P} kernel: [ 1.234] eth0: link up",
]


@pytest.mark.parametrize("line", FOREIGN_LINES)
def test_other_programs_are_foreign(parse: PostfixParser, line: str) -> None:
    """Lines of other programs in the same file are foreign, not unparsed."""
    assert parse(line) is FOREIGN


UNPARSED_LINES = [
    "",
    "Jan",
    "garbage \x00\x01\x02 binary",
    "Jan 1 00:00:00 hostname postfix/postscreen[abcde]: foo",
    "Jan  1 00:00:00 hostname postfix/postscreen[12345: foo",
    "Jan 27 06:36:56 mail postfix/smtp[22030]: 3mPVKl0Mhjz7sXv: to=<56597@con",
    f"{P} postfix/smtpd[1]: something new in Postfix 4.0",
    f"{P} postfix/qmgr[1]: Unsupported",
    "\ufffd\ufffd invalid utf-8 replaced",
]


@pytest.mark.parametrize("line", UNPARSED_LINES)
def test_damaged_or_unknown_lines_are_unparsed(parse: PostfixParser, line: str) -> None:
    """Truncated, binary, malformed and unknown Postfix lines are Unparsed, never an exception."""
    assert isinstance(parse(line), Unparsed)


def test_unparsed_keeps_a_bounded_daemon(parse: PostfixParser) -> None:
    """An unknown daemon name is reported as 'other', so the unparsed counter stays bounded."""
    result = parse(f"{P} postfix/some-new-daemon[1]: hello")
    assert isinstance(result, Unparsed)
    assert result.daemon == "other"


def test_long_line_is_handled(parse: PostfixParser) -> None:
    """A 64 KB line is parsed in bounded time and yields an event or Unparsed, not an error."""
    line = f"{P} postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 550 5.7.1 " + "x" * 65536
    result = parse(line)
    assert isinstance(result, ev.AccessAction)
    assert result.reason == "policy"  # X.7.1 and no text to say more


def test_parse_fields_is_the_journald_entry_point(parse: PostfixParser) -> None:
    """journald hands over identifier and message without a syslog prefix."""
    event = parse.parse_fields("2026-11-24T16:58:17+00:00", "postfix/submission/smtpd", "connect from x[1.2.3.4]")
    assert ev.SmtpdConnect("2026-11-24T16:58:17+00:00", "submission") == event
    assert parse.parse_fields("", "dovecot", "imap-login: x") is FOREIGN
