"""The kinds of traffic the driver produces: one function per kind, each appending Records.

Every kind is a real SMTP session against the lab; `expect` is what the lab is built to do with it
(docs/lab.md), `outcome` what the logs then show (filled in by tracking.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lab.envfile import LabEnv
from lab.layout import (
    ACCEPT_DOMAIN,
    BOUNCE_DOMAIN,
    EXTERNAL_SENDER_DOMAIN,
    FORWARD_ALIAS,
    GHOST,
    GTUBE_ADD_HEADER,
    GTUBE_REJECT,
    OUTSIDE_DOMAIN,
    OWN_DOMAIN,
    SCORE_HEADER,
    TAMPER_TOKEN,
    TARGETS,
    TEMPFAIL_DOMAIN,
    UNREACHABLE_DOMAIN,
)
from lab.traffic import mail, smtp
from lab.traffic.smtp import Route

GREYLIST_HEADER = "X-Lab-Greylist"


@dataclass
class Record:
    """One thing the driver did, and what became of it."""

    kind: str
    route: str
    mail_from: str
    rcpt: str
    message_id: str | None
    reply: str
    stage: str  # where the session ended: auth | mail | rcpt | data
    queue_id: str | None  # the queue ID the receiving smtpd reported
    # delivered:INBOX | delivered:Junk | deferred | bounced | expired | deleted | sent_remote | rejected |
    # auth_failed
    expect: str
    outcome: str | None = None
    mx_queue_id: str | None = None
    # queue IDs after the MX's: re-injection after the content filter, SRS forwarder, outside MX
    hop_queue_ids: list[str] = field(default_factory=list)
    ndr_queue_id: str | None = None
    ndr_via_mx: bool = False  # the NDR came from the sending side and crossed the MX (an MX's own NDR does not)
    folder: str | None = None
    postfix_statuses: list[str] = field(default_factory=list)  # status= values in log order, all hops
    rspamd: list[dict[str, Any]] = field(default_factory=list)  # verdicts by qid, in hop order

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sender:
    """Sends messages for one driver run and keeps the records."""

    def __init__(self, env: LabEnv, run_id: str) -> None:
        self.env = env
        self.run_id = run_id
        self.records: list[Record] = []

    @property
    def sender(self) -> str:
        return self.env["LAB_SENDER"]

    def message(
        self,
        kind: str,
        route: Route,
        rcpt: str,
        expect: str,
        *,
        mail_from: str | None = None,
        header_from: str | None = None,
        headers: dict[str, str] | None = None,
        body_lines: tuple[str, ...] = (),
    ) -> Record:
        mail_from = mail_from or self.sender
        mid, data = mail.build(
            self.run_id, kind, header_from or mail_from, rcpt, extra_headers=headers, body_lines=body_lines
        )
        reply = smtp.send(self.env, route, mail_from, [rcpt], data)
        rec = Record(
            kind,
            route.name,
            mail_from,
            rcpt,
            mid,
            str(reply),
            reply.stage,
            reply.queue_id if reply.accepted else None,
            expect,
        )
        if not reply.accepted:
            rec.outcome = "rejected"
        self.records.append(rec)
        return rec

    def auth_failure(self, kind: str, route: Route) -> Record:
        conn = smtp.open_session(self.env, route)
        try:
            reply = smtp.auth_plain(conn, self.sender, "wrong-" + self.run_id)
        finally:
            smtp.close(conn)
        rec = Record(
            kind,
            route.name,
            self.sender,
            "",
            None,
            str(reply),
            reply.stage,
            None,
            "auth_failed",
            outcome="auth_failed" if reply.code == 535 else f"unexpected {reply.code}",
        )
        self.records.append(rec)
        return rec


@dataclass(frozen=True)
class Kind:
    """One kind of traffic: `per_scale` sessions per --scale unit, all alike."""

    name: str
    per_scale: int
    route: Route
    expect: str
    rcpt: str | None = None  # None: the probe targets in turn (one per mailbox domain)
    mail_from: str | None = None  # None: LAB_SENDER; "{run}" and "{i}" are filled in
    headers: tuple[tuple[str, str], ...] = ()
    body_lines: tuple[str, ...] = ()
    from_header_is_sender: bool = False  # From: LAB_SENDER although the envelope sender differs

    def run(self, s: Sender, i: int) -> Record:
        if self.expect == "auth_failed":
            return s.auth_failure(self.name, self.route)
        rcpt = self.rcpt or TARGETS[i % len(TARGETS)]
        mail_from = self.mail_from.format(run=s.run_id, i=i) if self.mail_from else None
        return s.message(
            self.name,
            self.route,
            rcpt,
            self.expect,
            mail_from=mail_from,
            header_from=s.sender if self.from_header_is_sender else None,
            headers=dict(self.headers),
            body_lines=self.body_lines,
        )


ALICE = f"alice@{EXTERNAL_SENDER_DOMAIN}"
INBOX, JUNK = "delivered:INBOX", "delivered:Junk"
UNKNOWN_USER = f"nobody@{TARGETS[0].split('@')[1]}"

KINDS: tuple[Kind, ...] = (
    Kind("submitted_587", 3, smtp.SUBMISSION, INBOX),
    Kind("submitted_465", 2, smtp.SMTPS, INBOX),
    Kind("relayed_cert", 2, smtp.RELAY, INBOX),
    Kind("auth_failures_587", 2, smtp.SUBMISSION, "auth_failed"),
    Kind("auth_failures_465", 1, smtp.SMTPS, "auth_failed"),
    Kind("rejected_unknown_recipient", 1, smtp.SUBMISSION, "rejected", rcpt=UNKNOWN_USER),
    Kind("relay_denied_mx", 1, smtp.MX_EXTERNAL, "rejected", rcpt=f"victim@{OUTSIDE_DOMAIN}", mail_from=ALICE),
    Kind("relay_denied_nocert", 1, smtp.RELAY_NO_CERT, "rejected"),
    Kind("sent_remote", 1, smtp.SUBMISSION, "sent_remote", rcpt=f"user@{ACCEPT_DOMAIN}"),
    Kind("deferred_tempfail", 1, smtp.SUBMISSION, "deferred", rcpt=f"user@{TEMPFAIL_DOMAIN}"),
    Kind("deferred_unreachable", 1, smtp.SUBMISSION, "deferred", rcpt=f"user@{UNREACHABLE_DOMAIN}"),
    Kind("expired", 1, smtp.SUBMISSION, "expired", rcpt=f"expire@{UNREACHABLE_DOMAIN}"),
    Kind("deleted", 1, smtp.SUBMISSION, "deleted", rcpt=f"delete@{UNREACHABLE_DOMAIN}"),
    Kind("bounced_remote", 1, smtp.SUBMISSION, "bounced", rcpt=f"user@{BOUNCE_DOMAIN}"),
    Kind("bounced_lmtp", 1, smtp.SUBMISSION, "bounced", rcpt=GHOST),
    Kind("junk_gtube", 1, smtp.SUBMISSION, JUNK, body_lines=(GTUBE_ADD_HEADER,)),
    Kind("junk_score", 1, smtp.SUBMISSION, JUNK, headers=((SCORE_HEADER, "8"),)),
    Kind("spam_rejected_submission", 1, smtp.SUBMISSION, "rejected", body_lines=(GTUBE_REJECT,)),
    Kind(
        "spam_rejected_mx",
        1,
        smtp.MX_EXTERNAL,
        "rejected",
        mail_from=f"spam@{EXTERNAL_SENDER_DOMAIN}",
        body_lines=(GTUBE_REJECT,),
    ),
    Kind("external_ham", 1, smtp.MX_EXTERNAL, INBOX, mail_from=ALICE),
    # through the MX's alias to the SRS forwarder, then to the outside mailbox
    Kind("forwarded_srs", 1, smtp.SUBMISSION, INBOX, rcpt=FORWARD_ALIAS),
    Kind("forwarded_external", 1, smtp.MX_EXTERNAL, INBOX, rcpt=FORWARD_ALIAS, mail_from=ALICE),
    Kind("spoofed", 1, smtp.MX_EXTERNAL, "rejected"),
    Kind("tampered", 1, smtp.SUBMISSION, INBOX, body_lines=(f"signed text, {TAMPER_TOKEN} on the way",)),
    # greylisting keys on (envelope sender, recipient, client /19): a sender unique to the run makes
    # the first attempt deterministic even after earlier runs passed (passes are kept for a day)
    Kind(
        "greylisted",
        1,
        smtp.SUBMISSION,
        INBOX,
        mail_from="grey-{run}-{i}@" + OWN_DOMAIN,
        headers=((GREYLIST_HEADER, "yes"),),
        from_header_is_sender=True,
    ),
)
