"""Probe paths end to end: submission (587-style, 465-style) and the client-cert relay, through the
lab MX (rspamd checks) into two Dovecot mailbox domains, read back over IMAPS."""

from __future__ import annotations

import pytest

from lab.envfile import LabEnv
from lab.traffic import smtp
from tests.lab import mailbox

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

ROUTES = [("submission-587", smtp.SUBMISSION), ("submission-465", smtp.SMTPS), ("relay-cert", smtp.RELAY)]
TARGETS = ["probe@remote.test", "probe@partner.test"]


@pytest.mark.parametrize(("route_name", "route"), ROUTES, ids=[r[0] for r in ROUTES])
@pytest.mark.parametrize("target", TARGETS)
def test_message_arrives_signed_and_checked(mail_lab: LabEnv, route_name: str, route: smtp.Route, target: str) -> None:
    """A message sent on each route reaches each mailbox domain with a DKIM signature that verifies
    against the lab DNS and an Authentication-Results header added by the receiving MX."""
    mid, reply = mailbox.send(mail_lab, route, target, kind=route_name)
    assert reply.accepted, str(reply)

    raw = mailbox.fetch(mail_lab, target, mid)

    msg = mailbox.parse(raw)
    assert msg["DKIM-Signature"] is not None
    assert "d=example.test" in msg["DKIM-Signature"].replace(" ", "")
    assert mailbox.dkim_verifies(mail_lab, raw)
    results = msg.get_all("Authentication-Results")
    assert results, "no Authentication-Results header"
    top = str(results[0])  # the receiver's header is the topmost one
    assert top.startswith(f"{mail_lab['LAB_MX_HOSTNAME']};")
    for expected in ("dkim=pass", "spf=pass", "dmarc=pass"):
        assert expected in top


def test_lab_dns_publishes_the_signing_key(mail_lab: LabEnv) -> None:
    """The selector TXT in the lab DNS is the one lab.env announces, plus SPF and DMARC."""
    name = f"{mail_lab.dkim_selector}._domainkey.{mail_lab.dkim_domain}"
    assert mailbox.lab_dns_txt(mail_lab, name) == mail_lab.dkim_txt
    assert (mailbox.lab_dns_txt(mail_lab, "example.test") or "").startswith("v=spf1 ")
    assert (mailbox.lab_dns_txt(mail_lab, "_dmarc.example.test") or "").startswith("v=DMARC1; p=reject")
    assert mailbox.lab_dns_txt(mail_lab, "no-such-name.example.org") is None


def test_spam_marked_message_lands_in_junk(mail_lab: LabEnv) -> None:
    """The GTUBE add-header body (LAB_JUNK_BODY) is filed into the \\Junk SPECIAL-USE folder."""
    mid, reply = mailbox.send(
        mail_lab, smtp.SUBMISSION, TARGETS[0], kind="junk", body_lines=(mail_lab["LAB_JUNK_BODY"],)
    )
    assert reply.accepted, str(reply)

    raw = mailbox.fetch(mail_lab, TARGETS[0], mid, folder="\\Junk")

    assert mailbox.parse(raw)["X-Spam"] == "Yes"


def test_imap_starttls_port_serves_the_mailbox(mail_lab: LabEnv) -> None:
    """The STARTTLS IMAP port serves the same mailboxes as IMAPS."""
    mid, reply = mailbox.send(mail_lab, smtp.SUBMISSION, TARGETS[1], kind="starttls")
    assert reply.accepted, str(reply)

    raw = mailbox.fetch(mail_lab, TARGETS[1], mid, starttls=True)

    assert mid.encode() in raw
