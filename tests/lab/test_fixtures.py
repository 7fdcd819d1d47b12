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
