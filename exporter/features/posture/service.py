"""Running the checks: every target on its own schedule inside ``mailpulse run``, or all once.

Each target (a check on a domain, selector, MX, sender or zone) is one asyncio task that runs, sleeps
until its next tick, and runs again, so it never overlaps itself and a slow target only delays itself.
A run waits for a slot in its *lane* first: the DNS checks share one lane, the SMTP checks (``mx_tls``,
``dane``) another, and each blocklist zone has its own, each with ``concurrency`` slots, so a zone that
never answers holds only its own slots. The check's time limit starts when it has its slot. First runs
are spread over up to 30 s (a thousand domains do not all query at the same instant).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import structlog
from prometheus_client.core import Metric

from mailpulse.exporter.feature import Health
from mailpulse.exporter.features.posture.checks import Env, discover_mx, run_check, targets
from mailpulse.exporter.features.posture.config import PostureConfig
from mailpulse.exporter.features.posture.metrics import FAMILIES, PostureMetrics
from mailpulse.exporter.features.posture.result import CheckResult, Target
from mailpulse.exporter.logsetup import register_secret

log = structlog.get_logger(__name__)
MAX_START_SPREAD = 30.0


def lane(target: Target) -> str:
    if target.check == "dnsbl":
        return f"dnsbl:{target.zone}"
    if target.check in ("mx_tls", "dane"):
        return "smtp"
    return "dns"


class Lanes:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._sems: dict[str, asyncio.Semaphore] = {}

    def __call__(self, name: str) -> asyncio.Semaphore:
        sem = self._sems.get(name)
        if sem is None:
            sem = self._sems[name] = asyncio.Semaphore(self.concurrency)
        return sem


async def discover_all(env: Env) -> dict[str, tuple[str, ...]]:
    """MX hosts of the domains that configure none (bounded like the checks; a failure gives none)."""
    wanted = [d.name for d in env.config.domains if not d.mx]
    sem = asyncio.Semaphore(env.config.concurrency)

    async def one(domain: str) -> tuple[str, tuple[str, ...]]:
        async with sem:
            try:
                async with asyncio.timeout(env.config.dns_timeout * 2):
                    return domain, await discover_mx(env, domain)
            except Exception:  # reported by the mx_tls check of that domain (no_mx)
                return domain, ()

    return dict(await asyncio.gather(*(one(d) for d in wanted)))


def plan(config: PostureConfig, mx: dict[str, tuple[str, ...]]) -> list[Target]:
    found = targets(config, mx)
    # a domain whose MX could not be found still gets an mx_tls verdict (no_mx) instead of no series
    if config.checks["mx_tls"].enabled:
        have = {t.domain for t in found if t.check == "mx_tls"}
        found += [Target("mx_tls", d.name) for d in config.domains if d.name not in have]
    return found


async def run_once(config: PostureConfig, only: Sequence[str] = (), env: Env | None = None,
                   on_result: Callable[[CheckResult], object] | None = None) -> list[CheckResult]:  # fmt: skip
    """Every target once, concurrently within the lanes; results in plan order."""
    env = env or Env.build(config)
    lanes = Lanes(config.concurrency)
    plan_ = [t for t in plan(config, await discover_all(env)) if not only or t.check in only]

    async def one(target: Target) -> CheckResult:
        async with lanes(lane(target)):
            result = await run_check(env, target, config.checks[target.check].timeout)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(t) for t in plan_)))


class PostureService:
    families = FAMILIES

    def __init__(self, config: PostureConfig, lock: threading.Lock, metrics: PostureMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or PostureMetrics(lock)
        self.env = Env.build(config)
        if config.dqs_key is not None:
            register_secret(config.dqs_key.value)
        self._tasks: dict[tuple[str, str, str, str], asyncio.Task[None]] = {}
        self._lanes = Lanes(config.concurrency)
        self._planned: tuple[Target, ...] = ()  # replaced whole (the page reads it from the HTTP thread)

    def collect(self) -> Iterable[Metric]:
        return self.metrics.collect()

    def health(self) -> Health:
        results = self.metrics.results()
        failing = sorted({r.target.check for r in results if not r.up})
        return Health(True, {"status": "ok", "targets": len(self._tasks), "checked": len(results),
                             "failing": sum(not r.ok for r in results), "errors_in": failing})  # fmt: skip

    def planned(self) -> list[Target]:
        """The targets scheduled now (the status page shows those without a result yet as pending)."""
        return list(self._planned)

    async def run(self, stop: asyncio.Event) -> None:
        self._sync(plan(self.config, await discover_all(self.env)))
        log.info("posture checks scheduled", targets=len(self._tasks))
        every = self.config.checks["mx_tls"].interval
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
                if not stop.is_set():
                    self._sync(plan(self.config, await discover_all(self.env)))
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _sync(self, wanted: list[Target]) -> None:
        keys = {t.key: t for t in wanted}
        for key in list(self._tasks):
            if key not in keys:
                self._tasks.pop(key).cancel()
        for key, target in keys.items():
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(self._loop(target), name=f"posture {target.label()}")
        self.metrics.keep_only(wanted)
        self._planned = tuple(wanted)

    async def _loop(self, target: Target) -> None:
        schedule = self.config.checks[target.check]
        await asyncio.sleep(random.uniform(0.0, min(schedule.interval, MAX_START_SPREAD)))  # noqa: S311
        while True:
            started = time.monotonic()
            async with self._lanes(lane(target)):
                result = await run_check(self.env, target, schedule.timeout)
            self.metrics.record(result)
            if not result.ok:
                log.info("posture check failed", check=target.check, target=target.label(), reason=result.reason,
                         detail=result.detail)  # fmt: skip
            elapsed = time.monotonic() - started
            if elapsed > schedule.interval:
                self.metrics.skipped(target.check)  # a tick passed while this run waited or ran
            await asyncio.sleep(max(0.0, schedule.interval - elapsed))
