"""Message tracking on the real lab's Postfix log: the traffic driver's messages (delivered to a mailbox
through the MX hop, bounced with their notification, deferred, force-expired) each get the right final
outcome and exactly one transit observation, at the queue ID the driver was given."""

from __future__ import annotations

import io
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lab.envfile import LabEnv
from mailpulse.exporter.features.postfix import PostfixLogs, PostfixLogsConfig
from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.pipeline import LinePipeline
from mailpulse.exporter.scan import read_lines
from mailpulse.exporter.tracking.config import TrackingConfig
from mailpulse.exporter.tracking.record import Msg

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def tracked(mail_lab: LabEnv, lab_traffic: dict[str, Any]) -> tuple[PostfixLogs, Counter[str], dict[str, str]]:
    """The Postfix log written during the traffic run, read through the tracker."""
    start, end = lab_traffic["log_offsets"]["postfix"], lab_traffic["log_end_offsets"]["postfix"]
    feature = PostfixLogs()
    config = PostfixLogsConfig(tracking=TrackingConfig(link_grace=0.0, reconcile=False))
    (fmt,) = feature.formats(config)
    finished: Counter[str] = Counter()
    outcome: dict[str, str] = {}

    def on_finish(root: Msg, result: str, provider: str) -> None:
        finished[root.qid] += 1
        outcome[root.qid] = result

    feature.tracking.tracker.on_finish = on_finish
    pipeline = LinePipeline(SourceStats("lab"), [fmt], threading.Lock())
    with Path(mail_lab["LAB_POSTFIX_LOG"]).open("rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    read_lines(io.BytesIO(data), pipeline.feed, lambda n: None)
    feature.tracking.tracker.flush()
    return feature, finished, outcome


def records(report: dict[str, Any], *outcomes: str) -> list[dict[str, Any]]:
    return [r for r in report["records"] if r["queue_id"] and r["outcome"] in outcomes]


def test_each_message_has_its_outcome_once(lab_traffic: dict[str, Any], tracked: Any) -> None:
    feature, finished, outcome = tracked
    tracker = feature.tracking.tracker
    delivered = records(lab_traffic, "delivered")
    assert delivered, lab_traffic["outcomes"]
    for rec in delivered:
        assert finished[rec["queue_id"]] == 1, rec
        assert outcome[rec["queue_id"]] == "delivered", rec
        if rec["mx_queue_id"] and rec["mx_queue_id"] != rec["queue_id"]:
            # the MX's copy is the same message (a hop through the loopback relay), not a second one
            hop = tracker.find("", rec["mx_queue_id"])
            assert hop is not None
            assert hop.root().qid == rec["queue_id"]
            assert rec["mx_queue_id"] not in finished
    for rec in records(lab_traffic, "bounced"):
        root = rec["queue_id"]
        assert finished[root] == 1, rec
        assert outcome[root] == "bounced", rec
        assert rec["ndr_queue_id"], rec
        notice = tracker.find("", rec["ndr_queue_id"])
        assert notice is not None, rec
        assert notice.parent is not None, rec
        assert notice.parent.root().qid == root
        assert finished[rec["ndr_queue_id"]] == 1  # the notification is a message of its own
    for rec in records(lab_traffic, "deferred"):
        assert rec["queue_id"] not in finished, rec  # still in the queue
        msg = tracker.find("", rec["queue_id"])
        assert msg is not None
        assert msg.deferred >= 1
    for rec in records(lab_traffic, "expired"):
        assert outcome[rec["queue_id"]] == "expired", rec
    # one transit observation per finished message, no more
    observations = sum(sum(h.counts) for h in feature.tracking.metrics.transit.values())
    assert observations == sum(finished.values())
    assert max(finished.values()) == 1


def test_daemon_counts_messages_from_the_live_log(mail_lab: LabEnv, tmp_path: Path) -> None:
    """`mailpulse run` on the lab's live log: a message sent through submission and the MX hop is counted
    once, as delivered, with one transit observation, a few seconds after its last line (the log is quiet)."""
    import signal
    import subprocess
    import sys
    import time

    from lab.traffic import smtp
    from tests.helpers import free_port, scrape, value, wait_for
    from tests.lab import mailbox

    port = free_port()
    config = tmp_path / "mailpulse.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nhttp: {{listen: '127.0.0.1:{port}'}}\n"
        f"sources:\n  - {{name: postfix, path: {mail_lab['LAB_POSTFIX_LOG']}, poll_interval: 0.2s}}\n"
        "postfix:\n  tracking: {reconcile: false, link_grace: 1s}\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: value(scrape(port), "mailpulse_log_source_up", source="postfix") == 1)
        _, reply = mailbox.send(mail_lab, smtp.SUBMISSION, "probe@remote.test", kind="tracking")
        assert reply.accepted, str(reply)

        def delivered() -> float:
            return value(scrape(port), "mailpulse_postfix_messages_total", entry="submission", outcome="delivered")

        wait_for(lambda: delivered() >= 1, timeout=60)
        time.sleep(1.5)  # nothing more may come for it (the MX copy is the same message)
        samples = scrape(port)
        assert value(samples, "mailpulse_postfix_messages_total") == 1
        assert value(samples, "mailpulse_postfix_message_transit_seconds_count", outcome="delivered") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_reconcile_with_the_real_postqueue(mail_lab: LabEnv, lab_traffic: dict[str, Any], tracked: Any) -> None:
    """At start, `postqueue -j` of the lab's Postfix: messages still queued stay, those that left go."""
    import asyncio

    feature, _, _ = tracked
    runtime = feature.tracking
    deferred = [r["queue_id"] for r in records(lab_traffic, "deferred")]
    assert deferred, lab_traffic["outcomes"]
    in_flight = {m.qid: m.host for m in runtime.tracker.inflight()}
    assert set(deferred) <= set(in_flight)
    host = in_flight[deferred[0]]
    # a message of this host that left the queue while we were not looking: its removal is not in the log read
    feed = LinePipeline(SourceStats("gone"), [feature.formats(PostfixLogsConfig(tracking=TrackingConfig(
        link_grace=0.0, reconcile=False)))[0]], threading.Lock()).feed  # fmt: skip
    feed([f"Dec  3 10:00:00 {host} postfix/smtpd[1]: GONE0000001: client=a.example[192.0.2.1]"])
    assert runtime.tracker.find(host, "GONE0000001") is not None
    runtime.apply(TrackingConfig(config_dir=mail_lab["LAB_POSTFIX_CONFIG"].split()[0], local_hosts=(host,)),
                  runtime.tracker.source)  # fmt: skip
    runtime.lock = threading.Lock()
    before = dict(runtime.metrics.evicted)
    dropped = asyncio.run(runtime.reconcile())
    assert dropped is not None
    assert dropped >= 1
    assert runtime.tracker.find(host, "GONE0000001") is None
    for qid in deferred:  # still in the lab's deferred queue
        assert runtime.tracker.find(host, qid) is not None
    assert runtime.metrics.evicted[("restart",)] - before.get(("restart",), 0) == dropped
