"""`mailpulse run` against the real lab: it serves /metrics while Postfix writes its log, counts what the
traffic driver did, and reads the real queue with postqueue -j."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.envfile import LabEnv
from tests.helpers import free_port, scrape, value, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]


@pytest.fixture
def daemon(mail_lab: LabEnv, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    config = tmp_path / "mailpulse.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nhttp: {{listen: '127.0.0.1:{port}'}}\n"
        "sources:\n"
        f"  - {{name: postfix, path: {mail_lab['LAB_POSTFIX_LOG']}, poll_interval: 0.2s}}\n"
        f"postfix:\n  queue: {{enabled: true, config_dir: {mail_lab['LAB_POSTFIX_CONFIG'].split()[0]}, "
        "interval: 1s}\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: value(scrape(port), "mailpulse_log_source_up", source="postfix") == 1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_live_counts_match_the_traffic_driver(mail_lab: LabEnv, daemon: int) -> None:
    """While the lab's Postfix writes its log, the daemon's counters follow the driver's traffic."""
    from lab.traffic import run

    port = daemon
    before = scrape(port)
    report: dict[str, Any] = run(mail_lab.dir / "lab.env")
    counts = report["counts"]
    statuses: Counter[str] = Counter()
    for record in report["records"]:
        statuses.update(record["postfix_statuses"])
    sasl = counts["auth_failures_587"] + counts["auth_failures_465"]

    def caught_up() -> bool:
        now = scrape(port)
        return (value(now, "postfix_smtpd_sasl_authentication_failures_total")
                - value(before, "postfix_smtpd_sasl_authentication_failures_total")) == sasl and (
            value(now, "mailpulse_postfix_deliveries_total", status="bounced")
            - value(before, "mailpulse_postfix_deliveries_total", status="bounced")) == statuses["bounced"]  # fmt: skip

    wait_for(caught_up)
    after = scrape(port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # (the lab's fake remote MX rejects with 5.1.1 too: its own rejects, not the driver's)
    assert counts["rejected_unknown_recipient"] == delta(
        "mailpulse_postfix_rejects_total", service="submission", reason="unknown_user"
    )
    assert counts["relay_denied_mx"] == delta("mailpulse_postfix_rejects_total", reason="relay_denied")
    assert statuses["deferred"] == delta("mailpulse_postfix_deliveries_total", status="deferred")
    assert counts["expired"] == delta("postfix_qmgr_messages_expired_total")
    assert 0 == delta("mailpulse_log_lines_total", result="unparsed")
    assert value(after, "mailpulse_log_lag_bytes", source="postfix") == 0


def test_queue_metrics_match_postqueue(mail_lab: LabEnv, lab_traffic: dict[str, Any], daemon: int) -> None:
    """Queue depth per queue equals what `postqueue -j` lists right now (deferred mail from the traffic)."""
    config_dir = mail_lab["LAB_POSTFIX_CONFIG"].split()[0]

    def postqueue_counts() -> Counter[str]:
        out = subprocess.run(["postqueue", "-c", config_dir, "-j"], capture_output=True, text=True, check=True,
                             timeout=30).stdout  # fmt: skip
        return Counter(json.loads(line)["queue_name"] for line in out.splitlines() if line.strip())

    assert lab_traffic["counts"]["deferred_tempfail"] > 0

    def agrees() -> bool:
        expected = postqueue_counts()
        got = scrape(daemon)
        return value(got, "mailpulse_postfix_queue_up") == 1 and all(
            value(got, "mailpulse_postfix_queue_messages", queue=q) == expected.get(q, 0)
            for q in ("active", "incoming", "deferred", "hold", "maildrop")
        )

    wait_for(agrees, timeout=30)
    got = scrape(daemon)
    if value(got, "mailpulse_postfix_queue_messages", queue="deferred"):
        assert value(got, "mailpulse_postfix_queue_oldest_message_age_seconds", queue="deferred") > 0
