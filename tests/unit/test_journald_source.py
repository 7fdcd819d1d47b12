"""The journald source against the real journal tools: systemd-journal-remote writes a journal file,
``journalctl --follow --file`` reads it, mailpulse parses the entries and keeps its cursor across restarts.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mailpulse.exporter.features import PostfixLogs
from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.pipeline import LinePipeline
from mailpulse.exporter.sources.journald import JournalSource

JOURNAL_REMOTE = Path("/usr/lib/systemd/systemd-journal-remote")
pytestmark = pytest.mark.skipif(
    not JOURNAL_REMOTE.exists() or shutil.which("journalctl") is None,
    reason="needs journalctl and systemd-journal-remote (Debian packages systemd, systemd-journal-remote)",
)
BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")


def append_entries(journal: Path, entries: list[tuple[str, str]], start: int) -> None:
    """Write (identifier, message) entries in journal export format through systemd-journal-remote."""
    blocks = []
    for i, (ident, message) in enumerate(entries):
        blocks.append(
            f"__REALTIME_TIMESTAMP={(1795535693 + start + i) * 1_000_000}\n_BOOT_ID={BOOT_ID}\n"
            f"_HOSTNAME=mail\nSYSLOG_IDENTIFIER={ident}\n_PID={100 + i}\nMESSAGE={message}\n\n"
        )
    subprocess.run([str(JOURNAL_REMOTE), f"--output={journal}", "-"], input="".join(blocks).encode(),
                   check=True, capture_output=True, timeout=30)  # fmt: skip


class Harness:
    def __init__(self, tmp: Path, journal: Path) -> None:
        self.stats = SourceStats("journal")
        self.postfix = PostfixLogs()
        formats = self.postfix.formats(self.postfix.absent())
        self.pipeline = LinePipeline(self.stats, list(formats), threading.Lock())
        self.cursor = tmp / "journal.cursor"
        self.journal = journal

    async def run_until(self, predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        source = JournalSource(self.stats, str(self.cursor), self.pipeline.feed_fields,
                               journal_files=[str(self.journal)], start_at_end=False)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(stop))
        deadline = time.monotonic() + timeout
        try:
            while not predicate() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)

    def removed(self) -> float:
        return self.postfix.aggregator.values["postfix_qmgr_messages_removed_total"].get((), 0)


async def test_follow_parse_and_resume_from_cursor(tmp_path: Path) -> None:
    """Entries are parsed as Postfix lines, foreign identifiers counted as foreign, and a restart resumes
    after the saved cursor: nothing lost, nothing read twice."""
    journal = tmp_path / "mail.journal"
    append_entries(journal, [("postfix/qmgr", f"AAAA{i:06d}: removed") for i in range(5)], 0)
    h = Harness(tmp_path, journal)

    async def more_while_running() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(append_entries, journal, [("postfix/qmgr", "BBBB000001: removed"),
                                                          ("dovecot", "imap-login: Login: user=<a@b>")], 10)  # fmt: skip

    writer = asyncio.create_task(more_while_running())
    await h.run_until(lambda: h.removed() >= 6 and h.stats.foreign >= 1)
    await writer
    assert 6 == h.removed()
    assert (6, 0, 1) == (h.stats.parsed, h.stats.unparsed, h.stats.foreign)
    assert h.stats.last_line_ts == pytest.approx(1795535693 + 11)
    assert h.cursor.read_text().startswith("s=")

    # down: two more entries are written; a new source starts after the cursor
    append_entries(journal, [("postfix/submission/smtpd", "connect from x[1.2.3.4]"),
                             ("postfix/qmgr", "CCCC000001: removed")], 20)  # fmt: skip
    h2 = Harness(tmp_path, journal)
    await h2.run_until(lambda: h2.removed() >= 1 and h2.stats.parsed >= 2)
    await asyncio.sleep(0.5)
    assert (2, 0, 0) == (h2.stats.parsed, h2.stats.unparsed, h2.stats.foreign)
    assert {("submission",): 1} == h2.postfix.aggregator.values["mailpulse_postfix_smtpd_connections_total"]


async def test_journalctl_exiting_is_counted_and_retried(tmp_path: Path) -> None:
    """A journalctl that cannot run is a metric and a retry, never a crash."""
    stats = SourceStats("broken")
    source = JournalSource(stats, str(tmp_path / "c"), lambda *_: None, journalctl=str(tmp_path / "no-journalctl"))
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert stats.up == 0
    assert stats.errors.get("journal_exited", 0) >= 1
