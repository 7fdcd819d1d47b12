"""The journald source's cursor under damage (issue 9 A1, A6): a cursor that cannot be saved is not a
journalctl failure and counts nothing twice; a corrupt cursor file is reported and ignored instead of
making every journalctl start fail."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_journald_source import Harness, append_entries, pytestmark  # noqa: F401


@pytest.mark.parametrize("content", ["garbage;;\n", "", "s=zz;i=1", "s=" + "a" * 5000])
async def test_corrupt_cursor_is_reported_and_ignored(tmp_path: Path, content: str) -> None:
    """A cursor file that is not a journald cursor: state_corrupt once, the journal read per start_at
    (beginning here: everything), no journalctl failure loop, and a valid cursor saved afterwards."""
    journal = tmp_path / "mail.journal"
    append_entries(journal, [("postfix/qmgr", f"AAAA{i:06d}: removed") for i in range(4)], 0)
    h = Harness(tmp_path, journal)
    h.cursor.write_text(content)
    await h.run_until(lambda: h.removed() >= 4)
    await asyncio.sleep(0.3)
    assert 4 == h.removed()
    assert {"state_corrupt": 1} == h.stats.errors
    assert h.cursor.read_text().startswith("s=")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a read-only bind mount")
async def test_cursor_on_a_read_only_state_dir(tmp_path: Path) -> None:
    """The cursor cannot be saved: entries are counted once (a reload included), the condition is
    state_write (not journal_exited), and the source is down while it lasts."""
    journal = tmp_path / "mail.journal"
    append_entries(journal, [("postfix/qmgr", f"AAAA{i:06d}: removed") for i in range(30)], 0)
    state = tmp_path / "state"
    state.mkdir()
    h = Harness(tmp_path, journal)
    h.cursor = state / "journal.cursor"
    proc = subprocess.run(["mount", "--bind", str(state), str(state)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(state)], check=True)
        seen: dict[str, int] = {}

        def done() -> bool:
            if h.removed() >= 30 and h.stats.errors.get("state_write", 0) >= 1:
                seen.update(up=h.stats.up, unsaved=h.stats.unsaved_bytes)
                return True
            return False

        await h.run_until(done)  # the save is tried after a quiet second, and again at stop
        assert 30 == h.removed()
        assert {"state_write": 1} == h.stats.errors
        assert 0 == seen["up"]
        assert 0 < seen["unsaved"]
        assert not h.cursor.exists()
        # a config reload rebuilds the source: it continues from the unsaved cursor, not from the start
        await h.run_until(lambda: False, timeout=2.0)
        assert 30 == h.removed()
        assert {"state_write": 1} == h.stats.errors
    finally:
        subprocess.run(["umount", "-l", str(state)], capture_output=True, check=False)
