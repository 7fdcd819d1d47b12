"""Small helpers shared by tests that run mailpulse as a process and scrape it."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from mailpulse.exporter.config_rspamd import RspamdConfig
from mailpulse.exporter.configtools import Secret
from mailpulse.exporter.feature import Part
from mailpulse.exporter.features import PostfixLogs, RspamdLogs
from mailpulse.exporter.metrics.postfix import PostfixAggregator
from mailpulse.exporter.metrics.rspamd import RspamdAggregator
from mailpulse.exporter.pipeline import Format
from mailpulse.parsers.postfix import PostfixParserConfig
from mailpulse.probes.config import ProbeConfig, ProbesConfig, RouteConfig, TargetConfig

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> Samples:
    """All samples of http://127.0.0.1:PORT/metrics, keyed by name and label set."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}  # fmt: skip


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def wait_for(check: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2) -> None:
    """Poll ``check`` until it is true (connection errors count as not yet); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:g}s")


@dataclass
class Aggregators:
    """The two log features' aggregators, as unit tests wire them without a daemon (what the kernel does
    with ``feature.formats(section)`` and ``feature.parts()``)."""

    postfix_feature: PostfixLogs
    rspamd_feature: RspamdLogs

    @classmethod
    def create(cls, rspamd: RspamdConfig) -> Aggregators:
        aggregators = cls(PostfixLogs(), RspamdLogs())
        aggregators.rspamd_feature.aggregator.reconfigure(rspamd)
        return aggregators

    @property
    def postfix(self) -> PostfixAggregator:
        return self.postfix_feature.aggregator

    @property
    def rspamd(self) -> RspamdAggregator:
        return self.rspamd_feature.aggregator

    def parts(self) -> list[Part]:
        return [*self.postfix_feature.parts(), *self.rspamd_feature.parts()]


def build_formats(aggregators: Aggregators, postfix: PostfixParserConfig, rspamd: RspamdConfig) -> dict[str, Format]:
    """Each log format by name, built by its feature (a new parser each call, as on a reload)."""
    formats = [*aggregators.postfix_feature.formats(postfix), *aggregators.rspamd_feature.formats(rspamd)]
    return {fmt.name: fmt for fmt in formats}


# One route "r", one IMAP target "t", one probe "p" (every 60 s): the smallest probe config the tests use.
MINIMAL_PROBES = ProbesConfig(
    Secret("0123456789abcdef", "test"),
    routes=(RouteConfig("r", "127.0.0.1", 587, "starttls", "probe@example.test"),),
    targets=(
        TargetConfig(
            "t", "imap", "probe@remote.test", "127.0.0.1", 993, "implicit", "probe@remote.test", provider="dovecot"
        ),
    ),
    probes=(ProbeConfig("p", "r", "t", 60.0, 5.0, 60.0, 600.0),),
)
