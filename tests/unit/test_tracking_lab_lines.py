"""Regressions found running the tracker on the multi-host lab: captured lab lines (tests/fixtures/lab/multihost/,
picked by queue ID), fed the way the daemon reads them (one pipeline per host's file, in either order)."""

from __future__ import annotations

import threading
from pathlib import Path

from mailpulse.exporter.features.postfix import PostfixLogs, PostfixLogsConfig
from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.pipeline import LinePipeline
from mailpulse.exporter.tracking.config import TrackingConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab" / "multihost"
REFERENCE = 1_796_290_000.0  # 2026-12-03: the BSD stamps' year


def lines_of(name: str, *qids: str) -> list[str]:
    """The lines of one captured host log that name these queue IDs, in log order."""
    text = (FIXTURES / name).read_text()
    return [line for line in text.splitlines() if any(f" {q}: " in line for q in qids)]


def make(link_grace: float = 5.0) -> tuple[PostfixLogs, dict[str, LinePipeline]]:
    feature = PostfixLogs()
    (fmt,) = feature.formats(PostfixLogsConfig(tracking=TrackingConfig(link_grace=link_grace, reconcile=False)))
    feature.tracking.tracker.timestamps.set_reference(REFERENCE)
    lock = threading.Lock()
    pipelines = {}
    for host in ("submit", "relay", "mx", "srs"):  # one source per host's file, as in the daemon
        pipelines[host] = LinePipeline(SourceStats(f"postfix-{host}"), [fmt], lock)
        pipelines[host].timestamps.set_reference(REFERENCE)
    return feature, pipelines


# relayed_cert: relay 4C3A922A991 -> mx 5CB8122E495 -> content filter -> mx 7361B22E49D (re-injected) -> LMTP
RELAY = lines_of("relay.log", "4C3A922A991")
MX = lines_of("mx.log", "5CB8122E495", "7361B22E49D")


def test_a_hop_read_before_the_line_that_names_it_links_within_the_grace() -> None:
    """The daemon reads the MX's file first (its copy delivered and removed), then the relay's "queued as": the
    MX's copy is still waiting out link_grace, so it joins the relay's message instead of counting alone."""
    feature, src = make()
    src["mx"].feed(MX)
    assert not feature.tracking.metrics.messages  # within the grace: not counted yet
    src["relay"].feed(RELAY)
    tracker = feature.tracking.tracker
    tracker.flush()
    assert dict(feature.tracking.metrics.messages) == {("delivered", "relay", "local"): 1}
    assert sum(sum(h.counts) for h in feature.tracking.metrics.transit.values()) == 1
    hop = tracker.find("mx", "7361B22E49D")
    assert hop is not None
    assert hop.root().qid == "4C3A922A991"


def test_a_hop_whose_parent_is_read_first_links_too() -> None:
    feature, src = make()
    src["relay"].feed(RELAY)
    src["mx"].feed(MX)
    feature.tracking.tracker.flush()
    assert dict(feature.tracking.metrics.messages) == {("delivered", "relay", "local"): 1}


def test_a_greylisted_hop_is_not_a_message_and_the_deferral_is_not_its_provider() -> None:
    """The MX's milter answers 451 at end of DATA (a queue file, then "milter-reject ... 4.7.1"): the submission
    host defers and retries, so the MX's rejected queue file is an attempt, not a message received and
    rejected; and the retry's delivery, not the deferral at the internal hop, names the provider."""
    feature, src = make()
    src["submit"].feed(lines_of("submit.log", "D173E22C8AD")[:4])
    src["mx"].feed(lines_of("mx.log", "E2C5E22E4C2"))  # the greylisted attempt at the MX
    src["submit"].feed(lines_of("submit.log", "D173E22C8AD")[4:])
    src["mx"].feed(lines_of("mx.log", "E3D5C22E004", "07FA622E023"))
    feature.tracking.tracker.flush()
    assert dict(feature.tracking.metrics.messages) == {("delivered", "submission", "local"): 1}
    attempts = feature.tracking.metrics.attempts
    assert sum(sum(h.counts) for h in attempts.values()) == 1
    tracker = feature.tracking.tracker
    assert tracker.find("mx", "E2C5E22E4C2") is None  # nothing of the rejected attempt is kept
    found = tracker.find_message_id("lab-09430817e7-027-greylisted@example.test")
    assert found is not None
    assert found.qid != "E2C5E22E4C2"
    # a client that never comes back: its attempt leaves nothing behind (Message-ID index included)
    feature, src = make(link_grace=0.0)
    src["mx"].feed(lines_of("mx.log", "E2C5E22E4C2"))
    tracker = feature.tracking.tracker
    tracker.flush()
    assert not feature.tracking.metrics.messages
    assert tracker.count == 0
    assert not tracker.by_mid
    assert not tracker.closed


def test_a_discard_at_rcpt_drops_the_queue_file_smtpd_opens_next() -> None:
    """The fake remote's access map says DISCARD: "NOQUEUE: discard: RCPT ..." then "QID: client=" from the same
    smtpd process, and nothing more for QID (cleanup drops it). The message handed to it ends discarded instead
    of staying in flight until the TTL."""
    feature, src = make(link_grace=0.0)
    submit = (FIXTURES / "submit.log").read_text().splitlines()
    picked = [line for line in submit if "DA7DF22C8A5" in line or "EEF6022C8A8" in line
              or "fake-remote/smtpd[7917]: NOQUEUE: discard" in line]  # fmt: skip
    src["submit"].feed(picked)
    tracker = feature.tracking.tracker
    tracker.flush()
    assert dict(feature.tracking.metrics.messages) == {("discarded", "submission", "none"): 1}
    assert tracker.count == 0
    # another transaction of that smtpd process is not discarded with it
    feature2, src2 = make(link_grace=0.0)
    src2["submit"].feed([line for line in picked if "NOQUEUE" not in line])
    assert feature2.tracking.tracker.count == 1  # the fake remote's queue file, its end never logged


def test_a_hand_off_to_a_host_whose_log_is_not_read_does_not_swallow_a_later_message() -> None:
    """Only the relay's log is read (one mailpulse per host): its hand-off to the MX names 5CB8122E495, which never
    appears. A queue file with that ID later (short IDs repeat) is a message of its own, counted, not attached to
    the relay's finished journey."""
    feature, src = make(link_grace=0.0)
    src["relay"].feed(RELAY)
    src["relay"].feed([
        "Dec 03 10:10:00 relay postfix/relay/smtpd[9]: 5CB8122E495: client=localhost[127.0.0.1]",
        "Dec 03 10:10:00 relay postfix/qmgr[7762]: 5CB8122E495: removed",
    ])  # fmt: skip
    feature.tracking.tracker.flush()
    assert sum(n for (_, entry, _), n in feature.tracking.metrics.messages.items() if entry == "relay") == 2
