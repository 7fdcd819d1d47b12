"""rspamd metrics (placeholder: the rspamd work replaces this module)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import Metric

from exporter.config_rspamd import RspamdConfig
from exporter.metrics.family import Family

FAMILIES: tuple[Family, ...] = ()


class RspamdAggregator:
    families = FAMILIES

    def __init__(self, config: RspamdConfig) -> None:
        self.config = config

    def reconfigure(self, config: RspamdConfig) -> None:
        self.config = config

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {}

    def collect(self) -> Iterator[Metric]:
        return iter(())
