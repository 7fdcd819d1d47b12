"""`mailpulse run` tailing the poison lines of issue 9 (A2-A4): /metrics answers every scrape, every line is
counted once, the sources keep reading after them, and a repeat count of 10^9 does not hold the daemon."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import free_port, scrape, value, wait_for
from tests.unit.test_poison_lines import POSTFIX_POISON, RSPAMD_POISON, rspamd_verdict

ROOT = Path(__file__).resolve().parents[2]
REMOVED = "Nov 24 16:58:17 mail postfix/qmgr[1]: 4AA091855DA0: removed"


def test_daemon_survives_poison_lines(tmp_path: Path) -> None:
    """Poison lines between good ones, twice: both sources count everything, nothing stalls or breaks."""
    port = free_port()
    mail, rspamd = tmp_path / "mail.log", tmp_path / "rspamd.log"
    mail.write_text("")
    rspamd.write_text("")
    config = tmp_path / "mailpulse.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nhttp: {{listen: '127.0.0.1:{port}'}}\nlog: {{format: json}}\nsources:\n"
        f"  - {{name: mail, path: {mail}, poll_interval: 0.1s}}\n"
        f"  - {{name: rspamd, format: rspamd, path: {rspamd}, poll_interval: 0.1s}}\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: value(scrape(port), "mailpulse_log_source_up") == 2)
        for round_ in (1, 2):
            with mail.open("a") as fh:
                fh.write("".join(f"{line}\n{REMOVED}\n" for line in POSTFIX_POISON))
            with rspamd.open("a") as fh:
                fh.write("".join(f"{line}\n{rspamd_verdict()}\n" for line in RSPAMD_POISON))
            n_mail, n_rspamd = 2 * len(POSTFIX_POISON) * round_, 2 * len(RSPAMD_POISON) * round_
            wait_for(lambda n=n_mail, r=n_rspamd: (  # type: ignore[misc]
                value(scrape(port), "mailpulse_log_lines_total", source="mail") == n
                and value(scrape(port), "mailpulse_log_lines_total", source="rspamd") == r), timeout=20)  # fmt: skip
        samples = scrape(port)
        assert len(POSTFIX_POISON) * 2 == value(samples, "postfix_qmgr_messages_removed_total")
        assert len(RSPAMD_POISON) * 2 == value(samples, "mailpulse_rspamd_scans_total", action="no_action")
        assert 0 == value(samples, "mailpulse_log_lines_total", result="error")
        assert 0 == value(samples, "mailpulse_collect_errors_total")
        assert 2 == value(samples, "mailpulse_log_source_up")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert 0 == proc.returncode, out.decode(errors="replace")
    assert b"Traceback" not in out
