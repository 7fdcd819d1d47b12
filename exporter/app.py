"""The daemon: wire config → sources → pipelines → features' aggregators → collector → HTTP, and run it.

Lifecycle: SIGTERM/SIGINT stop cleanly (sources finish their batch and save offsets); SIGHUP reloads
the config. A reload that fails validation keeps the running config and sets
``mailpulse_config_last_reload_successful`` to 0. Aggregators outlive reloads, so counters never reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from mailpulse.exporter import __version__
from mailpulse.exporter.capabilities import Capabilities
from mailpulse.exporter.config import Config, SourceConfig, load_config
from mailpulse.exporter.configtools import ConfigError
from mailpulse.exporter.feature import AnyFeature, Context, Service, check_names
from mailpulse.exporter.http import MetricsServer
from mailpulse.exporter.metrics.collector import MailpulseCollector, Part, SelfMetrics, make_registry
from mailpulse.exporter.metrics.sources import SourcesAggregator
from mailpulse.exporter.pipeline import Format, LinePipeline
from mailpulse.exporter.preflight import check_state_dir
from mailpulse.exporter.sources.files import DEFAULT_ROTATED_PATTERNS, FileSource
from mailpulse.exporter.sources.journald import JournalSource
from mailpulse.exporter.status import StatusSection, failed_section, sources_section
from mailpulse.exporter.statuspage import render

log = structlog.get_logger(__name__)


def make_source(src: SourceConfig, formats: dict[str, Format], config: Config, sources: SourcesAggregator,
                lock: threading.Lock) -> Service:  # fmt: skip
    """The service that reads one configured source into its formats' handlers (positions in state_dir)."""
    stats = sources.stats(src.name)
    pipeline = LinePipeline(stats, [formats[f] for f in src.formats], lock, config.debug_unparsed)
    state = os.path.join(config.state_dir, "offsets", src.name)
    if src.type == "file":
        return FileSource(
            stats, src.path, state + ".offset", pipeline.feed,
            start_at_end=src.start_at == "end",
            rotated_patterns=[*DEFAULT_ROTATED_PATTERNS, *src.rotated_patterns],
            poll_interval=src.poll_interval,
        )  # fmt: skip
    return JournalSource(
        stats, state + ".cursor", pipeline.feed_fields,
        units=src.units, matches=src.matches, journal_files=src.journal_files,
        journal_directory=src.journal_directory, journalctl=src.journalctl,
        start_at_end=src.start_at == "end",
    )  # fmt: skip


class App:
    """The daemon: the kernel's settings (sources, HTTP) plus whatever the features contribute."""

    def __init__(self, config: Config, features: Sequence[AnyFeature]) -> None:
        check_names(features)
        self.config = config
        self.features = tuple(features)
        self.lock = threading.Lock()
        self.capabilities = Capabilities()  # what features provide to each other, rebuilt on every load
        self.self_metrics = SelfMetrics(__version__)
        self.sources = SourcesAggregator()
        self.collector = MailpulseCollector(self.lock, self.self_metrics)
        self.registry = make_registry(self.collector)
        self.server: MetricsServer | None = None
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._services_stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._active: tuple[AnyFeature, ...] = ()

    # -- wiring ------------------------------------------------------------------------------------------
    def _build(self, config: Config) -> list[Service]:
        os.makedirs(os.path.join(config.state_dir, "offsets"), exist_ok=True)
        self.capabilities.clear()
        context = Context(self.lock, config.state_dir, self.capabilities)
        formats: dict[str, Format] = {}
        services: list[Service] = []
        parts: list[Part] = []
        active: list[AnyFeature] = []
        for feature in self.features:
            section = config.section(feature)
            for fmt in feature.formats(section):
                formats[fmt.name] = fmt
            # every feature is configured, also an inactive one: it must drop what it showed before
            services.extend(feature.configure(section, context))
            if feature.active(section):
                active.append(feature)
                parts.extend(feature.parts())
        self.sources.keep({src.name for src in config.sources})
        services[:0] = [self._source(src, formats, config) for src in config.sources]
        self._active = tuple(active)
        self.collector.set_parts([*parts, self.sources])
        return services

    def _source(self, src: SourceConfig, formats: dict[str, Format], config: Config) -> Service:
        return make_source(src, formats, config, self.sources, self.lock)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """ok, or degraded with what is wrong: a source that cannot be read (``s.up``, which also covers
        the sources' own degraded conditions), a failing queue collection, a probe mailbox that is down.
        Probe *outcomes* (lost, junk) are what mailpulse measures, not its own health: shown, not judged."""
        sources = {name: bool(s.up) for name, s in self.sources.sources.items()}
        ok = all(sources.values()) if sources else True
        detail: dict[str, Any] = {"sources": sources}
        for feature in self._active:
            health = feature.health()
            if health is not None:
                ok = ok and health.ok
                detail[feature.name] = dict(health.detail)
        return ok, detail

    def status_page(self) -> bytes:
        """The page at /: the kernel's log sources, then every active feature's section, read under the lock
        (as a scrape reads) and rendered outside it."""
        sections: list[StatusSection] = []
        with self.lock:
            sections.append(sources_section(self.sources))
            for feature in self._active:
                try:
                    section = feature.status()
                except Exception:  # a bug in one section must not take the page down
                    log.exception("status section failed", feature=feature.name)
                    section = failed_section(feature.title)
                if section is not None:
                    sections.append(section)
        return render(sections, version=__version__)

    # -- running -----------------------------------------------------------------------------------------
    async def run(self, on_ready: Callable[[str], Awaitable[None] | None] | None = None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        http = self.config.http
        password = http.basic_auth_password.value if http.basic_auth_password else None
        try:
            self.server = MetricsServer(
                self.registry, http.host, http.port, health=self.health,
                status_page=self.status_page, tls_cert_file=http.tls_cert_file, tls_key_file=http.tls_key_file,
                username=http.basic_auth_username, password=password,
            )  # fmt: skip
        except OSError as exc:
            log.error("cannot listen", address=f"{http.host}:{http.port}", error=str(exc))
            return 1
        self.server.start()
        self._start_services(self._build(self.config))
        log.info("mailpulse running", metrics=self.server.url, sources=len(self.config.sources),
                 features=[f.name for f in self._active], version=__version__)  # fmt: skip
        if on_ready is not None:
            result = on_ready(self.server.url)
            if result is not None:
                await result
        try:
            while not self._stop.is_set():
                stop_wait = asyncio.create_task(self._stop.wait())
                reload_wait = asyncio.create_task(self._reload.wait())
                await asyncio.wait({stop_wait, reload_wait}, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                reload_wait.cancel()
                if self._reload.is_set() and not self._stop.is_set():
                    self._reload.clear()
                    await self._do_reload()
        finally:
            await self._stop_services()
            self.server.stop()
            log.info("mailpulse stopped")
        return 0

    def _start_services(self, services: list[Service]) -> None:
        self._services_stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._guard(s)) for s in services]

    async def _guard(self, service: Service) -> None:
        """Run a service; if it crashes (a bug), log it and restart it rather than losing it silently."""
        while not self._services_stop.is_set():
            try:
                await service.run(self._services_stop)
                return
            except Exception:
                log.exception("service crashed, restarting in 5s", service=type(service).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._services_stop.wait(), 5)

    async def _stop_services(self) -> None:
        self._services_stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=30)
            for task in pending:
                task.cancel()
        self._tasks = []

    async def _do_reload(self) -> None:
        try:
            config = load_config(self.config.path, self.features)
        except ConfigError as exc:
            self.self_metrics.reload_ok = 0
            log.error("config reload failed, keeping the running config", problems=exc.problems)
            return
        unusable = check_state_dir(config.state_dir)
        if unusable:
            # checked before anything is stopped: the running services and their state dir stay as they are
            self.self_metrics.reload_ok = 0
            log.error("config reload failed, keeping the running config", problems=[str(f) for f in unusable])
            return
        if (config.http.host, config.http.port) != (self.config.http.host, self.config.http.port):
            log.warning("http.listen changed: takes effect after a restart")
        await self._stop_services()
        self.config = config
        self._start_services(self._build(config))
        self.self_metrics.reload_ok = 1
        self.self_metrics.reload_time = time.time()
        log.info("config reloaded", sources=len(config.sources))

    def request_stop(self) -> None:
        self._stop.set()
