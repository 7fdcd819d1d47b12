"""The receiver's verdict from real received headers: split Authentication-Results merged, the sender's own
spam headers ignored, RFC 2047 values decoded, Microsoft's junk signals read.

Headers under tests/fixtures/realworld/receivers/ are real (see SOURCES.md there: Delta Chat's DKIM check
corpus, MPL-2.0); the full messages below, with Received lines, are written for these tests in the
layouts those providers use (iCloud's Authentication-Results below its own Received line, rspamd's
headers appended at the bottom, Microsoft's X-Forefront-Antispam-Report).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mailpulse.probes.hops import header_text, layout, registrable
from mailpulse.probes.verdicts import judge, parse_headers, receiver_domains, spam_verdict

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "realworld" / "receivers"
PASS3 = {"dkim": "pass", "spf": "pass", "dmarc": "pass"}


def load(name: str) -> bytes:
    return (REAL / name).read_bytes().replace(b"\n", b"\r\n")


@pytest.mark.parametrize(
    ("name", "authserv_id", "expected_id", "expected"),
    [
        ("fastmail.com__gmail.com.eml", None, "mx6.messagingengine.com", {**PASS3, "arc": "none"}),
        ("fastmail.com__gmail.com.eml", "*.messagingengine.com", "mx6.messagingengine.com",
         {**PASS3, "arc": "none"}),
        ("icloud.com__gmail.com.eml", None, "bimi.icloud.com", PASS3),
        ("icloud.com__gmail.com.eml", "dmarc.icloud.com", "dmarc.icloud.com", PASS3),
        ("icloud.com__outlook.com.eml", None, "bimi.icloud.com", PASS3),  # not the sender's ARC arc=none
        ("icloud.com__forged-authres-added.eml", None, "bimi.icloud.com",
         {"dkim": "none", "spf": "none", "dmarc": "none"}),  # the forged aaa.com dkim=pass is not merged
        ("posteo.de__gmail.com.eml", None, "posteo.de", PASS3),
        ("ik.me__gmail.com.eml", None, "mx.infomaniak.com", PASS3),  # spf's header comes after From/To
        ("ik.me__gmail.com.eml", "mx.infomaniak.com", "mx.infomaniak.com", PASS3),
        ("hotmail.com__gmail.com.eml", None, None, {**PASS3, "compauth": "pass"}),
    ],
    ids=["fastmail", "fastmail-pattern", "icloud", "icloud-one-host-configured", "icloud-from-outlook",
         "icloud-forged", "posteo", "infomaniak", "infomaniak-configured", "hotmail"],
)  # fmt: skip
def test_split_results_of_real_receivers_are_merged(name: str, authserv_id: str | None, expected_id: str | None,
                                                     expected: dict[str, str]) -> None:  # fmt: skip
    """Every Authentication-Results header of the receiver's domain counts, whichever host wrote it and
    wherever it sits; another domain's (forged, or an earlier hop's ARC) does not."""
    verdict = judge(parse_headers(load(name)), authserv_id)
    assert expected == verdict.auth
    assert expected_id == verdict.authserv_id


ICLOUD_FULL = b"""Received: from ci74p00im-qukt09072702.me.com by p116-mailgateway-smtp-746c496c44-6mknn (mailgateway 2403B92)\r
\twith SMTP id 4f24e911-0000 for <probe@icloud.com>; Tue, 2 Jan 2024 18:52:56 GMT\r
X-Apple-MoveToFolder: INBOX \r
Received: from mail.example.org (mail.example.org [192.0.2.10])\r
\tby ci74p00im-qukt09072702.me.com (Postfix) with ESMTPS id 11C766C0012C\r
\tfor <probe@icloud.com>; Tue,  2 Jan 2024 18:52:53 +0000 (UTC)\r
Authentication-Results: bimi.icloud.com; bimi=none\r
Authentication-Results: arc.icloud.com; arc=none\r
Authentication-Results: dmarc.icloud.com; dmarc=pass header.from=example.org\r
Authentication-Results: dkim-verifier.icloud.com;\r
\tdkim=pass (2048-bit key) header.d=example.org header.i=@example.org header.b=AbCdEf12\r
Authentication-Results: spf.icloud.com; spf=pass (spf.icloud.com: domain of probe@example.org designates 192.0.2.10 as permitted sender) smtp.mailfrom=probe@example.org\r
Received: from [203.0.113.5] (unknown [203.0.113.5]) by mail.example.org (Postfix) with ESMTPSA id 4AbCdE\r
X-Spam-Status: Yes, score=6.2 required=5.0 tests=OUR_OWN_RULE autolearn=no\r
Authentication-Results: mail.example.org; dkim=none; spf=none smtp.mailfrom=probe@example.org\r
From: probe@example.org\r
Subject: mailpulse probe\r
X-Spamd-Result: default: True [16.00 / 15.00]\r
X-Rspamd-Queue-Id: 4AbCdE\r
\r
"""


def test_icloud_layout_with_the_senders_own_filter_headers() -> None:
    """iCloud writes its results below its own Received line; the sender's outbound SpamAssassin and rspamd
    (below the sender's hop, rspamd's queue id is the sender's) are not the receiver's verdict."""
    msg = parse_headers(ICLOUD_FULL)
    verdict = judge(msg, None, receiver_domains("imap.mail.me.com", "probe@icloud.com"))
    assert {**PASS3, "arc": "none"} == verdict.auth
    assert (None, None, None) == (verdict.spam.score, verdict.spam.engine, verdict.spam.flagged)
    assert registrable("bimi.icloud.com") == registrable(verdict.authserv_id)


LIST_VIA_RSPAMD = b"""Received: from mx.example.net (mx.example.net [198.51.100.7]) by imap.example.net (Dovecot) with LMTP id q1\r
\tfor <probe@example.net>; Mon, 11 Mar 2019 09:10:00 +0000\r
Received: from lists.example.com (lists.example.com [192.0.2.99])\r
\tby mx.example.net (Postfix) with ESMTPS id 4Qz7Lm2XyZ\r
\tfor <probe@example.net>; Mon, 11 Mar 2019 09:09:59 +0000 (UTC)\r
Received: from localhost (localhost [127.0.0.1]) by lists.example.com (Postfix) with ESMTP id 9F1A2B\r
X-Spam-Checker-Version: SpamAssassin 3.4.6 (2021-04-09) on lists.example.com\r
X-Spam-Status: Yes, score=8.6 required=5.0 tests=LIST_OWN autolearn=unavailable\r
Received: from mail.example.org (mail.example.org [192.0.2.10]) by lists.example.com with ESMTP id 41808C10\r
Authentication-Results: lists.example.com; dkim=fail header.d=example.org; spf=softfail smtp.mailfrom=x\r
From: probe@example.org\r
Authentication-Results: mx.example.net;\r
\tdkim=pass header.d=lists.example.com header.s=s1;\r
\tspf=pass smtp.mailfrom=list-bounces@lists.example.com;\r
\tdmarc=pass (policy=none) header.from=example.org\r
X-Spamd-Result: default: False [-1.20 / 15.00];\r
\tR_DKIM_ALLOW(-0.20)[lists.example.com:s=s1]\r
X-Rspamd-Queue-Id: 4Qz7Lm2XyZ\r
X-Rspamd-Action: no action\r
\r
"""


def test_mailing_list_hop_and_rspamd_appended_at_the_bottom() -> None:
    """Through a mailing list: the list's SpamAssassin verdict and Authentication-Results are not the
    receiver's; the receiver's rspamd headers, appended at the very bottom, are (their queue id is the
    receiver's Postfix queue id)."""
    verdict = judge(parse_headers(LIST_VIA_RSPAMD), None, receiver_domains("imap.example.net"))
    assert PASS3 == verdict.auth
    assert "mx.example.net" == verdict.authserv_id
    assert (-1.2, "rspamd", False, "no action") == (verdict.spam.score, verdict.spam.engine, verdict.spam.flagged,
                                                    verdict.spam.action)  # fmt: skip


def test_without_a_matching_queue_id_a_bottom_rspamd_verdict_is_the_senders() -> None:
    """The same message without the receiver's X-Rspamd-Queue-Id: an X-Spamd-Result below the receiver's
    Received lines is not trusted (it may be the sender's own filter's)."""
    raw = LIST_VIA_RSPAMD.replace(b"X-Rspamd-Queue-Id: 4Qz7Lm2XyZ\r\n", b"X-Rspamd-Queue-Id: 41808C10\r\n")
    assert (None, None) == (spam_verdict(parse_headers(raw)).score, spam_verdict(parse_headers(raw)).flagged)


GMAIL_FROM_M365_SENDER = b"""Received: by 2002:a05:6520:2b85:b0:24b:6e5f with SMTP id z5csp1;\r
        Mon, 3 Mar 2025 01:02:03 -0800 (PST)\r
Authentication-Results: mx.google.com;\r
       dkim=pass header.i=@example.org header.s=selector1 header.b=Qw12;\r
       arc=pass (i=1 spf=pass spfdomain=example.org dkim=pass dkdomain=example.org dmarc=pass fromdomain=example.org);\r
       spf=pass (google.com: domain of probe@example.org designates 40.107.1.2 as permitted sender) smtp.mailfrom=probe@example.org;\r
       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org\r
Received: from EUR05-AM6-obe.outbound.protection.outlook.com (mail-am6eur05on2101.outbound.protection.outlook.com. [40.107.1.2])\r
        by mx.google.com with ESMTPS id a1si1;\r
        Mon, 03 Mar 2025 01:02:03 -0800 (PST)\r
Received: from AM0PR01MB1234.eurprd01.prod.outlook.com (2603:10a6:208:1::1) by AM0PR01MB5678.eurprd01.prod.outlook.com\r
 (2603:10a6:208:2::2) with Microsoft SMTP Server id 15.20.1.1; Mon, 3 Mar 2025 09:02:02 +0000\r
From: probe@example.org\r
X-MS-Exchange-Organization-SCL: 9\r
X-Forefront-Antispam-Report: CIP:255.255.255.255;CTRY:;LANG:en;SCL:9;SRV:;IPV:NLI;SFV:SPM;H:AM0PR01MB1234.eurprd01.prod.outlook.com;PTR:;CAT:SPM;SFS:(13230040);DIR:OUT;SFP:1101;\r
X-Microsoft-Antispam: BCL:0;\r
\r
"""


def test_a_sending_microsoft_tenants_report_is_not_the_receivers() -> None:
    """Gmail received it from a Microsoft 365 tenant whose outbound scan (DIR:OUT, SFV:SPM) travels along:
    no Microsoft verdict for the receiver. (X-MS-Exchange-Organization-* is stripped at the sending
    tenant's boundary in real mail; here it is left in to show DIR:OUT alone is enough for the report.)"""
    raw = GMAIL_FROM_M365_SENDER.replace(b"X-MS-Exchange-Organization-SCL: 9\r\n", b"")
    verdict = judge(parse_headers(raw), "mx.google.com")
    assert {**PASS3, "arc": "pass"} == verdict.auth
    assert (None, None) == (verdict.spam.score, verdict.spam.flagged)


M365_RECEIVER = """Received: from AM9P191CA0011.EURP191.PROD.OUTLOOK.COM (2603:10a6:20b:21e::16) by DB9PR04MB8361.eurprd04.prod.outlook.com\r
 with HTTPS; Mon, 3 Mar 2025 09:02:04 +0000\r
Received: from mail.example.org (192.0.2.10) by AM9P191CA0011.mail.protection.outlook.com (10.167.242.1) with\r
 Microsoft SMTP Server id 15.20.2 via Frontend Transport; Mon, 3 Mar 2025 09:02:03 +0000\r
Authentication-Results: spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=example.org; dkim=pass (signature was\r
 verified) header.d=example.org;dmarc=pass action=none header.from=example.org;compauth=pass reason=100\r
From: probe@example.org\r
X-MS-Exchange-Organization-SCL: {scl}\r
X-Forefront-Antispam-Report: CIP:192.0.2.10;CTRY:DE;LANG:en;SCL:{scl};SRV:;IPV:NLI;SFV:{sfv};H:mail.example.org;PTR:mail.example.org;CAT:NONE;SFS:(13230040);DIR:INB;\r
X-Microsoft-Antispam-Mailbox-Delivery: ucf:0;jmr:0;auth:0;dest:{dest};{ofr}ENG:(910001)(944506478)(944626604);\r
\r
"""


@pytest.mark.parametrize(
    ("scl", "sfv", "dest", "ofr", "flagged", "folder"),
    [
        (1, "NSPM", "I", "", False, "inbox"),
        (1, "NSPM", "J", "", True, "junk"),  # dest:J with SCL 1 (e.g. a user's blocked sender)
        (1, "SPM", "I", "", True, "inbox"),  # SFV:SPM with SCL 1
        (1, "NSPM", "I", "OFR:SpamFilterAuthJ;", True, "inbox"),  # junked for failed authentication
        (6, "SPM", "J", "", True, "junk"),
        (-1, "SKN", "I", "", False, "inbox"),
    ],
)
def test_microsoft_junk_signals_beat_a_low_scl(scl: int, sfv: str, dest: str, ofr: str, flagged: bool,
                                               folder: str) -> None:  # fmt: skip
    """dest:J, SFV:SPM and OFR:SpamFilterAuthJ mean Microsoft junked the message even with SCL < 5."""
    raw = M365_RECEIVER.format(scl=scl, sfv=sfv, dest=dest, ofr=ofr).encode()
    verdict = judge(parse_headers(raw), None, receiver_domains("outlook.office365.com"))
    assert {**PASS3, "compauth": "pass"} == verdict.auth
    assert (float(scl), "microsoft_scl", flagged) == (verdict.spam.score, verdict.spam.engine, verdict.spam.flagged)
    assert folder == verdict.spam.provider_dest


def test_rfc2047_encoded_authentication_results_are_decoded() -> None:
    """Microsoft encodes Authentication-Results when the From domain is not ASCII; the encoded header gives
    the same results as a plain one, and the non-ASCII domain survives."""
    plain = ("spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=xn--bcher-kva.example; dkim=pass (signature was "
             "verified) header.d=bücher.example;dmarc=pass action=none header.from=bücher.example;compauth=pass "
             "reason=100")  # fmt: skip
    encoded = "=?utf-8?B?" + base64.b64encode(plain.encode()).decode() + "?="
    raw = f"Authentication-Results: {encoded}\r\nFrom: x@bücher.example\r\n\r\n".encode()
    verdict = judge(parse_headers(raw), None)
    assert {**PASS3, "compauth": "pass"} == verdict.auth
    assert "header.from=bücher.example" in header_text(encoded)
    q_encoded = "=?utf-8?Q?dkim=3Dpass_header.d=3Db=C3=BCcher.example=3B_spf=3Dpass?="
    assert {"dkim": "pass", "spf": "pass"} == judge(parse_headers(f"Authentication-Results: {q_encoded}\r\n\r\n"
                                                                  .encode()), None).auth  # fmt: skip


PROTON = b"""Received: from mail.example.org (mail.example.org [192.0.2.10]) by mailin036.protonmail.ch; Tue, 14 Jan 2020 08:06:10 +0000\r
Authentication-Results: mailin036.protonmail.ch; dmarc=pass (p=reject dis=none) header.from=example.org\r
Authentication-Results: mailin036.protonmail.ch; spf=pass smtp.mailfrom=example.org\r
Authentication-Results: mailin010.protonmail.ch; arc=none smtp.remote-ip=192.0.2.10\r
Authentication-Results: mailin010.protonmail.ch;\r
\tdkim=pass (2048-bit key) header.d=example.org header.i=@example.org header.b="Zx12Yw34"\r
Received: from [203.0.113.5] (unknown [203.0.113.5]) by mail.example.org with ESMTPSA id 4Ab\r
Authentication-Results: mail.example.org; dkim=fail; spf=fail smtp.mailfrom=example.org; dmarc=fail\r
From: probe@example.org\r
\r
"""


def test_proton_one_header_per_method_from_several_hosts() -> None:
    """Proton's mailinNNN hosts each add one method; all are merged, the sender's own header is not."""
    verdict = judge(parse_headers(PROTON), None, receiver_domains("127.0.0.1", "probe@proton.me"))
    assert {**PASS3, "arc": "none"} == verdict.auth
    assert "mailin036.protonmail.ch" == verdict.authserv_id


def test_receivers_part_ends_at_the_hop_after_its_boundary() -> None:
    """The layout: internal hops (gateway without a domain, LMTP, localhost) keep the receiver's part open;
    the first hop from outside is the boundary; the part ends at the next Received line."""
    lay = layout(parse_headers(ICLOUD_FULL))
    names = [n for n, _ in lay.fields[: lay.end]]
    assert "received" == lay.fields[lay.end][0]  # the sender's hop
    assert 5 == names.count("authentication-results")
    assert "x-spam-status" not in names
    assert {"4f24e911-0000", "11C766C0012C"} == set(lay.queue_ids)
    local = parse_headers(b"Received: from [127.0.0.1] (localhost [127.0.0.1]) by mx.example.test (Postfix) with "
                          b"ESMTPSA id 4Q1\r\nFrom: a@example.test\r\nX-Spamd-Result: default: False [1.0 / 15.0]\r\n\r\n")  # fmt: skip
    assert 3 == layout(local).end  # one server: every header is the receiver's
