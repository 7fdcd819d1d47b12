"""The traffic driver's report against the logs, by plain text matching (independent of mailpulse's
parsers): everything the driver says it did is in the Postfix, rspamd and Dovecot logs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lab.envfile import LabEnv

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]

KINDS = {
    "submitted_587",
    "submitted_465",
    "relayed_cert",
    "auth_failures_587",
    "auth_failures_465",
    "rejected_unknown_recipient",
    "relay_denied_mx",
    "relay_denied_nocert",
    "sent_remote",
    "deferred_tempfail",
    "deferred_unreachable",
    "expired",
    "bounced_remote",
    "bounced_lmtp",
    "junk_gtube",
    "junk_score",
    "spam_rejected_submission",
    "spam_rejected_mx",
    "external_ham",
    "spoofed",
    "tampered",
    "greylisted",
    "forwarded_srs",
    "forwarded_external",
    "deleted",
}


# client names as the lab's smtpd services log them
LOCAL = r"localhost\[127\.0\.0\.1\]"  # the probe / submitting client
MTA = r"unknown\[127\.0\.0\.2\]"  # the lab's own SMTP client arriving at the MX
EXT = r"unknown\[127\.0\.0\.3\]"  # "the internet" at the MX
REJECT = r"NOQUEUE: reject: RCPT from"
MILTER = r"milter-reject: END-OF-MESSAGE from"
SASL_FAILED = r"SASL PLAIN authentication failed"


def _during(path: str, start: int, end: int) -> str:
    with Path(path).open("rb") as fh:
        fh.seek(start)
        return fh.read(end - start).decode(errors="replace")


@pytest.fixture(scope="module")
def logs(mail_lab: LabEnv, lab_traffic: dict[str, Any]) -> dict[str, str]:
    """What each log got during the traffic run (other tests may have sent mail since)."""
    start, end = lab_traffic["log_offsets"], lab_traffic["log_end_offsets"]
    return {
        name: _during(mail_lab[f"LAB_{name.upper()}_LOG"], start[name], end[name])
        for name in ("postfix", "rspamd", "dovecot")
    }


def _records(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in report["records"] if r["kind"] == kind]


def _count(text: str, pattern: str) -> int:
    return len(re.findall(pattern, text, re.M))


def test_driver_did_every_kind_without_problems(lab_traffic: dict[str, Any]) -> None:
    """Every kind of traffic was produced, and each ended where the lab is built to send it."""
    assert set(lab_traffic["counts"]) == KINDS
    assert lab_traffic["problems"] == []
    assert sum(lab_traffic["counts"].values()) == len(lab_traffic["records"])


@pytest.mark.parametrize(
    ("kind", "service", "sasl"),
    [
        ("submitted_587", "postfix/submission/smtpd", True),
        ("submitted_465", "postfix/smtps/smtpd", True),
        ("relayed_cert", "postfix/relay/smtpd", False),
    ],
)
def test_accepted_submissions_are_logged_per_service(
    logs: dict[str, str], lab_traffic: dict[str, Any], kind: str, service: str, sasl: bool
) -> None:
    """Each accepted message appears with its queue ID under the service's syslog name."""
    records = _records(lab_traffic, kind)
    assert len(records) == lab_traffic["counts"][kind]
    for rec in records:
        line = re.search(
            rf"^.* {re.escape(service)}\[\d+\]: {rec['queue_id']}: client={LOCAL}(.*)$", logs["postfix"], re.M
        )
        assert line, f"{kind} {rec['queue_id']} not logged by {service}"
        assert ("sasl_username=probe@example.test" in line.group(1)) is sasl


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("auth_failures_587", rf"postfix/submission/smtpd\[\d+\]: warning: {LOCAL}: {SASL_FAILED}"),
        ("auth_failures_465", rf"postfix/smtps/smtpd\[\d+\]: warning: {LOCAL}: {SASL_FAILED}"),
        (
            "rejected_unknown_recipient",
            rf"{REJECT} {LOCAL}: 550 5\.1\.1 <nobody@remote\.test>: Recipient address rejected: User unknown",
        ),
        (
            "relay_denied_mx",
            rf"postfix/smtpd\[\d+\]: {REJECT} {EXT}: 554 5\.7\.1 <victim@elsewhere\.test>: "
            r"Relay access denied",
        ),
        (
            "relay_denied_nocert",
            rf"postfix/relay/smtpd\[\d+\]: {REJECT} {LOCAL}: 554 5\.7\.1 <[^>]+>: "
            r"Recipient address rejected: Access denied",
        ),
        ("spam_rejected_submission", rf"{MILTER} {LOCAL}: 5\.7\.1 Gtube pattern"),
        ("spam_rejected_mx", rf"{MILTER} {EXT}: 5\.7\.1 Gtube pattern"),
        ("spoofed", rf"{MILTER} {EXT}: 5\.7\.1 .*; from=<probe@example"),
        ("sent_remote", r"postfix/fake-remote/smtpd\[\d+\]: NOQUEUE: discard: RCPT from .*<user@accept\.test>"),
    ],
)
def test_session_level_events_are_counted_exactly(
    logs: dict[str, str], lab_traffic: dict[str, Any], kind: str, pattern: str
) -> None:
    """Rejections and failures the driver caused appear exactly as often as it reports."""
    assert _count(logs["postfix"], pattern) == lab_traffic["counts"][kind]


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        ("deferred_tempfail", ["deferred"]),
        ("deferred_unreachable", ["deferred"]),
        ("expired", ["deferred"]),
        ("deleted", ["deferred"]),
        ("bounced_remote", ["bounced"]),
        ("greylisted", ["deferred", "sent"]),
    ],
)
def test_first_hop_delivery_statuses(
    logs: dict[str, str], lab_traffic: dict[str, Any], kind: str, statuses: list[str]
) -> None:
    """The submitting side logs the delivery attempts the driver reports, one line per attempt."""
    for rec in _records(lab_traffic, kind):
        found = re.findall(rf" {rec['queue_id']}: to=<[^>]+>, relay=.*, status=(\w+) ", logs["postfix"])
        assert found == statuses, rec


def test_expiry_bounce_and_ndrs(logs: dict[str, str], lab_traffic: dict[str, Any]) -> None:
    """Force-expired and bounced messages return an NDR to the sender, which is delivered."""
    for rec in _records(lab_traffic, "expired"):
        qid = rec["queue_id"]
        expired = rf" {qid}: from=<probe@example\.test>, status=force-expired, returned to sender$"
        assert re.search(expired, logs["postfix"], re.M)
    for kind in ("expired", "bounced_remote", "bounced_lmtp"):
        for rec in _records(lab_traffic, kind):
            # the MX bounces the re-injected copy (after its content filter): the last hop's queue ID
            bounced_qid = rec["hop_queue_ids"][-1] if kind == "bounced_lmtp" else rec["queue_id"]
            ndr = f" {bounced_qid}: sender non-delivery notification: {rec['ndr_queue_id']}"
            assert ndr in logs["postfix"]
    for rec in _records(lab_traffic, "bounced_lmtp"):
        lmtp = rf" postfix/lmtp\[\d+\]: {rec['hop_queue_ids'][-1]}: to=<ghost@remote\.test>, .*status=bounced "
        assert re.search(lmtp, logs["postfix"])
    assert lab_traffic["derived"]["ndr_delivered"] == lab_traffic["derived"]["ndr_generated"] > 0


def test_deleted_by_the_administrator(logs: dict[str, str], lab_traffic: dict[str, Any]) -> None:
    """A deferred message deleted with postsuper -d: removed by postsuper, no delivery after, no NDR."""
    for rec in _records(lab_traffic, "deleted"):
        qid = rec["queue_id"]
        assert rec["outcome"] == "deleted"
        assert re.search(rf" mail postfix/postsuper\[\d+\]: {qid}: removed$", logs["postfix"], re.M)
        assert rec["ndr_queue_id"] is None
        assert f" {qid}: sender non-delivery notification:" not in logs["postfix"]


def test_rspamd_signs_on_submission_and_verifies_at_the_mx(logs: dict[str, str], lab_traffic: dict[str, Any]) -> None:
    """rspamd's verdict lines: DKIM_SIGNED for the submission's queue ID, R_DKIM_ALLOW (or
    R_DKIM_REJECT for tampered mail) for the MX's queue ID of the same message."""
    for kind in ("submitted_587", "submitted_465", "relayed_cert", "tampered"):
        for rec in _records(lab_traffic, kind):
            out = re.search(rf"rspamd_task_write_log: .*qid: <{rec['queue_id']}>.*", logs["rspamd"])
            mx = re.search(
                rf"rspamd_task_write_log: .*qid: <{rec['mx_queue_id']}>, ip: 127\.0\.0\.2,.*", logs["rspamd"]
            )
            assert out, rec
            assert "DKIM_SIGNED(" in out.group(0), rec
            assert mx, rec
            assert ("R_DKIM_REJECT(" if kind == "tampered" else "R_DKIM_ALLOW(") in mx.group(0)
            assert "R_SPF_ALLOW(" in mx.group(0)
            assert "DMARC_POLICY_ALLOW(" in mx.group(0)


@pytest.mark.parametrize(
    ("kind", "forced"),
    [
        ("spam_rejected_submission", 'forced: reject "Gtube pattern"'),
        ("spam_rejected_mx", 'forced: reject "Gtube pattern"'),
        ("spoofed", 'forced: reject "Action set by DMARC"'),
        ("greylisted", 'forced: soft reject "Try again later"; score=nan (set by greylist)'),
        ("junk_gtube", 'forced: add header "Gtube pattern"'),
    ],
)
def test_rspamd_forced_actions(logs: dict[str, str], lab_traffic: dict[str, Any], kind: str, forced: str) -> None:
    """Spam, spoofs and greylisting show up in rspamd's verdict lines with the forcing module."""
    for rec in _records(lab_traffic, kind):
        mid = re.escape(rec["message_id"].strip("<>"))
        lines = re.findall(rf"rspamd_task_write_log: id: <{mid}>, .*", logs["rspamd"])
        assert any(forced in line for line in lines), (rec, lines)


def test_greylisting_then_pass(logs: dict[str, str], lab_traffic: dict[str, Any]) -> None:
    """A greylisted message is soft-rejected at the MX first and passes greylisting on the retry."""
    for rec in _records(lab_traffic, "greylisted"):
        soft = rf"{MILTER} {MTA}: 4\.7\.1 Try again later; from=<{re.escape(rec['mail_from'])}>"
        assert re.search(soft, logs["postfix"])
        assert "greylisting pass" in logs["rspamd"]
        assert rec["folder"] == "INBOX"


def test_mailbox_placement_in_dovecot_log(logs: dict[str, str], lab_traffic: dict[str, Any]) -> None:
    """Spam-marked messages are filed into Junk, the others into INBOX (Dovecot's sieve log)."""
    for rec in lab_traffic["records"]:
        if rec["outcome"] != "delivered":
            continue
        # lmtp(...): Info: sieve: msgid=<...>: fileinto action: stored mail into mailbox 'Junk'
        mid = re.escape(rec["message_id"])
        stored = rf"msgid={mid}: (?:fileinto action: )?stored mail into mailbox '(\w+)'"
        m = re.search(stored, logs["dovecot"])
        assert m, rec
        assert m.group(1) == ("Junk" if rec["kind"].startswith("junk_") else "INBOX")
