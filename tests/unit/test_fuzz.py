"""The fuzz run of issue 9, small: 50,000 hostile lines (fixed seed) through `mailpulse scan` and through the
running daemon, scraped while it reads. bench/fuzz.py is the script; its 10^6-line figures are in
docs/testing.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINES = 50_000


def test_fuzz_scan_and_daemon(tmp_path: Path) -> None:
    """0 crashes, 0 stalls, every line accounted in both, the same counts in both, every scrape answered."""
    out = tmp_path / "fuzz.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--lines", str(LINES), "--seed", "9",
         "--scrape-interval", "0.1", "--stall-after", "20", "--timeout", "60", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    for phase in ("scan", "daemon"):
        figures = result[phase]
        assert [] == figures["problems"]
        assert (0, 0, 0) == (figures["exit_status"], figures["crashes"], figures["stalls"])
        assert {"postfix": LINES // 2, "rspamd": LINES // 2} == figures["accounted"]
        for counts in figures["counts"].values():
            assert counts["parsed"] > 0
            assert counts["unparsed"] > 0
    daemon = result["daemon"]
    assert daemon["scrapes"] >= 3
    assert 0 == daemon["scrapes_failed"]
    assert result["scan"]["counts"] == daemon["counts"]
