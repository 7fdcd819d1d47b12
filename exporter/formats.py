"""The log formats mailpulse reads, each wired to its parser and aggregator.

Aggregators live as long as the process (counters must not reset on a config reload); parsers are
rebuilt from the config on every (re)load.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.config_rspamd import RspamdConfig
from exporter.metrics.collector import Part
from exporter.metrics.postfix import PostfixAggregator
from exporter.metrics.rspamd import RspamdAggregator
from exporter.pipeline import Format
from parsers.postfix import PostfixParser, PostfixParserConfig
from parsers.rspamd import RspamdParser, rspamd_timestamp
from parsers.syslog import split_line


def postfix_timestamp(line: str) -> str | None:
    parts = split_line(line)
    return parts[0] if parts is not None else None


@dataclass
class Aggregators:
    """One aggregator per format, shared by every source of that format."""

    postfix: PostfixAggregator
    rspamd: RspamdAggregator

    @classmethod
    def create(cls, rspamd: RspamdConfig) -> Aggregators:
        return cls(PostfixAggregator(), RspamdAggregator(rspamd))

    def parts(self) -> list[Part]:
        return [self.postfix, self.rspamd]


def build_formats(aggregators: Aggregators, postfix: PostfixParserConfig, rspamd: RspamdConfig) -> dict[str, Format]:
    postfix_parser = PostfixParser(postfix)
    rspamd_parser = RspamdParser()
    aggregators.rspamd.reconfigure(rspamd)
    aggregators.postfix.track_services(postfix_parser.programs)
    return {
        "postfix": Format(
            "postfix",
            postfix_parser.parse_line,
            postfix_parser.parse_fields,
            aggregators.postfix.handlers(),
            postfix_timestamp,
        ),
        "rspamd": Format(
            "rspamd",
            rspamd_parser.parse_line,
            rspamd_parser.parse_fields,
            aggregators.rspamd.handlers(),
            rspamd_timestamp,
        ),
    }
