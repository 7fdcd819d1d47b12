"""The lab's captured rspamd log, parsed and counted, against what the lab's traffic driver says it did.

tests/fixtures/lab/ holds a real rspamd 3.4 log and the driver's JSON report from one run of
``lab/mail-lab capture-fixtures`` (docs/lab.md). Every message the driver sent is scanned once per hop
(submission side, then MX); the report lists each verdict line it found by Message-ID, with the qid and
action. These tests check that mailpulse reads the same verdicts and that its families add up to what
the driver did.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailpulse.exporter.features import scan_logs as scan
from mailpulse.parsers.rspamd import RspamdParser
from mailpulse.parsers.rspamd.events import RspamdScan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab"
LOG = FIXTURES / "rspamd.log"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def traffic() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "traffic.json").read_text())
    return data


@pytest.fixture(scope="module")
def samples() -> Samples:
    out = io.StringIO()
    assert scan([], [str(LOG)], progress=False, out=out) == 0
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out.getvalue())
        for s in family.samples
    }


@pytest.fixture(scope="module")
def scans() -> dict[str, RspamdScan]:
    """The verdicts of the traffic run by qid (every lab verdict has one)."""
    parser = RspamdParser()
    events = [parser.parse_line(line) for line in LOG.read_text().splitlines()]
    found = [e for e in events if isinstance(e, RspamdScan)]
    by_qid = {e.qid: e for e in found}
    assert len(by_qid) == len(found)
    return by_qid


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and all(dict(labels).get(k) == w for k, w in match.items()))  # fmt: skip


def verdicts(traffic: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for record in traffic["records"] for v in record["rspamd"]]


def test_every_line_is_parsed(samples: Samples) -> None:
    """Every line the lab rspamd wrote is recognised: nothing unparsed, nothing foreign."""
    assert total(samples, "mailpulse_log_lines_total", result="unparsed") == 0
    assert total(samples, "mailpulse_log_lines_total", result="foreign") == 0
    assert total(samples, "mailpulse_log_lines_total", result="parsed") == len(LOG.read_text().splitlines())


def test_one_scan_per_verdict_line(samples: Samples, traffic: dict[str, Any]) -> None:
    """Scans = the verdict lines in the log = the driver's verdicts plus the scans of the NDRs it caused."""
    lines = LOG.read_text().count("rspamd_task_write_log: id: ")
    derived = traffic["derived"]
    assert lines == derived["rspamd_verdicts"] + derived["ndr_generated"] == 111
    assert total(samples, "mailpulse_rspamd_scans_total") == lines


def test_each_verdict_of_the_driver(scans: dict[str, RspamdScan], traffic: dict[str, Any]) -> None:
    """Every verdict the driver saw, found by its qid: same action, same score, same auth symbols."""
    for v in verdicts(traffic):
        e = scans[v["qid"]]
        assert e.action == v["action"].replace(" ", "_")
        assert e.score == v["score"]
        symbols = set(v["symbols"])
        assert ("DKIM_SIGNED" in symbols) == bool(e.signed)
        assert ("R_DKIM_ALLOW" in symbols) == (e.dkim == "allow")
        assert ("R_DKIM_REJECT" in symbols) == (e.dkim == "reject")
        assert ("R_SPF_ALLOW" in symbols) == (e.spf == "allow")
        assert ("DMARC_POLICY_ALLOW" in symbols) == (e.dmarc in {"allow", "allow_with_failures"})


def test_actions_match_the_driver(samples: Samples, traffic: dict[str, Any]) -> None:
    """Ham, GTUBE and DMARC rejects, add header (Junk) and greylisting, per action; the greylisted first
    attempts are soft rejects by greylist, counted as greylist."""
    by_action = Counter(v["action"] for v in verdicts(traffic))
    ndr = traffic["derived"]["ndr_generated"]  # the NDRs' own scans: no action
    counts = traffic["counts"]
    assert total(samples, "mailpulse_rspamd_scans_total", action="no_action") == by_action["no action"] + ndr
    assert total(samples, "mailpulse_rspamd_scans_total", action="reject") == by_action["reject"]
    assert by_action["reject"] == counts["spam_rejected_submission"] + counts["spam_rejected_mx"] + counts["spoofed"]
    # junk: the GTUBE add-header pattern and X-Lab-Score both yield add header, on both hops
    assert total(samples, "mailpulse_rspamd_scans_total", action="add_header") == 2 * (
        counts["junk_gtube"] + counts["junk_score"]
    )
    assert total(samples, "mailpulse_rspamd_scans_total", action="greylist") == counts["greylisted"]
    assert total(samples, "mailpulse_rspamd_scans_total", action="greylist") == traffic["derived"]["rspamd_greylisted"]
    assert total(samples, "mailpulse_rspamd_scans_total", action="soft_reject") == 0


def test_forced_actions(samples: Samples, traffic: dict[str, Any]) -> None:
    """GTUBE (reject and add header), the enforced DMARC policy on spoofs, greylisting."""
    counts = traffic["counts"]
    forced = "mailpulse_rspamd_forced_actions_total"
    assert total(samples, forced, action="reject", module="gtube") == (
        counts["spam_rejected_submission"] + counts["spam_rejected_mx"]
    )
    assert total(samples, forced, action="add_header", module="gtube") == 2 * counts["junk_gtube"]
    assert total(samples, forced, action="reject", module="dmarc") == counts["spoofed"]
    assert total(samples, forced, action="soft_reject", module="greylist") == counts["greylisted"]


def test_dkim_signing_and_verification(samples: Samples, traffic: dict[str, Any]) -> None:
    """Signed outbound (per signature), valid DKIM at the MX, the tampered messages' broken signatures."""
    derived = traffic["derived"]
    assert total(samples, "mailpulse_rspamd_dkim_signatures_total") == derived["rspamd_dkim_signed"] == 48
    auth = "mailpulse_rspamd_auth_results_total"
    assert total(samples, auth, method="dkim", result="allow") == derived["rspamd_dkim_allow"]
    assert total(samples, auth, method="dkim", result="reject") == derived["rspamd_dkim_reject"]
    assert derived["rspamd_dkim_reject"] == traffic["counts"]["tampered"]
    # the tampered messages still pass DMARC through SPF: allow with failures
    assert total(samples, auth, method="dmarc", result="allow_with_failures") == traffic["counts"]["tampered"]
    assert total(samples, auth, method="dmarc", result="reject") == traffic["counts"]["spoofed"]
    for method in ("dkim", "spf", "dmarc", "arc"):
        assert total(samples, auth, method=method) == 111


def test_authenticated_submissions_are_signed(samples: Samples, traffic: dict[str, Any]) -> None:
    """Every SASL submission the lab accepted was signed; the GTUBE ones (rejected at submission) were not
    (GTUBE skips every other check, signing included)."""
    counts = traffic["counts"]
    accepted = counts["submitted_587"] + counts["submitted_465"]
    assert (
        total(samples, "mailpulse_rspamd_authenticated_scans_total", signed="false")
        == counts["spam_rejected_submission"] + counts["junk_gtube"]
    )
    assert total(samples, "mailpulse_rspamd_authenticated_scans_total", signed="true") >= accepted


def test_greylisting_side_lines(samples: Samples, traffic: dict[str, Any]) -> None:
    """Each greylisted message: one new record at the first attempt, one pass at the retry."""
    n = traffic["counts"]["greylisted"]
    assert total(samples, "mailpulse_rspamd_greylist_checks_total", result="new") == n
    assert total(samples, "mailpulse_rspamd_greylist_checks_total", result="pass") == n


def test_lifecycle_and_errors(samples: Samples) -> None:
    """The lab life: one start, four workers started and stopped, one stop; the offline lab's map and
    upstream (fuzzy) resolution errors and nothing else."""
    life = "mailpulse_rspamd_lifecycle_events_total"
    assert total(samples, life, event="start") == 1
    assert total(samples, life, event="stop") == 1
    assert total(samples, life, event="worker_start") == 4
    assert total(samples, life, event="worker_exit") == 4
    assert total(samples, life, event="worker_crash") == 0
    errors = {dict(labels)["class"]: v for (n, labels), v in samples.items() if n == "mailpulse_rspamd_errors_total" and v}  # fmt: skip
    assert set(errors) == {"map", "upstream"}


def test_histograms_hold_every_scan(samples: Samples) -> None:
    assert total(samples, "mailpulse_rspamd_scan_score_bucket", le="+Inf") == 111
    assert total(samples, "mailpulse_rspamd_scan_duration_seconds_count") == 111
    assert total(samples, "mailpulse_rspamd_message_size_bytes_count") == 111
