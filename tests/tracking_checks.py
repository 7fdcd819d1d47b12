"""What message tracking must say about a lab traffic run: shared by the fixture tests (captured multi-host
logs) and the lab tests (a live lab in both log modes).

The traffic driver's report (lab/traffic) lists every message it sent with the queue ID of each hop
(``queue_id``, ``mx_queue_id``, ``hop_queue_ids``), its notification's (``ndr_queue_id``) and its outcome."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from mailpulse.exporter.tracking.tracker import Tracker

# the driver's outcome -> the tracker's. "sent_remote" went to the fake remote MX: in the lab a Postfix smtpd on
# loopback whose log is read (so a hop, docs/tracking.md), which DISCARDs it.
OUTCOME = {"delivered": "delivered", "bounced": "bounced", "expired": "expired", "deleted": "deleted",
           "sent_remote": "discarded", "rejected": "rejected"}  # fmt: skip


def expected_outcomes(report: dict[str, Any]) -> Counter[str]:
    """Finished messages by outcome (notifications apart): a reject counts only when the message had a queue
    ID (rejected at the end of DATA, by the milter); deferred messages are still queued."""
    out: Counter[str] = Counter()
    for rec in report["records"]:
        if rec["outcome"] == "rejected" and rec["stage"] != "data":
            continue
        if rec["outcome"] in OUTCOME:
            out[OUTCOME[rec["outcome"]]] += 1
    return out


def expected_entries(report: dict[str, Any]) -> Counter[str]:
    """Finished messages by entry service: each received once, where it first entered (a hop to the next
    host or the content filter's re-injection is not received again); notifications enter by ``bounce``."""
    service = {"submission": "submission", "smtps": "smtps", "relay": "relay", "mx": "smtpd"}
    out: Counter[str] = Counter()
    for rec in report["records"]:
        queued = rec["queue_id"] or (rec["outcome"] == "rejected" and rec["stage"] == "data")
        if queued and rec["outcome"] != "deferred":
            out[service[rec["route"]]] += 1
    out["bounce"] = report["derived"]["ndr_generated"]
    return +out


def check_journeys(report: dict[str, Any], tracker: Tracker) -> None:
    """Each message the driver sent: its first queue ID, the MX's and every later hop's (content filter
    re-injection, SRS host, outside MX) are one journey with the driver's outcome; a bounce's or an expiry's
    notification is linked to it and is a message of its own, delivered to the sender's mailbox."""
    for rec in report["records"]:
        if not rec["queue_id"]:
            continue
        what = (rec["kind"], rec["queue_id"])
        msg = tracker.find("", rec["queue_id"])
        assert msg is not None, what
        root = msg.root()
        for hop in [rec["mx_queue_id"], *rec["hop_queue_ids"]]:
            if hop:
                found = tracker.find("", hop)
                assert found is not None, (what, hop)
                assert found.root() is root, (what, hop)
        if rec["outcome"] == "deferred":
            assert not tracker.view(root).finished, what
            continue
        assert tracker.view(root).outcome == OUTCOME[rec["outcome"]], what
        if rec["ndr_queue_id"]:
            notice = tracker.find("", rec["ndr_queue_id"])
            assert notice is not None, what
            assert notice.parent is not None, what
            assert notice.parent.root() is root, what
            assert tracker.view(notice).outcome == "delivered", what


def summary_messages(text: str) -> tuple[Counter[str], int, int]:
    """``scan --summary``'s *Messages* section: finished messages by outcome, queue files still queued,
    notifications."""
    section = text.partition("\nMessages (joined by queue ID")[2].partition("\n\n")[0]
    outcomes: Counter[str] = Counter()
    queued = notices = 0
    for line in section.splitlines():
        m = re.match(r"^\s+(\d+)\s{4}(\w+)$", line)
        if m:
            outcomes[m.group(2)] = int(m.group(1))
        elif "still in the queue" in line:
            queued = int(line.split()[0])
        elif "notifications Postfix generated" in line:
            notices = int(line.split()[0])
    return outcomes, queued, notices
