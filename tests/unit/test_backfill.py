"""`mailpulse scan --openmetrics`: history at the log's own times that promtool turns into TSDB blocks, and a
real Prometheus started on those blocks answers range queries with the scan's counts.

The log is the lab's recorded Postfix log (tests/fixtures/lab/postfix.log) spread over three hours of
log time (08:xx, 10:xx, 11:xx on 2026-11-20, RFC 3339 stamps as rsyslog writes them); the expected
counts at each snapshot come from a plain `mailpulse scan` of the lines before it, not from the code
under test.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailpulse import main
from tests.helpers import free_port

LAB_LOG = Path(__file__).resolve().parent.parent / "fixtures" / "lab" / "postfix.log"
DAY = "2026-11-20"
HOURS = (8, 10, 11)  # each third of the lab log goes into one of these hours
BINARIES = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="promtool and prometheus (Debian package prometheus) missing",
)


def spread_log() -> list[str]:
    """The lab log's lines in time order, a third in each hour of HOURS, 3 s apart."""
    lines = LAB_LOG.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        third = i * len(HOURS) // len(lines)
        offset = 3 * (i - -(-third * len(lines) // len(HOURS)))  # seconds since the first line of its third
        stamp = datetime.fromtimestamp(epoch(HOURS[third]) + offset, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        out.append(f"{stamp} {line[16:]}")  # "Nov 24 16:58:17 " is 16 characters; keep host, program, message
    return out


def epoch(hour: int, minute: int = 0) -> float:
    return datetime.fromisoformat(f"{DAY}T{hour:02d}:{minute:02d}:00+00:00").timestamp()


def run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert 0 == main(["scan", "--no-progress", *args], out=out, err=err), err.getvalue()
    return out.getvalue()


def plain_value(path: Path, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(run("--postfix", str(path))):
        for s in family.samples:
            if s.name == name and labels.items() <= s.labels.items():
                return float(s.value)
    raise AssertionError(f"{name} not in the plain scan")


SAMPLE_RE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+) (\S+)$")


def samples(text: str) -> list[tuple[str, dict[str, str], float, float]]:
    """(name, labels, value, timestamp) of every sample line. prometheus_client's OpenMetrics parser refuses
    a histogram with points at several timestamps (promtool, the real reader, takes them), and its
    Prometheus-text parser reads timestamps as milliseconds: hence this small reader."""
    out = []
    for line in text.splitlines():
        m = SAMPLE_RE.match(line)
        if m and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m[2] or ""))
            out.append((m[1], labels, float(m[3]), float(m[4])))
    return out


def points(text: str, name: str, **labels: str) -> list[tuple[float, float]]:
    return [(ts, v) for n, ls, v, ts in samples(text) if n == name and labels.items() <= ls.items()]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The spread log, and its prefixes up to each snapshot (before 09:00, before 11:00, all)."""
    work = tmp_path_factory.mktemp("backfill")
    lines = spread_log()
    whole = work / "mail.log"
    whole.write_text("\n".join(lines) + "\n")
    prefixes = []
    for stop in ("09", "11"):
        p = work / f"before-{stop}.log"
        p.write_text("\n".join(line for line in lines if line[11:13] < stop) + "\n")
        prefixes.append(p)
    return whole, [*prefixes, whole]


def test_snapshots_at_step_boundaries_and_the_last_line(logs: tuple[Path, list[Path]]) -> None:
    """One point per hour boundary the log crosses (09:00 after the 08:xx lines, 11:00 after the 10:xx ones) and
    one at the last line, each with the counts a plain scan of the lines before it prints; `# EOF` ends it."""
    whole, prefixes = logs
    text = run("--openmetrics", "--postfix", str(whole))
    assert text.endswith("# EOF\n")
    last_line = datetime.fromisoformat(spread_log()[-1].split(" ", 1)[0]).timestamp()
    expected = [(t, plain_value(p, "postfix_smtpd_connects_total"))
                for t, p in zip((epoch(9), epoch(11), last_line), prefixes, strict=True)]  # fmt: skip
    assert expected == points(text, "postfix_smtpd_connects_total")
    assert len({v for _, v in expected}) == 3, "the log's thirds must differ, or the test shows no shape"


def test_rotated_files_given_newest_first_are_read_oldest_first(logs: tuple[Path, list[Path]],
                                                                tmp_path: Path) -> None:  # fmt: skip
    """`scan --openmetrics mail.log mail.log.1.gz` (the usual order) builds the same history as one file."""
    whole, _ = logs
    lines = whole.read_text().splitlines(keepends=True)
    half = next(i for i, line in enumerate(lines) if line[11:13] == "10")  # rotated at an hour boundary
    (tmp_path / "mail.log").write_text("".join(lines[half:]))
    with gzip.open(tmp_path / "mail.log.1.gz", "wt") as fh:
        fh.write("".join(lines[:half]))
    rotated = run("--openmetrics", "--postfix", str(tmp_path / "mail.log"), str(tmp_path / "mail.log.1.gz"))
    assert points(run("--openmetrics", "--postfix", str(whole)), "postfix_smtpd_connects_total") == points(
        rotated, "postfix_smtpd_connects_total")  # fmt: skip


def test_backfill_only_holds_what_the_logs_tell(logs: tuple[Path, list[Path]]) -> None:
    """No families of a log kind not given (no rspamd zeros), no scan-time gauges (lag, up, read times), no
    self metrics; --label lands on every sample."""
    whole, _ = logs
    text = run("--openmetrics", "--step", "30m", "--label", "job=mailpulse", "--label", "instance=mx1:9947",
               "--postfix", str(whole))  # fmt: skip
    names = {name.removesuffix("_total") for name, *_ in samples(text)}
    assert not {n for n in names if n.startswith(("rspamd_", "mailpulse_rspamd", "mailpulse_build", "mailpulse_start"))}
    assert not {"mailpulse_log_lag_seconds", "mailpulse_log_source_up", "mailpulse_log_read_bytes"} & names
    assert {"postfix_smtpd_connects", "mailpulse_log_lines"} <= names
    assert text.count("\n") > 3 * len(names)
    for name, labels, _, ts in samples(text):
        assert {"job": "mailpulse", "instance": "mx1:9947"}.items() <= labels.items(), name
        assert ts > 0, name
    assert all(line.startswith("#") or SAMPLE_RE.match(line) for line in text.splitlines())


@pytest.mark.parametrize(("args", "problem"), [
    (["--step", "10s"], "--step: at least 60s"),
    (["--step", "soon"], "--step: not a duration"),
    (["--label", "bad label=x"], "expected NAME=VALUE"),
    (["--label", "__name__=x"], "reserved"),
    (["--summary"], "exclude each other"),
])  # fmt: skip
def test_bad_backfill_options_are_named(logs: tuple[Path, list[Path]], args: list[str], problem: str) -> None:
    """A bad --step or --label, or --summary with it, is refused with exit status 2 and names the option."""
    whole, _ = logs
    out, err = io.StringIO(), io.StringIO()
    assert 2 == main(["scan", "--no-progress", "--openmetrics", *args, "--postfix", str(whole)], out=out, err=err)
    assert problem in err.getvalue()


@BINARIES
def test_promtool_blocks_answer_range_queries_in_prometheus(logs: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """promtool tsdb create-blocks-from openmetrics accepts the output; Prometheus started on that TSDB returns,
    over a range query across the log's hours, the counts of the plain scans at each snapshot."""
    whole, prefixes = logs
    (tmp_path / "backfill.om").write_text(run("--openmetrics", "--label", "job=mailpulse", "--postfix", str(whole)))
    tsdb = tmp_path / "tsdb"
    done = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(tmp_path / "backfill.om"),
                           str(tsdb)], check=False, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert 0 == done.returncode, done.stderr
    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        query = {"query": 'postfix_smtpd_connects_total{job="mailpulse"}', "start": str(epoch(8)),
                 "end": str(epoch(12)), "step": "60"}  # fmt: skip
        url = f"http://127.0.0.1:{port}/api/v1/query_range?{urllib.parse.urlencode(query)}"
        deadline, result = time.monotonic() + 60, None
        while time.monotonic() < deadline and prom.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
                    result = json.load(resp)
                break
            except OSError:
                time.sleep(0.5)
        assert result is not None, (tmp_path / "prometheus.log").read_text()[-2000:]
        series = result["data"]["result"]
        assert 1 == len(series), series
        values = [float(v) for _, v in series[0]["values"]]
        distinct = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
        assert [plain_value(p, "postfix_smtpd_connects_total") for p in prefixes] == distinct
        # the shape: nothing before 09:00 (no snapshot yet), the first third's count from 09:00 on
        first_time = float(series[0]["values"][0][0])
        assert epoch(9) == first_time
    finally:
        prom.terminate()
        prom.wait(timeout=30)
