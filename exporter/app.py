"""The daemon: wire config → sources → pipelines → aggregators → collector → HTTP, and run it.

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
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from exporter import __version__
from exporter.config import Config, SourceConfig, load_config
from exporter.configtools import ConfigError
from exporter.formats import Aggregators, build_formats
from exporter.http import MetricsServer
from exporter.metrics.collector import MailpulseCollector, Part, SelfMetrics, make_registry
from exporter.metrics.sources import SourcesAggregator
from exporter.pipeline import Format, LinePipeline
from exporter.queue import QueueCollector
from exporter.sources.files import DEFAULT_ROTATED_PATTERNS, FileSource
from exporter.sources.journald import JournalSource

log = structlog.get_logger(__name__)


class Service(Protocol):
    """A long-running part of the daemon (a source, the queue collector, the probe scheduler)."""

    async def run(self, stop: asyncio.Event) -> None: ...


ProbeFactory = Callable[[Config, threading.Lock], Any]


class App:
    def __init__(self, config: Config, *, probe_factory: ProbeFactory | None = None) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.self_metrics = SelfMetrics(__version__)
        self.aggregators = Aggregators.create(config.rspamd)
        self.sources = SourcesAggregator()
        self.collector = MailpulseCollector(self.lock, self.self_metrics)
        self.registry = make_registry(self.collector)
        self.server: MetricsServer | None = None
        self._probe_factory = probe_factory
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._services_stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: QueueCollector | None = None
        self._probes: Any = None

    # -- wiring ------------------------------------------------------------------------------------------
    def _build(self, config: Config) -> list[Service]:
        os.makedirs(os.path.join(config.state_dir, "offsets"), exist_ok=True)
        formats = build_formats(self.aggregators, config.postfix.parser, config.rspamd)
        services: list[Service] = [self._source(src, formats, config) for src in config.sources]
        parts: list[Part] = [*self.aggregators.parts(), self.sources]
        self._queue = None
        if config.postfix.queue.enabled:
            q = config.postfix.queue
            self._queue = QueueCollector(q.config_dir, q.interval, q.timeout, (q.command,))
            services.append(self._queue)
            parts.append(self._queue)
        self._probes = None
        if config.probes is not None and self._probe_factory is not None:
            self._probes = self._probe_factory(config, self.lock)
            services.append(self._probes)
            parts.append(self._probes)
        self.collector.set_parts(parts)
        return services

    def _source(self, src: SourceConfig, formats: dict[str, Format], config: Config) -> Service:
        stats = self.sources.stats(src.name)
        pipeline = LinePipeline(stats, [formats[f] for f in src.formats], self.lock, config.debug_unparsed)
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

    def health(self) -> tuple[bool, dict[str, Any]]:
        """ok, or degraded with what is wrong: a source that cannot be read (``s.up``, which also covers
        the sources' own degraded conditions), a failing queue collection, a probe mailbox that is down.
        Probe *outcomes* (lost, junk) are what mailpulse measures, not its own health: shown, not judged."""
        sources = {name: bool(s.up) for name, s in self.sources.sources.items()}
        ok = all(sources.values()) if sources else True
        detail: dict[str, Any] = {"sources": sources}
        parts: list[tuple[str, Any]] = [("queue", self._queue), ("probes", self._probes)]
        for key, part in parts:
            check = getattr(part, "health", None)
            if check is None:
                continue
            part_ok, part_detail = check()
            ok = ok and part_ok
            detail[key] = part_detail
        return ok, detail

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
                tls_cert_file=http.tls_cert_file, tls_key_file=http.tls_key_file,
                username=http.basic_auth_username, password=password,
            )  # fmt: skip
        except OSError as exc:
            log.error("cannot listen", address=f"{http.host}:{http.port}", error=str(exc))
            return 1
        self.server.start()
        self._start_services(self._build(self.config))
        log.info("mailpulse running", metrics=self.server.url, sources=len(self.config.sources),
                 probes=self.config.probes is not None, version=__version__)  # fmt: skip
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
            config = load_config(self.config.path)
        except ConfigError as exc:
            self.self_metrics.reload_ok = 0
            log.error("config reload failed, keeping the running config", problems=exc.problems)
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
