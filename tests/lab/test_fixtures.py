"""The captured lab logs in tests/fixtures/lab stay consistent with their traffic report (no lab
needed): other engineers' parser tests rely on both."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lab"
LOGS = {"postfix": "postfix.log", "rspamd": "rspamd.log", "dovecot": "dovecot.log"}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "traffic.json").read_text())
    return data


def test_manifest_matches_the_report(report: dict[str, Any]) -> None:
    """MANIFEST.json repeats the report's counts and names every log with its line count."""
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())
    assert manifest["counts"] == report["counts"]
    for name in LOGS.values():
        assert manifest["files"][name] == len((FIXTURES / name).read_text().splitlines())


def test_rich_traffic_with_a_few_of_each_kind(report: dict[str, Any]) -> None:
    """Every kind of traffic occurs at least three times and nothing went unexpectedly."""
    assert len(report["counts"]) >= 20
    assert min(report["counts"].values()) >= 3
    assert report["problems"] == []


@pytest.mark.parametrize("log", list(LOGS))
def test_offsets_point_at_line_starts(report: dict[str, Any], log: str) -> None:
    """The report's log offsets point at the first line written during the traffic run."""
    data = (FIXTURES / LOGS[log]).read_bytes()
    offset, end = report["log_offsets"][log], report["log_end_offsets"][log]
    assert 0 < offset < end <= len(data)
    assert data[offset - 1 : offset] == b"\n"
    assert data[end - 1 : end] == b"\n"


def test_every_queue_id_of_the_report_is_in_the_postfix_log(report: dict[str, Any]) -> None:
    """Queue IDs (submission side and MX side) from the report occur in the captured Postfix log."""
    text = (FIXTURES / "postfix.log").read_text()
    for rec in report["records"]:
        for qid in (rec["queue_id"], rec["mx_queue_id"], rec["ndr_queue_id"]):
            if qid:
                assert re.search(rf" {qid}: ", text), (rec["kind"], qid)


def test_no_temporary_paths_leak(report: dict[str, Any]) -> None:
    """The temporary lab directory was replaced by /srv/mail-lab in every file."""
    for name in [*LOGS.values(), "traffic.json"]:
        assert "/tmp/mplab" not in (FIXTURES / name).read_text()
    assert report["lab_dir"] == "/srv/mail-lab"


MULTIHOST = FIXTURES / "multihost"
HOST_LOGS = {"submit.log": {"mail", "fake-remote"}, "relay.log": {"relay"}, "mx.log": {"mx"}, "srs.log": {"srs"}}


def test_multihost_logs_carry_their_hosts_and_every_hop() -> None:
    """tests/fixtures/lab/multihost (capture-fixtures --multihost): each per-host log has only its host's
    names, every queue ID of the per-host report (each hop: submission, MX, re-injection, SRS, outside MX)
    is in one of them, and the central log holds all four hosts."""
    manifest = json.loads((MULTIHOST / "MANIFEST.json").read_text())
    texts = {name: (MULTIHOST / name).read_text() for name in HOST_LOGS}
    for name, hosts in HOST_LOGS.items():
        assert {line.split()[3] for line in texts[name].splitlines()} == hosts, name
        assert manifest["files"][name] == len(texts[name].splitlines())
    everything = "".join(texts.values())
    report = json.loads((MULTIHOST / "per-host.json").read_text())
    assert report["problems"] == []
    forwarded = [r for r in report["records"] if r["kind"] == "forwarded_srs"]
    assert forwarded
    assert all(len(r["hop_queue_ids"]) == 3 for r in forwarded)  # re-injected, SRS host, outside MX
    for rec in report["records"]:
        for qid in (rec["queue_id"], rec["mx_queue_id"], rec["ndr_queue_id"], *rec["hop_queue_ids"]):
            if qid:
                assert re.search(rf" {qid}: ", everything), (rec["kind"], qid)
    assert "postfix/10025/smtpd[" in texts["mx.log"]
    assert "from=<SRS0=" in texts["srs.log"]
    central = (MULTIHOST / "central.log").read_text()
    assert {"mail", "relay", "mx", "srs"} <= {line.split()[3] for line in central.splitlines()}
    assert "/tmp/mplab" not in everything + central
