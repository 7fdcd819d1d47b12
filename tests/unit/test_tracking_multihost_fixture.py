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
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mailpulse.exporter.features.postfix import PostfixLogs
from mailpulse.exporter.scan import scan
from tests.tracking_checks import check_journeys, expected_entries, expected_outcomes, summary_messages

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab" / "multihost"
HOST_FILES = ("submit.log", "relay.log", "mx.log", "srs.log")
RUNS = {
    "central": ("central.json", ("central.log",)),
    "per-host": ("per-host.json", HOST_FILES),
    "per-host, reversed": ("per-host.json", tuple(reversed(HOST_FILES))),
}


@pytest.fixture(scope="module", params=list(RUNS))
def scanned(request: pytest.FixtureRequest) -> tuple[dict[str, Any], PostfixLogs, str]:
    report_name, files = RUNS[request.param]
    report: dict[str, Any] = json.loads((FIXTURES / report_name).read_text())
    feature = PostfixLogs()
    out = io.StringIO()
    jobs = [("postfix", str(FIXTURES / name)) for name in files]
    assert scan(jobs, (feature,), summary=True, progress=False, out=out) == 0
    return report, feature, out.getvalue()


def test_summary_counts_each_message_once_with_the_drivers_outcome(scanned: Any) -> None:
    report, _, text = scanned
    outcomes, queued, notices = summary_messages(text)
    assert outcomes == expected_outcomes(report), text
    assert queued == report["outcomes"]["deferred"]  # one queue file each, still deferred at the end
    assert notices == report["derived"]["ndr_generated"]


def test_every_hop_of_a_message_is_one_journey(scanned: Any) -> None:
    report, feature, _ = scanned
    check_journeys(report, feature.tracking.tracker)


def test_received_once_per_message_and_one_transit_observation_each(scanned: Any) -> None:
    """messages_total by entry: each message once, where it entered (a hop or re-injection is not received
    again); the transit histogram has exactly one observation per finished message."""
    report, feature, _ = scanned
    metrics = feature.tracking.metrics
    entries: Counter[str] = Counter()
    for (_, entry, _), n in metrics.messages.items():
        entries[entry] += int(n)
    assert entries == expected_entries(report)
    assert sum(sum(h.counts) for h in metrics.transit.values()) == sum(entries.values())


def test_lab_relays_have_sane_providers(scanned: Any) -> None:
    """Mailbox deliveries are `local` (hand-offs to our hosts and the content filter never name the provider of
    a message); what ended at the loopback fake remote or the unreachable 127.0.0.1:1 is `internal`."""
    _, feature, _ = scanned
    by_outcome: dict[str, set[str]] = {}
    for (outcome, _, provider), _n in feature.tracking.metrics.messages.items():
        by_outcome.setdefault(outcome, set()).add(provider)
    assert by_outcome["delivered"] == {"local"}
    assert by_outcome["expired"] == {"internal"}  # deferred at 127.0.0.1:1 until expired
    assert by_outcome["deleted"] == {"internal"}
    assert by_outcome["bounced"] == {"internal", "local"}  # the fake remote's 550, LMTP's 550
    assert by_outcome["rejected"] == {"none"}
