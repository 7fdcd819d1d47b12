"""mailpulse's rspamd pipeline on a live lab: the traffic driver sends its mail, then ``exporter.scan.scan``
reads what the lab's rspamd wrote meanwhile, and the families must add up to what the driver did.

The same checks as tests/unit/test_rspamd_lab_fixture.py, on a fresh log of this machine's rspamd instead
of the captured one: a new rspamd version or lab change shows up here first.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.envfile import LabEnv
from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.features import scan_logs as scan
from mailpulse.parsers.rspamd import RspamdParser
from mailpulse.parsers.rspamd.events import RspamdScan

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def window(mail_lab: LabEnv, lab_traffic: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bytes the lab's rspamd wrote during the traffic run (other tests may have sent mail since)."""
    start, end = lab_traffic["log_offsets"]["rspamd"], lab_traffic["log_end_offsets"]["rspamd"]
    with Path(mail_lab["LAB_RSPAMD_LOG"]).open("rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    path = tmp_path_factory.mktemp("rspamd") / "rspamd.log"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def samples(window: Path, mail_lab: LabEnv) -> Samples:
    out = io.StringIO()
    config = RspamdConfig(signing_domains=(mail_lab["LAB_DKIM_DOMAIN"],))
    assert scan([], [str(window)], progress=False, out=out, rspamd_config=config) == 0
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out.getvalue())
        for s in family.samples
    }


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and all(dict(labels).get(k) == w for k, w in match.items()))  # fmt: skip


def verdicts(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for record in report["records"] for v in record["rspamd"]]


def test_the_whole_live_log_is_read(mail_lab: LabEnv, lab_traffic: dict[str, Any]) -> None:
    """Every line the lab's rspamd wrote since it started (start-up, traffic, other tests): none unparsed."""
    parser = RspamdParser()
    lines = Path(mail_lab["LAB_RSPAMD_LOG"]).read_text(errors="replace").splitlines()
    results = Counter(type(parser.parse_line(line)).__name__ for line in lines)
    assert results["Unparsed"] == 0, results
    assert results["Foreign"] == 0, results
    task_lines = sum("rspamd_task_write_log: " in line for line in lines)
    assert results["RspamdScan"] == task_lines > 0


def test_scans_match_the_driver(samples: Samples, window: Path, lab_traffic: dict[str, Any]) -> None:
    """One scan per verdict line; the driver's verdicts and the scans of the NDRs it caused (those that
    crossed the MX: an NDR the MX itself generates goes straight to LMTP)."""
    derived = lab_traffic["derived"]
    lines = window.read_text(errors="replace").count("rspamd_task_write_log: id: ")
    assert lines == derived["rspamd_verdicts"] + derived["ndr_scanned"]
    assert total(samples, "mailpulse_rspamd_scans_total") == lines
    assert total(samples, "mailpulse_log_lines_total", result="unparsed") == 0


def test_each_verdict_of_the_driver(window: Path, lab_traffic: dict[str, Any]) -> None:
    """Every verdict the driver saw, by qid: same action and score, same DKIM and SPF outcome."""
    parser = RspamdParser()
    events = (parser.parse_line(line) for line in window.read_text(errors="replace").splitlines())
    by_qid = {e.qid: e for e in events if isinstance(e, RspamdScan)}
    for v in verdicts(lab_traffic):
        e = by_qid[v["qid"]]
        assert (e.action, e.score) == (v["action"].replace(" ", "_"), v["score"])
        assert ("DKIM_SIGNED" in v["symbols"]) == bool(e.signed)
        assert ("R_DKIM_ALLOW" in v["symbols"]) == (e.dkim == "allow")
        assert ("R_DKIM_REJECT" in v["symbols"]) == (e.dkim == "reject")
        assert ("R_SPF_ALLOW" in v["symbols"]) == (e.spf == "allow")


def test_actions(samples: Samples, lab_traffic: dict[str, Any]) -> None:
    """Ham, GTUBE and DMARC rejects, add header for Junk on both hops, greylisting apart from soft rejects."""
    counts, derived = lab_traffic["counts"], lab_traffic["derived"]
    by_action = Counter(v["action"] for v in verdicts(lab_traffic))
    scans = "mailpulse_rspamd_scans_total"
    assert total(samples, scans, action="no_action") == by_action["no action"] + derived["ndr_scanned"]
    assert total(samples, scans, action="reject") == (
        counts["spam_rejected_submission"] + counts["spam_rejected_mx"] + counts["spoofed"]
    )
    assert total(samples, scans, action="add_header") == 2 * (counts["junk_gtube"] + counts["junk_score"])
    assert total(samples, scans, action="greylist") == counts["greylisted"] == derived["rspamd_greylisted"]
    assert total(samples, scans, action="soft_reject") == 0
    forced = "mailpulse_rspamd_forced_actions_total"
    assert total(samples, forced, module="gtube", action="reject") == (
        counts["spam_rejected_submission"] + counts["spam_rejected_mx"]
    )
    assert total(samples, forced, module="dmarc", action="reject") == counts["spoofed"]
    assert total(samples, forced, module="greylist", action="soft_reject") == counts["greylisted"]


def test_dkim(samples: Samples, lab_traffic: dict[str, Any], mail_lab: LabEnv) -> None:
    """Signed outbound under the lab's signing domain; valid signatures at the MX; the tampered ones broken."""
    derived = lab_traffic["derived"]
    domain = mail_lab["LAB_DKIM_DOMAIN"]
    assert total(samples, "mailpulse_rspamd_dkim_signatures_total", domain=domain) == derived["rspamd_dkim_signed"]
    assert total(samples, "mailpulse_rspamd_dkim_signatures_total", domain="other") == 0
    auth = "mailpulse_rspamd_auth_results_total"
    assert total(samples, auth, method="dkim", result="allow") == derived["rspamd_dkim_allow"]
    assert total(samples, auth, method="dkim", result="reject") == derived["rspamd_dkim_reject"]
    assert derived["rspamd_dkim_reject"] == lab_traffic["counts"]["tampered"]
    assert total(samples, auth, method="dmarc", result="reject") == lab_traffic["counts"]["spoofed"]


def test_greylisting(samples: Samples, lab_traffic: dict[str, Any]) -> None:
    """Each greylisted message: a new record at the first attempt, a pass at the retry."""
    n = lab_traffic["counts"]["greylisted"]
    assert total(samples, "mailpulse_rspamd_greylist_checks_total", result="new") == n
    assert total(samples, "mailpulse_rspamd_greylist_checks_total", result="pass") == n
