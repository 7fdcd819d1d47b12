"""Message tracking on the multi-host lab's captured logs, against what the lab's traffic driver did.

tests/fixtures/lab/multihost/ holds one lab life per log mode (``lab/mail-lab capture-fixtures --multihost``,
docs/lab.md): four Postfix hosts (submission ``mail``, ``relay``, ``mx`` with the content filter's
re-injection, ``srs``), per-host files and one central file, and the driver's reports listing every message
with the queue ID of each hop and its outcome. Every message must end once, with the driver's outcome, in
``scan --summary``'s message counts and in the tracker, whichever way the logs are given: the central file,
or the four files in any order (scan merges them by time).
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mailpulse.exporter.features.postfix import PostfixLogs
from mailpulse.exporter.scan import scan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab" / "multihost"
HOST_FILES = ("submit.log", "relay.log", "mx.log", "srs.log")
RUNS = {
    "central": ("central.json", ("central.log",)),
    "per-host": ("per-host.json", HOST_FILES),
    "per-host, reversed": ("per-host.json", tuple(reversed(HOST_FILES))),
}

# the driver's outcome -> the tracker's. "sent_remote" went to the fake remote MX, which in the lab is a Postfix
# smtpd on loopback whose log we read (so a hop, docs/tracking.md) and which DISCARDs it.
OUTCOME = {"delivered": "delivered", "bounced": "bounced", "expired": "expired", "deleted": "deleted",
           "sent_remote": "discarded", "rejected": "rejected"}  # fmt: skip


def expected_counts(report: dict[str, Any]) -> Counter[str]:
    """Finished messages by outcome, from the driver's records: rejects count only when the message had a queue
    ID (rejected at end of DATA: milter); deferred ones are still queued."""
    out: Counter[str] = Counter()
    for rec in report["records"]:
        if rec["outcome"] == "rejected" and rec["stage"] != "data":
            continue
        if rec["outcome"] in OUTCOME:
            out[OUTCOME[rec["outcome"]]] += 1
    return out


@pytest.fixture(scope="module", params=list(RUNS))
def scanned(request: pytest.FixtureRequest) -> tuple[dict[str, Any], PostfixLogs, str]:
    report_name, files = RUNS[request.param]
    report: dict[str, Any] = json.loads((FIXTURES / report_name).read_text())
    feature = PostfixLogs()
    out = io.StringIO()
    jobs = [("postfix", str(FIXTURES / name)) for name in files]
    assert scan(jobs, (feature,), summary=True, progress=False, out=out) == 0
    return report, feature, out.getvalue()


def summary_counts(text: str) -> tuple[Counter[str], int, int]:
    """The *Messages* section: finished messages by outcome, queue files still queued, notifications."""
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


def test_summary_counts_each_message_once_with_the_drivers_outcome(scanned: Any) -> None:
    report, _, text = scanned
    outcomes, queued, notices = summary_counts(text)
    assert outcomes == expected_counts(report), text
    assert queued == report["outcomes"]["deferred"]  # one queue file each, still deferred at the end
    assert notices == report["derived"]["ndr_generated"]


def test_every_hop_of_a_message_is_one_journey(scanned: Any) -> None:
    """Each message the driver sent: its first queue ID, the MX's, every later hop's (content filter
    re-injection, SRS host, outside MX) belong to one journey, counted once with the driver's outcome; a
    bounce's or expiry's notification is linked to it and counted as a message of its own."""
    report, feature, _ = scanned
    tracker = feature.tracking.tracker
    for rec in report["records"]:
        if not rec["queue_id"]:
            continue
        msg = tracker.find("", rec["queue_id"])
        assert msg is not None, rec["kind"]
        root = msg.root()
        for hop in [rec["mx_queue_id"], *rec["hop_queue_ids"]]:
            if hop:
                found = tracker.find("", hop)
                assert found is not None, (rec["kind"], hop)
                assert found.root() is root, (rec["kind"], hop)
        if rec["outcome"] == "deferred":
            assert not tracker.view(root).finished, rec["kind"]
            continue
        assert tracker.view(root).outcome == OUTCOME[rec["outcome"]], rec["kind"]
        if rec["ndr_queue_id"]:
            notice = tracker.find("", rec["ndr_queue_id"])
            assert notice is not None, rec["kind"]
            assert notice.parent is not None, rec["kind"]
            assert notice.parent.root() is root, rec["kind"]
            assert tracker.view(notice).outcome == "delivered", rec["kind"]  # the NDR reached probe@example.test


def test_received_once_per_message_and_one_transit_observation_each(scanned: Any) -> None:
    """messages_total by entry: each message once (a hop or re-injection is not received again); the transit
    histogram has exactly one observation per finished message."""
    report, feature, _ = scanned
    metrics = feature.tracking.metrics
    finished = sum(metrics.messages.values())
    assert finished == sum(expected_counts(report).values()) + report["derived"]["ndr_generated"]
    assert sum(sum(h.counts) for h in metrics.transit.values()) == finished
    entries: Counter[str] = Counter()
    for (_, entry, _), n in metrics.messages.items():
        entries[entry] += int(n)
    # the MX's and the SRS host's own smtpd received only what came from outside (external senders)
    from_outside = sum(1 for r in report["records"] if r["queue_id"] and r["route"] == "mx")
    rejected_outside = sum(1 for r in report["records"] if r["route"] == "mx" and r["stage"] == "data"
                           and r["outcome"] == "rejected")  # fmt: skip
    assert entries["smtpd"] == from_outside + rejected_outside
    assert entries["bounce"] == report["derived"]["ndr_generated"]


def test_lab_relays_have_sane_providers(scanned: Any) -> None:
    """Mailbox deliveries are `local`; hand-offs to our hosts and the content filter never name a provider
    of the message; what stops at the loopback fake remote or the unreachable 127.0.0.1:1 is `internal`."""
    _, feature, _ = scanned
    by_outcome: dict[str, set[str]] = {}
    for (outcome, _, provider), _n in feature.tracking.metrics.messages.items():
        by_outcome.setdefault(outcome, set()).add(provider)
    assert by_outcome["delivered"] == {"local"}
    assert by_outcome["expired"] == {"internal"}  # deferred at 127.0.0.1:1 until expired
    assert by_outcome["deleted"] == {"internal"}
    assert by_outcome["bounced"] <= {"internal", "local"}  # fake remote 550 / LMTP 550
    assert by_outcome["rejected"] == {"none"}
