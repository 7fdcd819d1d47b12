"""Message tracking on the real multi-host lab (four Postfix hosts: submission, relay, MX with a content filter
re-injecting through ``postfix/10025/smtpd``, SRS forwarder), in both log modes, by ``scan`` and by the daemon.

The traffic driver (lab/traffic) sends every kind of message and reports each one's hop queue IDs and outcome:
through submission, the MX and the content filter to a mailbox; forwarded through the SRS host to the outside
mailbox; bounced (with its notification); force-expired; deleted with ``postsuper -d``; deferred. Each must
end once with the driver's outcome and one transit observation, and be received once (tests/tracking_checks.py).
"""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.envfile import LabEnv
from mailpulse.exporter.features.postfix import PostfixLogs
from mailpulse.exporter.scan import scan
from mailpulse.exporter.tracking.config import TrackingConfig
from tests.helpers import Samples, free_port, scrape, value, wait_for
from tests.tracking_checks import check_journeys, expected_entries, expected_outcomes, summary_messages

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 5.0  # the default link_grace


def log_slices(report: dict[str, Any], tmp: Path) -> list[Path]:
    """Each Postfix log's lines written during the traffic run, as files (one per host, or the central one)."""
    out = []
    for name, path in report["log_paths"].items():
        if name not in report["log_offsets"]:
            continue  # the same file as another name's (the submission host's is also LAB_POSTFIX_LOG)
        start = report["log_offsets"][name]
        with Path(path).open("rb") as fh:
            fh.seek(start)
            data = fh.read(report["log_end_offsets"][name] - start)
        dest = tmp / f"{name}.log"
        dest.write_bytes(data)
        out.append(dest)
    return out


def with_log_paths(env: LabEnv, report: dict[str, Any]) -> dict[str, Any]:
    """The report's tails by file: ``postfix`` is LAB_POSTFIX_LOG, ``postfix-<instance>`` that host's log."""
    paths = {"postfix": env["LAB_POSTFIX_LOG"]}
    for name in env["LAB_POSTFIX_INSTANCES"].split():
        paths[f"postfix-{name}"] = env.get(f"LAB_POSTFIX_{name.upper()}_LOG") or env["LAB_POSTFIX_LOG"]
    return {**report, "log_paths": paths}


def scan_files(paths: list[Path]) -> tuple[PostfixLogs, str]:
    feature = PostfixLogs()
    out = io.StringIO()
    assert scan([("postfix", str(p)) for p in paths], (feature,), summary=True, progress=False, out=out) == 0
    return feature, out.getvalue()


def check_scan(report: dict[str, Any], feature: PostfixLogs, text: str) -> None:
    outcomes, queued, notices = summary_messages(text)
    assert outcomes == expected_outcomes(report), text
    assert queued >= report["outcomes"]["deferred"]
    assert notices == report["derived"]["ndr_generated"]
    check_journeys(report, feature.tracking.tracker)
    entries: Counter[str] = Counter()
    for (_, entry, _), n in feature.tracking.metrics.messages.items():
        entries[entry] += int(n)
    assert entries == expected_entries(report)
    assert sum(sum(h.counts) for h in feature.tracking.metrics.transit.values()) == sum(entries.values())


@contextlib.contextmanager
def daemon(env: LabEnv, tmp: Path) -> Iterator[int]:
    """`mailpulse run` following every Postfix log of the lab (one source per host's file, read concurrently,
    or the central file), from their ends."""
    port = free_port()
    logs = env["LAB_POSTFIX_LOGS"].split()
    sources = "".join(f"  - {{name: postfix-{i}, path: {p}, poll_interval: 0.2s}}\n" for i, p in enumerate(logs))
    config = tmp / "mailpulse.yaml"
    config.write_text(f"state_dir: {tmp / 'state'}\nhttp: {{listen: '127.0.0.1:{port}'}}\nsources:\n{sources}"
                      "postfix:\n  tracking: {reconcile: false}\n")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: all(value(scrape(port), "mailpulse_log_source_up", source=f"postfix-{i}") == 1
                             for i in range(len(logs))))  # fmt: skip
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def live_run(env: LabEnv, tmp: Path) -> tuple[dict[str, Any], Samples]:
    """The daemon follows the lab's logs while the traffic driver runs; its counts once every message ended."""
    from lab.traffic import run

    with daemon(env, tmp) as port:
        report = with_log_paths(env, run(env.dir / "lab.env"))
        expected = sum(expected_entries(report).values())
        wait_for(lambda: value(scrape(port), "mailpulse_postfix_messages_total") >= expected, timeout=60)
        time.sleep(GRACE_S + 2.0)  # nothing more may come: a late count would be a message counted twice
        return report, scrape(port)


def check_daemon(report: dict[str, Any], samples: Samples) -> None:
    """Each message once, with its outcome and entry, one transit observation each; hops are not messages."""
    for outcome, n in (expected_outcomes(report) + Counter(delivered=report["derived"]["ndr_generated"])).items():
        assert value(samples, "mailpulse_postfix_messages_total", outcome=outcome) == n, outcome
    for entry, n in expected_entries(report).items():
        assert value(samples, "mailpulse_postfix_messages_total", entry=entry) == n, entry
    total = value(samples, "mailpulse_postfix_messages_total")
    assert value(samples, "mailpulse_postfix_message_transit_seconds_count") == total
    assert value(samples, "mailpulse_postfix_tracking_evicted_total") == 0
    # the deferred ones are still followed (one queue file each)
    assert value(samples, "mailpulse_postfix_tracking_inflight_messages") >= report["outcomes"]["deferred"]


# -- central mode: the session lab (one file with every host's lines) ----------------------------------------


@pytest.fixture(scope="module")
def tracked(mail_lab: LabEnv, lab_traffic: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The session lab's central log written during the driver's run, through `scan --summary`."""
    assert mail_lab["LAB_LOG_MODE"] == "central"
    report = with_log_paths(mail_lab, lab_traffic)
    feature, text = scan_files(log_slices(report, tmp_path_factory.mktemp("central")))
    return report, feature, text


def test_scan_of_the_central_log(tracked: Any) -> None:
    check_scan(*tracked)


def test_forwarded_message_is_one_journey_through_every_host(tracked: Any) -> None:
    """Submission -> MX -> content filter re-injection -> SRS host -> outside MX -> mailbox: five queue files on
    three hosts, one message, delivered, its transit from the first accept to the last delivery."""
    report, feature, _ = tracked
    tracker = feature.tracking.tracker
    (rec,) = [r for r in report["records"] if r["kind"] == "forwarded_srs"]
    root = tracker.find("mail", rec["queue_id"])
    assert root is not None
    steps = tracker.timeline(root)
    assert {s.queue_id for s in steps} == {rec["queue_id"], rec["mx_queue_id"], *rec["hop_queue_ids"]}
    assert {s.host for s in steps} == {"mail", "mx", "srs"}
    accepted = Counter((s.host, s.service) for s in steps if s.step == "accepted")
    assert accepted == Counter({("mail", "submission"): 1, ("mx", "smtpd"): 1, ("mx", "10025"): 1,
                                ("srs", "smtpd"): 1, ("mx", "outside"): 1})  # fmt: skip
    assert Counter(s.step for s in steps if s.step in ("handoff", "delivery")) == {"handoff": 4, "delivery": 1}
    (delivery,) = [s for s in steps if s.step == "delivery"]
    assert (delivery.host, delivery.service, delivery.status, delivery.provider) == ("mx", "lmtp", "sent", "local")


def test_daemon_on_the_live_central_log(mail_lab: LabEnv, tmp_path: Path) -> None:
    report, samples = live_run(mail_lab, tmp_path)
    check_daemon(report, samples)


def test_reconcile_with_the_real_postqueue(mail_lab: LabEnv, tracked: Any) -> None:
    """At start, `postqueue -j` of the lab's submission host: messages still queued stay, those that left go."""
    import asyncio

    from mailpulse.exporter.metrics.sources import SourceStats
    from mailpulse.exporter.pipeline import LinePipeline

    report, feature, _ = tracked
    runtime = feature.tracking
    deferred = [r["queue_id"] for r in report["records"] if r["outcome"] == "deferred"]
    assert deferred, report["outcomes"]
    in_flight = {m.qid: m.host for m in runtime.tracker.inflight()}
    assert set(deferred) <= set(in_flight)
    host = in_flight[deferred[0]]
    # a message of this host that left the queue while we were not looking: its removal is not in the log read
    (fmt,) = feature.formats(feature.absent())
    LinePipeline(SourceStats("gone"), [fmt], threading.Lock()).feed(
        [f"Dec  3 10:00:00 {host} postfix/smtpd[1]: GONE0000001: client=a.example[192.0.2.1]"]
    )
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


# -- per-host mode: one file per host ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def per_host_run(per_host_lab: LabEnv, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Samples]:
    """The daemon follows the four hosts' files (four sources read concurrently: a hop's receiving side can be
    read before the line that names it) while the driver runs on the per-host lab."""
    assert per_host_lab["LAB_LOG_MODE"] == "per-host"
    assert len(per_host_lab["LAB_POSTFIX_LOGS"].split()) == 4
    return live_run(per_host_lab, tmp_path_factory.mktemp("per-host-daemon"))


def test_daemon_on_per_host_logs(per_host_run: tuple[dict[str, Any], Samples]) -> None:
    check_daemon(*per_host_run)


@pytest.mark.parametrize("order", ["given", "reversed"])
def test_scan_of_per_host_files(per_host_run: tuple[dict[str, Any], Samples], tmp_path: Path, order: str) -> None:
    """`scan` of the four hosts' files, in either order: merged by time, every hop links."""
    report, _ = per_host_run
    paths = log_slices(report, tmp_path)
    assert len(paths) == 4
    if order == "reversed":
        paths.reverse()
    check_scan(report, *scan_files(paths))
