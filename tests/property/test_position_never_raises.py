"""Property: any bytes in a state file are a position or a reported corruption, and a poll over them never
raises, never loses the lines written after it, and leaves a valid state file behind (issue 9 A6)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.sources.files import FileSource
from mailpulse.exporter.sources.position import CorruptState, Position, format_position, load_position, parse_position

LINE = "Nov 24 16:58:17 mail postfix/qmgr[1]: 3mPVKl0Mhjz7sXv: removed"
VALID = format_position(Position(1234567, 52311, 52840, b"Nov 24 16:58:17 mail"))

PIECES = [*VALID.splitlines(), "1", "-1", "²", "9" * 30, "", "head zz", "inode 1 2"]
# mutations of real state files find more edge cases than random bytes alone
state_text = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.lists(st.sampled_from(PIECES), max_size=7).map("\n".join),
)


@settings(max_examples=400, deadline=None)
@given(state_text)
def test_parse_position_never_raises_anything_else(text: str) -> None:
    """parse_position returns a sane Position or raises CorruptState, nothing else."""
    try:
        pos = parse_position(text)
    except CorruptState:
        return
    assert 0 <= pos.offset <= max(pos.size, pos.offset) < 1 << 63
    assert 0 <= pos.inode < 1 << 63


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=300), state_text.map(str.encode)))
def test_a_poll_over_any_state_file(content: bytes) -> None:
    """Whatever the state file holds, a poll neither raises nor misses a line written after it."""
    with tempfile.TemporaryDirectory() as tmp:
        log, offset = Path(tmp) / "mail.log", Path(tmp) / "mail.offset"
        log.write_text(LINE + "\n")
        offset.write_bytes(content)
        lines: list[str] = []
        stats = SourceStats("p")
        src = FileSource(stats, str(log), str(offset), lines.extend, start_at_end=True)
        src.poll()
        with log.open("a") as fh:
            fh.write("NEW\n")
        src.poll()
        assert lines[-1:] == ["NEW"]
        assert stats.up == 1
        assert set(stats.errors) <= {"state_corrupt"}
        assert load_position(str(offset)) is not None
