"""Message tracking inside the Postfix-logs feature: one tracker for the life of the process (in-flight
messages survive reloads), its state file, its start-up reconciliation with ``postqueue -j``, and the
handlers it adds to the ``postfix`` format."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from mailpulse.exporter.queue import QueueCollector
from mailpulse.exporter.tracking import state
from mailpulse.exporter.tracking.config import TrackingConfig, default_local_hosts
from mailpulse.exporter.tracking.metrics import TrackingMetrics
from mailpulse.exporter.tracking.tracker import HostSource, Tracker, TrackerLimits

log = structlog.get_logger(__name__)

Handler = Callable[[Any], None]
TICK_SECONDS = 1.0  # how often finished journeys are counted while the log is quiet


class _NoHost:
    host = ""
    tag = ""


def chain(first: Mapping[type, Handler], second: Mapping[type, Handler]) -> dict[type, Handler]:
    """Both tables' handlers for each event type, ``first`` before ``second``."""
    out = dict(first)
    for cls, handler in second.items():
        before = out.get(cls)
        if before is None:
            out[cls] = handler
        else:
            out[cls] = _both(before, handler)
    return out


def _both(a: Handler, b: Handler) -> Handler:
    def both(event: Any) -> None:
        a(event)
        b(event)

    return both


class TrackingRuntime:
    def __init__(self) -> None:
        self.metrics = TrackingMetrics()
        self.tracker = Tracker(self.metrics, _NoHost())
        self.config = TrackingConfig(enabled=False)
        self.state_dir: str | None = None
        self.lock: threading.Lock | None = None
        self._loaded_from: str | None = None
        self._reconciled = False
        self._last_checkpoint = time.monotonic()

    def apply(self, config: TrackingConfig, source: HostSource) -> None:
        """A (re)load: new limits, the new parser as the source of host names."""
        self.config = config
        self.metrics.enabled = config.enabled
        self.tracker.source = source
        self.tracker.limits = TrackerLimits(config.max_messages, config.ttl, config.keep_finished,
                                            config.keep_finished_for, config.link_grace)  # fmt: skip

    def end_batch(self) -> None:
        self.tracker.end_batch()
        if self.state_dir is not None and self.config.state:
            now = time.monotonic()
            if now - self._last_checkpoint >= self.config.checkpoint_interval:
                self._last_checkpoint = now
                state.save(self.tracker, self.state_dir)

    def start(self, state_dir: str, lock: threading.Lock) -> None:
        """The daemon's configure: restore the state once per state directory."""
        self.lock = lock
        self.state_dir = state_dir
        if self.config.enabled and self.config.state and self._loaded_from != state_dir:
            self._loaded_from = state_dir
            with lock:
                restored = state.load(self.tracker, state_dir)
            if restored:
                log.info("message tracking state restored", in_flight=restored)

    def save(self) -> None:
        if self.state_dir is not None and self.config.enabled and self.config.state:
            state.save(self.tracker, self.state_dir)

    async def run(self, stop: asyncio.Event) -> None:
        """The service: reconcile once after the first start, then save the state when stopped."""
        try:
            if self.config.reconcile and not self._reconciled:
                self._reconciled = True
                await self.reconcile()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK_SECONDS)
                if self.lock is not None:
                    with self.lock:
                        self.tracker.tick()
        finally:
            if self.lock is not None:
                with self.lock:
                    self.save()

    async def reconcile(self) -> int | None:
        cfg = self.config
        collector = QueueCollector(cfg.config_dir, 30.0, 60.0, (cfg.postqueue,), log_failures=True)
        ids = await collector.queue_ids()
        if ids is None:
            self.metrics.error("reconcile")
            return None
        hosts = cfg.local_hosts or default_local_hosts()
        assert self.lock is not None
        with self.lock:
            dropped = self.tracker.reconcile(ids, hosts)
        if dropped:
            log.info("messages that left the queue while mailpulse was down were dropped", dropped=dropped)
        return dropped
