"""The status page's contract: what a feature hands the kernel to show at ``/`` (plain typed data, no HTML).

A feature that has something to show a person (its sources, probes, queue, later posture and reports)
implements :meth:`exporter.feature.Feature.status` and returns a :class:`StatusSection`: a title and
one or more tables of text cells, each cell optionally judged ``ok``, ``warn``, ``fail`` or ``unknown``.
The kernel renders every section with :mod:`exporter.statuspage` (which escapes every string: log and
probe data is untrusted), so no feature writes HTML and every section looks the same.

The section's overall state is the worst state of its cells (fail > warn > unknown > ok); a section
without judged cells has none.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from mailpulse.exporter.metrics.sources import SourcesAggregator


class State(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"


_SEVERITY = {State.OK: 0, State.UNKNOWN: 1, State.WARN: 2, State.FAIL: 3}


@dataclass(frozen=True)
class Cell:
    """One value shown as text; ``state`` colours it (and names it for screen readers), None: plain data."""

    text: str
    state: State | None = None


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    empty: str = "nothing to show yet"  # shown instead of an empty table
    wrap: bool = False  # cells may wrap at spaces (a wide table of short values); else only the last column


@dataclass(frozen=True)
class StatusSection:
    title: str
    tables: tuple[Table, ...] = ()
    note: str = ""  # one line under the title
    extra_state: State | None = field(default=None)  # a judgement not shown in any cell

    @property
    def state(self) -> State | None:
        states = [c.state for t in self.tables for r in t.rows for c in r if c.state is not None]
        if self.extra_state is not None:
            states.append(self.extra_state)
        return max(states, key=_SEVERITY.__getitem__) if states else None


def row(*cells: Cell | str) -> tuple[Cell, ...]:
    """A table row; plain strings become unjudged cells."""
    return tuple(c if isinstance(c, Cell) else Cell(c) for c in cells)


def age(then: float, now: float) -> str:
    """``12 s ago``, ``3 min ago``, ``2 h ago``; ``never`` for 0."""
    if not then:
        return "never"
    seconds = max(0.0, now - then)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


LAG_WARN_SECONDS = 60.0  # a source whose last line was read this much after it was written is behind


def sources_section(sources: SourcesAggregator, now: float | None = None) -> StatusSection:
    """The kernel's own section: every log source's health, lag and line counts (call under the lock)."""
    now = time.time() if now is None else now
    rows = []
    for name in sorted(sources.sources):
        s = sources.sources[name]
        problems = ", ".join(f"{kind} x{n}" for kind, n in sorted(s.errors.items()))
        health = Cell("up", State.OK) if s.up else Cell("down", State.FAIL)
        lag_state = State.WARN if s.lag_seconds > LAG_WARN_SECONDS else State.OK
        lag = Cell(f"{s.lag_seconds:.1f} s, {s.lag_bytes} bytes unread", lag_state if s.last_read else None)
        errors = Cell(str(s.error_lines), State.WARN if s.error_lines else None)
        rows.append(row(name, health, lag, age(s.last_line_ts, now), age(s.last_read, now), str(s.parsed),
                        str(s.unparsed), str(s.foreign), errors, problems or "-"))  # fmt: skip
    columns = ("source", "health", "lag", "last line written", "last line read", "parsed", "unparsed", "foreign",
               "rule errors", "problems so far")  # fmt: skip
    table = Table(columns, tuple(rows), empty="no log sources configured")
    return StatusSection("Log sources", (table,), note="Lag: how long after it was written the last line was read.")


def failed_section(title: str) -> StatusSection:
    """Shown in place of a section whose feature raised while building it (a bug; the log has it)."""
    return StatusSection(title, note="This section could not be built (a bug: see mailpulse's log).",
                         extra_state=State.UNKNOWN)  # fmt: skip


__all__ = ["Cell", "State", "StatusSection", "Table", "age", "failed_section", "row", "seconds", "sources_section"]


def worst(states: Sequence[State | None]) -> State | None:
    judged = [s for s in states if s is not None]
    return max(judged, key=_SEVERITY.__getitem__) if judged else None
