"""The reports section of the status page: where reports come from, what they said, what was refused.

Everything but the sources' state comes from the report families' numbers (:class:`ReportMetrics`), so
the page shows what the metrics hold: totals since mailpulse started (counters are not kept across
restarts), and per reporter the end of the newest report's period. DMARC messages are split by source
class (``authorized``: from `reports.networks`; ``forwarder``; ``unknown``) and by DMARC result (pass: the
aligned DKIM or SPF result passed). Tables are bounded: reporters are named from the catalogue or the
config and domains are capped by the metrics; rows beyond :data:`MAX_ROWS` are left out, the busiest kept.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailpulse.exporter.metrics.store import Counts
from mailpulse.exporter.status import Cell, State, StatusSection, Table, age, row
from mailpulse.probes.reports.metrics import (
    COMPLAINTS,
    DMARC_MESSAGES,
    DUPLICATES,
    INGESTED,
    MAILBOX_ERRORS,
    MAILS,
    PERIOD_END,
    QUIRK_COUNT,
    REJECTED,
    SOURCES,
    TLS_SESSIONS,
    ReportMetrics,
)

MAX_ROWS = 50


@dataclass(frozen=True)
class SourceView:
    """One report source as the page shows it: a mailbox (``where`` is host:port/folder) or a directory."""

    kind: str  # "mailbox" | "directory"
    name: str
    where: str
    up: bool
    reason: str  # why it is down ("starting", an IMAP reason, an OS error), or "up"
    passes: int


def _n(value: float) -> str:
    return f"{value:.0f}"


def _by(values: Mapping[str, float]) -> str:
    """``a 3, b 1`` (largest first), or ``-``."""
    items = sorted(((k, v) for k, v in values.items() if v), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {_n(v)}" for k, v in items) or "-"


def _period(gauge: Counts, kind: str, reporter: str, now: float) -> str:
    end = gauge.get((kind, reporter))
    if not end:
        return "-"
    return f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(end))} UTC ({age(end, now)})"


def _sources_table(sources: Sequence[SourceView], store_mails: Counts, store_errors: Counts) -> Table:
    rows = []
    for s in sources:
        if s.kind == "mailbox":
            state = Cell("up", State.OK) if s.up else Cell(f"down: {s.reason}", State.UNKNOWN if s.reason ==
                                                           "starting" else State.FAIL)  # fmt: skip
            moved = f"processed {_n(store_mails.get((s.name, 'processed'), 0))}, failed " \
                    f"{_n(store_mails.get((s.name, 'failed'), 0))}"  # fmt: skip
            errors = _by({k[1]: v for k, v in store_errors.items() if k[0] == s.name})
        else:
            state = Cell("ok", State.OK) if s.up else Cell(s.reason, State.FAIL)
            moved, errors = "files are left in place", "-"
        rows.append(row(s.kind, s.name, s.where, state, str(s.passes), moved, errors))
    return Table(("source", "name", "where", "state", "passes", "mails", "errors so far"), tuple(rows),
                 caption="Report sources", empty="no mailbox or directory configured")  # fmt: skip


def _ingest_table(m: ReportMetrics) -> Table:
    ingested, duplicates = m.store[INGESTED], m.store[DUPLICATES]
    rejected, quirks = m.store[REJECTED], m.store[QUIRK_COUNT]
    kinds = sorted({k[0] for store in (ingested, duplicates, rejected, quirks) for k in store})
    rows = []
    for kind in kinds:
        refused = {k[1]: v for k, v in rejected.items() if k[0] == kind}
        total = sum(refused.values())
        rows.append(row(kind, _n(ingested.get((kind,), 0)), _n(duplicates.get((kind,), 0)),
                        Cell(_n(total), State.WARN if total else None), _by(refused),
                        _by({k[1]: v for k, v in quirks.items() if k[0] == kind})))  # fmt: skip
    return Table(("kind", "counted", "duplicates", "rejected", "rejected by reason", "read despite"),
                 tuple(rows), caption="Reports ingested since start", empty="no report read yet")  # fmt: skip


def _dmarc_table(m: ReportMetrics, now: float) -> Table:
    # (reporter, domain) -> source -> [pass, fail]
    counts: dict[tuple[str, str], dict[str, list[float]]] = {}
    for (reporter, domain, _disposition, dkim, spf, source), n in m.store[DMARC_MESSAGES].items():
        by_source = counts.setdefault((reporter, domain), {s: [0.0, 0.0] for s in SOURCES})
        by_source.setdefault(source, [0.0, 0.0])[0 if "pass" in (dkim, spf) else 1] += n
    ordered = sorted(counts.items(), key=lambda kv: (-sum(sum(p) for p in kv[1].values()), kv[0]))
    rows = []
    for (reporter, domain), by_source in ordered[:MAX_ROWS]:
        cells = []
        for source in SOURCES:
            passed, failed = by_source[source]
            state = (State.WARN if failed else State.OK) if source == "authorized" and passed + failed else None
            cells.append(Cell(f"{_n(passed)} pass, {_n(failed)} fail" if passed + failed else "-", state))
        rows.append(row(reporter, domain, _period(m.store[PERIOD_END], "dmarc", reporter, now), *cells))
    caption = "DMARC aggregate reports: messages by source class"
    if len(ordered) > MAX_ROWS:
        caption += f" (the {MAX_ROWS} busiest of {len(ordered)} reporter and domain pairs)"
    return Table(("reporter", "domain", "newest period ends", "authorized senders", "forwarders",
                  "unknown sources"), tuple(rows), caption=caption, empty="no DMARC report yet")  # fmt: skip


def _tls_table(m: ReportMetrics, now: float) -> Table:
    counts: dict[tuple[str, str], dict[str, float]] = {}
    for (reporter, domain, _policy, result), n in m.store[TLS_SESSIONS].items():
        results = counts.setdefault((reporter, domain), {})
        results[result] = results.get(result, 0.0) + n
    ordered = sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    rows = []
    for (reporter, domain), results in ordered[:MAX_ROWS]:
        failures = {r: n for r, n in results.items() if r != "success"}
        failed = sum(failures.values())
        rows.append(row(reporter, domain, _period(m.store[PERIOD_END], "tlsrpt", reporter, now),
                        _n(results.get("success", 0)), Cell(_n(failed), State.WARN if failed else State.OK),
                        _by(failures)))  # fmt: skip
    return Table(("reporter", "policy domain", "newest period ends", "sessions ok", "failed", "failures by result"),
                 tuple(rows), caption="SMTP TLS reports (TLS-RPT)", empty="no TLS report yet")  # fmt: skip


def _complaints_table(m: ReportMetrics) -> Table:
    by_reporter: dict[str, dict[str, float]] = {}
    for (reporter, feedback), n in m.store[COMPLAINTS].items():
        by_reporter.setdefault(reporter, {})[feedback] = n
    rows = [
        row(reporter, _n(sum(types.values())), _by(types))
        for reporter, types in sorted(by_reporter.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    ]
    return Table(("reporter", "complaints", "by feedback type"), tuple(rows[:MAX_ROWS]),
                 caption="Complaints (ARF feedback reports)", empty="no complaint received")  # fmt: skip


def reports_section(metrics: ReportMetrics, sources: Sequence[SourceView], now: float) -> StatusSection:
    """The section (read under the kernel's lock, which guards the metrics)."""
    tables = (
        _sources_table(sources, metrics.store[MAILS], metrics.store[MAILBOX_ERRORS]),
        _ingest_table(metrics),
        _dmarc_table(metrics, now),
        _tls_table(metrics, now),
        _complaints_table(metrics),
    )
    note = "Counted since mailpulse started; a report covers its own period (usually the previous UTC day)."
    return StatusSection("Receiver reports (DMARC, TLS-RPT, ARF)", tables, note=note)
