"""Health of log sources and line accounting, shared by every source and parser."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import Metric

from mailpulse.exporter.metrics.family import Family, Kind, Labels, bounded, enum, label_sets, named
from mailpulse.exporter.metrics.store import CappedLabels

C, G = Kind.COUNTER, Kind.GAUGE

LINES = Family(
    "mailpulse_log_lines_total",
    "Log lines read, by source and result: parsed, unparsed (our format, unknown shape), foreign "
    "(another program's line in the same log) or error (a line that made one of mailpulse's rules fail: "
    "a bug, counted, logged and skipped; see mailpulse_log_rule_errors_total).",
    C, ("source", "result"),
)  # fmt: skip
RULE_ERRORS = Family(
    "mailpulse_log_rule_errors_total",
    "Lines that made a parser rule or an aggregator's handler raise, by source and rule (module.function in "
    "mailpulse's code; at most 20 rules per source, then 'other'). Any increase is a bug to report.",
    C, ("source", "rule"),
)  # fmt: skip
UP = Family(
    "mailpulse_log_source_up",
    "1 if the source could be read and its position saved at its last poll; 0 if it is missing or unreadable, "
    "or its position cannot be saved (see mailpulse_log_source_errors_total).",
    G, ("source",),
)  # fmt: skip
BYTES = Family("mailpulse_log_read_bytes_total", "Bytes read from the source.", C, ("source",))
LAST_LINE = Family(
    "mailpulse_log_last_line_timestamp_seconds",
    "Timestamp written in the last line read (0 until a line with a readable timestamp is read).",
    G, ("source",),
)  # fmt: skip
LAST_READ = Family(
    "mailpulse_log_last_read_timestamp_seconds", "When mailpulse last read a line from the source.", G, ("source",)
)
LAG_BYTES = Family(
    "mailpulse_log_lag_bytes", "Bytes written to the source but not yet read, at the last poll.", G, ("source",)
)
LAG_SECONDS = Family(
    "mailpulse_log_lag_seconds",
    "Seconds between the timestamp of the last line read and the moment it was read.",
    G,
    ("source",),
)
ERRORS = Family(
    "mailpulse_log_source_errors_total",
    "Problems with a source, by kind: missing, unreadable, vanished, read_error, journal_exited; state_write "
    "(its position cannot be saved), state_corrupt (its saved position was unusable and was re-synchronised).",
    C, ("source", "kind"),
)  # fmt: skip
ROTATIONS = Family(
    "mailpulse_log_rotations_total",
    "Log rotations followed, by kind: rename, rename_gzip (renamed and compressed), truncate (same inode, content "
    "restarted: copytruncate), replaced (a new file, the old one not found).",
    C, ("source", "kind"),
)  # fmt: skip
LOST = Family(
    "mailpulse_log_lost_bytes_total",
    "Bytes certainly lost: known to be in a file that was rotated or replaced before they were read, and not found "
    "under any rotated name (a lower bound).",
    C, ("source",),
)  # fmt: skip
UNSAVED = Family(
    "mailpulse_log_unsaved_bytes",
    "Bytes counted since the source's position was last saved: what a restart would read again while the state "
    "dir cannot be written (0 normally).",
    G, ("source",),
)  # fmt: skip

FAMILIES = (LINES, RULE_ERRORS, UP, BYTES, LAST_LINE, LAST_READ, LAG_BYTES, LAG_SECONDS, ERRORS, ROTATIONS, LOST,
            UNSAVED)  # fmt: skip
RESULTS = ("parsed", "unparsed", "foreign", "error")
MAX_RULES = 20  # distinct rule labels per source; rule names come from the code, this is a safety net
SOURCE_ERRORS = ("missing", "unreadable", "vanished", "read_error", "journal_exited", "state_write", "state_corrupt")
ROTATION_KINDS = ("rename", "rename_gzip", "truncate", "replaced")
LABEL_SETS = label_sets(
    FAMILIES,
    {
        "source": named("sources[].name"),
        "result": enum(RESULTS),
        "rule": bounded(MAX_RULES, "mailpulse's parser rules and handlers (module.function)", "other"),
    },
    {(ERRORS, "kind"): enum(SOURCE_ERRORS), (ROTATIONS, "kind"): enum(ROTATION_KINDS)},
)


@dataclass
class SourceStats:
    """Numbers about one source; updated by the source and the pipeline, read at scrape time."""

    name: str
    parsed: int = 0
    unparsed: int = 0
    foreign: int = 0
    error_lines: int = 0
    bytes_read: int = 0
    up: int = 0
    last_line_ts: float = 0.0
    last_read: float = 0.0
    lag_bytes: int = 0
    lag_seconds: float = 0.0
    lost_bytes: int = 0
    unsaved_bytes: int = 0

    def __post_init__(self) -> None:
        self.errors: dict[str, int] = {}
        self.rotations: dict[str, int] = {}
        self.rule_errors: dict[str, int] = {}
        self._rules = CappedLabels(MAX_RULES)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def rule_error(self, rule: str) -> None:
        rule = self._rules(rule)
        self.rule_errors[rule] = self.rule_errors.get(rule, 0) + 1

    def rotated(self, kind: str) -> None:
        self.rotations[kind] = self.rotations.get(kind, 0) + 1


class SourcesAggregator:
    """All sources' stats, as families."""

    families = FAMILIES

    def __init__(self) -> None:
        self.sources: dict[str, SourceStats] = {}

    def stats(self, name: str) -> SourceStats:
        stats = self.sources.get(name)
        if stats is None:
            stats = self.sources[name] = SourceStats(name)
        return stats

    def keep(self, names: set[str]) -> None:
        """After a reload: sources that left the config disappear from /metrics (kept ones go on)."""
        for name in set(self.sources) - names:
            del self.sources[name]

    def collect(self) -> Iterator[Metric]:
        lines: dict[Labels, float] = {}
        per_source: dict[Family, dict[Labels, float]] = {f: {} for f in FAMILIES if f is not LINES}
        for s in self.sources.values():
            key = (s.name,)
            lines[(s.name, "parsed")] = s.parsed
            lines[(s.name, "unparsed")] = s.unparsed
            lines[(s.name, "foreign")] = s.foreign
            lines[(s.name, "error")] = s.error_lines
            per_source[UP][key] = s.up
            per_source[BYTES][key] = s.bytes_read
            per_source[LAST_LINE][key] = s.last_line_ts
            per_source[LAST_READ][key] = s.last_read
            per_source[LAG_BYTES][key] = s.lag_bytes
            per_source[LAG_SECONDS][key] = s.lag_seconds
            per_source[LOST][key] = s.lost_bytes
            per_source[UNSAVED][key] = s.unsaved_bytes
            for kind, n in s.errors.items():
                per_source[ERRORS][(s.name, kind)] = n
            for kind, n in s.rotations.items():
                per_source[ROTATIONS][(s.name, kind)] = n
            for rule, n in s.rule_errors.items():
                per_source[RULE_ERRORS][(s.name, rule)] = n
        yield LINES.from_values(lines)
        for family, values in per_source.items():
            yield family.from_values(values)
