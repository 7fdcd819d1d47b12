"""The reports feature: the ``reports:`` section, the mailbox watchers, ``mailpulse scan --reports``.

The metrics object lives as long as the feature (the process), so counters survive a reload; the
de-duplication memory is loaded from ``state_dir`` at the first (re)load and shared by every source.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from mailpulse.exporter.configtools import Node
from mailpulse.exporter.feature import Context, Feature, Health, Part, Service
from mailpulse.exporter.status import StatusSection
from mailpulse.parsers.reports import Limits
from mailpulse.probes.reports.config import KEY_DOCS, ReportsConfig, parse_reports
from mailpulse.probes.reports.dedup import SeenReports
from mailpulse.probes.reports.files import report_files
from mailpulse.probes.reports.ingest import Ingestor
from mailpulse.probes.reports.metrics import FAMILIES, LABEL_SETS, ReportMetrics

if TYPE_CHECKING:  # the IMAP stack loads only when a mailbox is configured
    from mailpulse.probes.reports.directory import ReportDirectory
    from mailpulse.probes.reports.mailbox import ReportMailbox

STATE_FILE = "reports-seen.json"


def limits_of(config: ReportsConfig) -> Limits:
    return Limits(config.max_input_bytes, config.max_report_bytes, config.max_records)


class Reports(Feature[ReportsConfig | None]):
    name = "reports"
    title = "Receiver reports (DMARC, TLS-RPT, ARF)"
    section = ("reports",)
    families = FAMILIES
    label_sets = LABEL_SETS
    standalone = True
    key_docs = KEY_DOCS
    scan_inputs = {"reports": "DMARC aggregate, TLS-RPT and ARF reports: .xml, .xml.gz, .zip, .json, .json.gz, "
                   ".eml files, or directories of them"}  # fmt: skip

    def __init__(self) -> None:
        self.metrics = ReportMetrics()
        self.seen: SeenReports | None = None
        self.mailboxes: list[ReportMailbox] = []
        self.directories: list[ReportDirectory] = []

    def parse_config(self, node: Node) -> ReportsConfig | None:
        return parse_reports(node)

    def absent(self) -> ReportsConfig | None:
        return None

    def active(self, config: ReportsConfig | None) -> bool:
        return config is not None

    def configure(self, config: ReportsConfig | None, context: Context) -> Sequence[Service]:
        if config is None:
            self.mailboxes, self.directories = [], []
            return ()
        path = os.path.join(context.state_dir, STATE_FILE)
        if self.seen is None or self.seen.path != path:
            self.seen = SeenReports(config.dedup_ttl, config.dedup_max_entries, path)
            problem = self.seen.load()
            if problem is not None:
                from mailpulse.probes.reports.ingest import log  # noqa: PLC0415

                log.warning("the report de-duplication memory is unusable; starting empty", path=path, error=problem)
        self.seen.ttl, self.seen.max_entries = config.dedup_ttl, config.dedup_max_entries
        with context.lock:
            self.metrics.configure(config)
        ingestor = Ingestor(self.metrics, self.seen, context.lock, limits_of(config))
        from mailpulse.probes.reports.directory import ReportDirectory  # noqa: PLC0415

        self.directories = [ReportDirectory(d, ingestor) for d in config.directories]
        self.mailboxes = []
        if config.mailboxes:
            from mailpulse.probes.reports.mailbox import ReportMailbox  # noqa: PLC0415

            self.mailboxes = [ReportMailbox(m, ingestor, self.metrics, context.lock) for m in config.mailboxes]
        return (*self.mailboxes, *self.directories)

    def parts(self) -> Sequence[Part]:
        return (self.metrics,)

    def health(self) -> Health | None:
        if not self.mailboxes and not self.directories:
            return None
        mailboxes = {m.config.name: "up" if m.up else f"down ({m.reason})" for m in self.mailboxes}
        directories = {d.config.path: d.error or "ok" for d in self.directories}
        ok = all(m.up for m in self.mailboxes) and not any(d.error for d in self.directories)
        return Health(ok, {"mailboxes": mailboxes, "directories": directories})

    def status(self) -> StatusSection | None:
        from mailpulse.probes.reports.status import SourceView, reports_section  # noqa: PLC0415

        sources = [SourceView("mailbox", m.config.name, f"{m.config.imap.host}:{m.config.imap.port}/{m.config.folder}",
                              m.up, m.reason, m.passes) for m in self.mailboxes]  # fmt: skip
        sources += [SourceView("directory", d.config.path, f"every {d.config.interval:g} s", d.error is None,
                               d.error or "ok", d.passes) for d in self.directories]  # fmt: skip
        return reports_section(self.metrics, sources, time.time())

    def scan_paths(self, config: ReportsConfig | None, flag: str, paths: Sequence[str], err: TextIO) -> int:
        """Count every report file under ``paths`` (de-duplicated within this scan; nothing is saved)."""
        config = config or ReportsConfig()
        lock = threading.Lock()
        self.metrics.configure(config)
        self.metrics.new_series_delay = 0.0  # one exposition, nobody scrapes a 0 first
        ingestor = Ingestor(self.metrics, SeenReports(config.dedup_ttl, 10**9), lock, limits_of(config))
        for path in report_files(paths):
            try:
                with open(path, "rb") as fh:
                    data = fh.read(config.max_input_bytes + 1)
            except OSError as exc:
                err.write(f"mailpulse scan: {path}: {exc.strerror or exc}\n")
                return 1
            ingestor.ingest_file(data)
        return 0
