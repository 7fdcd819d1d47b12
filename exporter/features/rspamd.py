"""The rspamd-logs feature: the ``rspamd:`` section, the ``rspamd`` log format and its metrics."""

from __future__ import annotations

from collections.abc import Sequence

from mailpulse.exporter.config_rspamd import KEY_DOCS, RspamdConfig, parse_rspamd
from mailpulse.exporter.configtools import Node
from mailpulse.exporter.feature import Context, Feature, Part, Service
from mailpulse.exporter.metrics.rspamd import FAMILIES, LABEL_SETS, RspamdAggregator
from mailpulse.exporter.pipeline import Format
from mailpulse.exporter.scanindex import MESSAGE_SCANS, ScanIndex
from mailpulse.exporter.tracking.runtime import chain
from mailpulse.parsers.rspamd import RspamdParser, rspamd_timestamp
from mailpulse.parsers.rspamd.events import RspamdScan


class RspamdLogs(Feature[RspamdConfig]):
    name = "rspamd"
    title = "rspamd logs"
    section = ("rspamd",)
    families = FAMILIES
    label_sets = LABEL_SETS
    format_names = ("rspamd",)
    key_docs = KEY_DOCS

    def __init__(self) -> None:
        self.aggregator = RspamdAggregator(RspamdConfig())
        self.scans = ScanIndex()  # verdicts by Message-ID, for the probes' hop timelines

    def parse_config(self, node: Node) -> RspamdConfig:
        return parse_rspamd(node)

    def absent(self) -> RspamdConfig:
        return RspamdConfig()

    def formats(self, config: RspamdConfig) -> Sequence[Format]:
        # the labeller follows the config: rebuilt with the formats on every load
        agg = self.aggregator
        agg.reconfigure(config)
        parser = RspamdParser()
        return (
            Format("rspamd", parser.parse_line, parser.parse_fields,
                   chain(agg.handlers(), {RspamdScan: self.scans.record}), rspamd_timestamp, agg.end_batch),
        )  # fmt: skip

    def configure(self, config: RspamdConfig, context: Context) -> Sequence[Service]:
        self.scans.lock = context.lock
        context.capabilities.provide(MESSAGE_SCANS, self.scans)
        return ()

    def parts(self) -> Sequence[Part]:
        return (self.aggregator,)
