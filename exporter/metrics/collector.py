"""The custom collector that Prometheus scrapes: families built at scrape time from plain numbers."""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import structlog
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from mailpulse.exporter.metrics.family import Family, Kind, bounded, label_sets

log = structlog.get_logger(__name__)
LOG_EVERY = 60.0  # seconds between log lines about the same failing part

BUILD_INFO = Family(
    "mailpulse_build_info", "Always 1; labels say which mailpulse and Python are running.", Kind.GAUGE,
    ("version", "python"),
)  # fmt: skip
START_TIME = Family("mailpulse_start_time_seconds", "When this mailpulse process started.", Kind.GAUGE)
RELOAD_OK = Family("mailpulse_config_last_reload_successful", "1 if the last config (re)load succeeded.", Kind.GAUGE)
RELOAD_TIME = Family(
    "mailpulse_config_last_reload_success_timestamp_seconds", "When the config was last loaded successfully.",
    Kind.GAUGE,
)  # fmt: skip
SCRAPE_ERRORS = Family(
    "mailpulse_collect_errors_total", "Errors while building metrics for a scrape, by part.", Kind.COUNTER, ("part",)
)
SELF_FAMILIES = (BUILD_INFO, START_TIME, RELOAD_OK, RELOAD_TIME, SCRAPE_ERRORS)
SELF_LABEL_SETS = label_sets(
    SELF_FAMILIES,
    {
        "version": bounded(1, "this mailpulse's version"),
        "python": bounded(1, "the running Python's version"),
        "part": bounded(16, "class names of the parts collected (one or two per feature, and the log sources)"),
    },
)


class Part(Protocol):
    """Anything that holds numbers and can turn them into families."""

    @property
    def families(self) -> Sequence[Family]: ...

    def collect(self) -> Iterable[Metric]: ...


class SelfMetrics:
    families = SELF_FAMILIES

    def __init__(self, version: str) -> None:
        self.version = version
        self.started = time.time()
        self.reload_ok = 1
        self.reload_time = self.started
        self.collect_errors: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        yield BUILD_INFO.from_values({(self.version, platform.python_version()): 1.0})
        yield START_TIME.from_values({(): self.started})
        yield RELOAD_OK.from_values({(): float(self.reload_ok)})
        yield RELOAD_TIME.from_values({(): self.reload_time})
        yield SCRAPE_ERRORS.from_values({(p,): float(n) for p, n in self.collect_errors.items()})


class MailpulseCollector(Collector):
    """Reads every part under the shared lock; the parts are swapped on reload via :meth:`set_parts`."""

    def __init__(self, lock: threading.Lock, self_metrics: SelfMetrics, parts: Sequence[Part] = (),
                 now: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._lock = lock
        self._self = self_metrics
        self._parts: tuple[Part, ...] = tuple(parts)
        self._now = now
        self._logged: dict[str, float] = {}  # part -> when its failure was last logged

    def set_parts(self, parts: Sequence[Part]) -> None:
        self._parts = tuple(parts)

    def describe(self) -> Iterator[Metric]:
        for part in (self._self, *self._parts):
            for family in part.families:
                yield family.new()

    def collect(self) -> Iterator[Metric]:
        metrics: list[Metric] = []
        with self._lock:
            for part in self._parts:
                try:
                    # all of a part's families or none: a part that fails half-way adds nothing
                    families = list(part.collect())
                except Exception:
                    name = type(part).__name__
                    self._self.collect_errors[name] = self._self.collect_errors.get(name, 0) + 1
                    self._log_failure(name)
                    continue
                metrics.extend(families)
            metrics.extend(self._self.collect())
        yield from metrics

    def _log_failure(self, part: str) -> None:
        """A bug: logged with its traceback, at most once a minute per part (scrapes come every 15 s)."""
        now = self._now()
        if now - self._logged.get(part, -LOG_EVERY) >= LOG_EVERY:
            self._logged[part] = now
            log.exception("a part failed while building metrics; its families are left out of this scrape",
                          part=part, failures=self._self.collect_errors[part])  # fmt: skip


def make_registry(collector: MailpulseCollector, process_metrics: bool = True) -> CollectorRegistry:
    """mailpulse's own registry (never the global one), with process_* metrics from prometheus_client."""
    from prometheus_client import ProcessCollector  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process_metrics:
        ProcessCollector(registry=registry)
    return registry
