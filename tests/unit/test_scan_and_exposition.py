"""`mailpulse scan`: the exposition is valid (promtool), declared, documented, and free of PII labels."""

from __future__ import annotations

import gzip
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailpulse import features, main
from mailpulse.docsgen import main as docsgen
from mailpulse.exporter.metrics.catalog import all_families

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab"
POSTFIX_LOG = FIXTURES / "postfix.log"


def run_scan(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert 0 == main(["scan", "--no-progress", *args], out=out, err=err), err.getvalue()
    return out.getvalue()


@pytest.fixture(scope="module")
def exposition() -> str:
    return run_scan("--postfix", str(POSTFIX_LOG), "--rspamd", str(FIXTURES / "rspamd.log"))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_check_metrics_is_silent(exposition: str) -> None:
    """`promtool check metrics` prints nothing for the whole exposition."""
    proc = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert ("", "", 0) == (proc.stdout, proc.stderr, proc.returncode)


def test_every_emitted_family_is_declared_and_documented(exposition: str) -> None:
    """Nothing reaches /metrics that is not declared once and listed in docs/metrics.md."""
    declared = {f.name.removesuffix("_total") for f in all_families(features())}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for family in text_string_to_metric_families(exposition):
        assert family.name in declared, family.name
        assert f"`{family.name}" in doc, family.name


def test_metrics_reference_is_up_to_date() -> None:
    """docs/metrics.md is generated from the declarations; regenerate it with python -m mailpulse.docsgen."""
    assert 0 == docsgen(["--check"])


PII = [
    re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"),  # IPv4
    re.compile(r"[^@\s]+@[^@\s]+\.[a-z]+"),  # e-mail address
    re.compile(r"^[0-9A-F]{10,}$"),  # short queue ID
    re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[0-9A-Za-z]{12,}$"),  # long queue ID / message token
]


def test_no_label_value_looks_like_pii(exposition: str) -> None:
    """Label values are config names or enums: never addresses, IPs or queue IDs."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for name, value in sample.labels.items():
                if name in ("le", "version", "python"):
                    continue
                for pattern in PII:
                    assert not pattern.search(value), (sample.name, name, value)


def test_scan_reads_gzip_and_counts_the_same(tmp_path: Path, exposition: str) -> None:
    """Rotated, compressed logs give the same numbers as the plain file."""
    gz = tmp_path / "mail.log.1.gz"
    gz.write_bytes(gzip.compress(POSTFIX_LOG.read_bytes()))
    plain = run_scan("--postfix", str(POSTFIX_LOG))
    packed = run_scan("--postfix", str(gz))
    # times of the run itself differ between two runs; everything counted from the lines must not
    strip = re.compile(r"^mailpulse_(start_time_seconds|config_last_reload_success_timestamp_seconds"
                       r"|log_last_read_timestamp_seconds|log_lag_seconds)[ {].*$", re.M)  # fmt: skip
    assert strip.sub("", plain) == strip.sub("", packed)


def test_summary_reports_totals_and_reasons() -> None:
    """--summary is a readable report with the same counts as the metrics."""
    text = run_scan("--summary", "--postfix", str(POSTFIX_LOG))
    assert "Grand totals" in text
    assert re.search(r"\n\s+6\s+bounced\n", text)
    assert "unknown_user" in text
    assert "Per hour" in text
    assert "p50" in text


def test_scan_needs_input_and_reports_missing_files() -> None:
    """Usage errors and unreadable files give an exit status, not a traceback."""
    out, err = io.StringIO(), io.StringIO()
    assert 2 == main(["scan"], out=out, err=err)
    assert 1 == main(["scan", "--no-progress", "--postfix", "/nonexistent/mail.log"], out=out, err=err)
    assert "/nonexistent/mail.log" in err.getvalue()
