"""The probe service inside ``mailpulse run``: mailbox watchers plus an APScheduler 3 job per probe.

APScheduler 3.x (4.0 is an alpha) with its ``AsyncIOScheduler``, started inside the running loop. Each
probe is one ``IntervalTrigger`` job with jitter, ``max_instances=1`` (a run never overlaps itself: a
tick that finds the previous run still waiting is skipped and counted), ``coalesce=True`` and a misfire
grace of half the interval. The job is a whole run (send, wait, judge); it never raises, so a failing
probe cannot stop the scheduler. The first run of every probe starts after a random delay of 1 s to
1 s + ``probes.start_jitter`` (capped at the probe's interval; :func:`first_delays`), and later runs
follow every interval from there: probers started together (a fleet rollout, a host reboot) keep the
phases they drew instead of all hitting the same mailbox in the same second, and fresh metrics still
appear soon after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.core import Metric

from mailpulse.exporter.capabilities import Capabilities
from mailpulse.exporter.feature import Health
from mailpulse.exporter.logsetup import register_secret
from mailpulse.exporter.status import StatusSection
from mailpulse.probes import state
from mailpulse.probes.config import ProbeConfig, ProbesConfig, TargetConfig
from mailpulse.probes.correlate import Correlator
from mailpulse.probes.credentials import TokenSource
from mailpulse.probes.dkimcheck import DkimChecker
from mailpulse.probes.mailbox import MailboxWatcher
from mailpulse.probes.metrics import CONSECUTIVE, FAMILIES, LAST_RUN, LAST_SUCCESS, SUCCESS, ProbeMetrics
from mailpulse.probes.outcome import ProbeResult
from mailpulse.probes.registry import Registry
from mailpulse.probes.runner import ProbeRunner, log_result
from mailpulse.probes.send import Sender
from mailpulse.probes.status import ProbeState, RunHistory, probes_section

log = structlog.get_logger(__name__)
EXPIRE_EVERY = 10.0  # seconds between purges of pending probes past their late window
OVERDUE_SLACK = 60.0  # on top of two intervals and the deadline: the scheduler's own jitter and load


@dataclass
class Parts:
    """Everything a probe run needs, built once from the config (shared by ``run`` and ``probe --once``)."""

    config: ProbesConfig
    metrics: ProbeMetrics
    registry: Registry
    watchers: dict[str, MailboxWatcher]  # by target name (targets sharing a login share a watcher)
    runner: ProbeRunner

    @property
    def unique_watchers(self) -> list[MailboxWatcher]:
        return list({id(w): w for w in self.watchers.values()}.values())


def build_parts(config: ProbesConfig, lock: threading.Lock | None = None, targets: Iterable[str] | None = None,
                metrics: ProbeMetrics | None = None, capabilities: Capabilities | None = None) -> Parts:  # fmt: skip
    assert config.secret is not None, "parse_probes requires the secret"
    key = config.secret.value.encode()
    # The CLI registers every config secret already; an embedding that builds the service directly
    # (tests, other entry points) must not leak them to aioimaplib's DEBUG lines either.
    passwords = [r.password for r in config.routes] + [t.password for t in config.targets]
    for secret in (config.secret, *passwords):
        if secret is not None:
            register_secret(secret.value)
    wanted = set(targets) if targets is not None else {p.target for p in config.probes}
    groups: dict[tuple[str, int, str], list[TargetConfig]] = {}
    for target in config.targets:
        if target.name in wanted:
            groups.setdefault((target.host, target.port, target.username), []).append(target)
    names = [group[0].name for group in groups.values()]
    if metrics is None:
        metrics = ProbeMetrics(config, lock, mailboxes=names)
    else:
        metrics.reconfigure(config, names)
    registry = Registry()
    watchers: dict[str, MailboxWatcher] = {}
    for group in groups.values():
        first = group[0]
        late = max((p.late_window for p in config.probes if p.target in {t.name for t in group}), default=3600.0)
        tokens = TokenSource(first.oauth2) if first.oauth2 is not None else None
        watcher = MailboxWatcher(first.name, first, key, registry, metrics, late_window=late,
                                 sweep_interval=config.sweep_interval, tokens=tokens,
                                 location=config.location)  # fmt: skip
        for target in group:
            watchers[target.name] = watcher
    senders = {r.name: Sender(r, TokenSource(r.oauth2) if r.oauth2 is not None else None) for r in config.routes}
    runner = ProbeRunner(config, key=key, registry=registry, watchers=watchers, senders=senders,
                         dkim=DkimChecker(config.dns), on_late=metrics.late_arrival,
                         correlator=Correlator(config.correlation, capabilities))  # fmt: skip
    registry.on_late = runner.late
    return Parts(config, metrics, registry, watchers, runner)


def first_delays(probes: Iterable[ProbeConfig], start_jitter: float, rng: random.Random) -> dict[str, float]:
    """Seconds from the start to the first run of each probe: 1 s plus a uniform share of the start jitter,
    never more than the probe's interval (a probe must not wait longer for its first run than between runs)."""
    return {p.name: 1.0 + rng.uniform(0.0, min(start_jitter, p.interval)) for p in probes}


class ProbeService:
    families = FAMILIES

    def __init__(self, config: ProbesConfig, lock: threading.Lock, state_file: str | None,
                 metrics: ProbeMetrics | None = None, history: RunHistory | None = None,
                 now: Callable[[], float] = time.time, rng: random.Random | None = None,
                 capabilities: Capabilities | None = None) -> None:  # fmt: skip
        self.config = config
        self.rng = rng or random.Random()  # noqa: S311 - spreading starts, not crypto
        self.parts = build_parts(config, lock, metrics=metrics, capabilities=capabilities)
        self.metrics = self.parts.metrics
        self.history = history if history is not None else RunHistory()
        with self.metrics.lock:
            self.history.keep(p.name for p in config.probes)
        # a late arrival is counted by the metrics and listed among the last runs (after the run it was lost in)
        self.parts.runner.on_late = self._late
        self._now = now
        self.started = now()  # a probe is overdue only counting from here (the state file may be old)
        self.state_file = state_file
        self._restored = state.load(state_file) if state_file else {}
        self.metrics.restore(self._restored.get("probes") or {})

    def collect(self) -> Iterable[Metric]:
        return self.metrics.collect()

    def health(self) -> Health:
        """For /health: degraded while a mailbox cannot be watched (mailpulse cannot see arrivals); each
        probe's last outcome is shown but not judged (a lost probe is what the probes are there to find)."""
        mailboxes: dict[str, dict[str, str]] = {}
        for watcher in self.parts.unique_watchers:
            error = watcher.error
            entry = {"status": "ok" if watcher.up else ("down" if error is not None else "starting")}
            if not watcher.up and error is not None:
                entry["reason"] = error.reason  # a bounded enum, never the server's text
            mailboxes[watcher.name] = entry
        outcomes = self.metrics.last_outcomes()
        probes = {p.name: outcomes.get(p.name, "pending") for p in self.config.probes}
        with self.metrics.lock:
            overdue = self.overdue()
        ok = all(m["status"] != "down" for m in mailboxes.values()) and not overdue
        return Health(ok, {"status": "ok" if ok else "degraded", "mailboxes": mailboxes, "probes": probes,
                           "failing": sorted(p for p, o in probes.items() if o == "failed"),
                           "overdue": overdue})  # fmt: skip

    def _states(self) -> dict[str, ProbeState]:
        """Each probe's gauges (call under the lock)."""
        c = self.metrics.counters
        out = {}
        for probe in self.config.probes:
            key = (probe.name,)
            out[probe.name] = ProbeState(
                success=bool(c[SUCCESS].get(key, 0.0)), last_run=c[LAST_RUN].get(key, 0.0),
                last_success=c[LAST_SUCCESS].get(key, 0.0), consecutive_failures=int(c[CONSECUTIVE].get(key, 0.0)),
            )  # fmt: skip
        return out

    def overdue(self) -> list[str]:
        """Probes with no outcome for two intervals plus the deadline (and some slack), counted from the later
        of their last outcome and this service's start: the scheduler is stuck, a fault of mailpulse itself
        (unlike a failing probe). Call under the lock."""
        now, states = self._now(), self._states()
        late = []
        for probe in self.config.probes:
            since = max(states[probe.name].last_run, self.started)
            if now - since > 2 * probe.interval + probe.deadline + OVERDUE_SLACK:
                late.append(probe.name)
        return late

    def status(self) -> StatusSection:
        """The probes' section of the status page (called under the lock)."""
        return probes_section(self.config, self._states(), self.history, self.parts.unique_watchers,
                              self.overdue(), self._now())  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        self.parts.runner.want_scans()  # every feature is configured now: ask rspamd's for our verdicts
        self._restore_pending()
        watcher_stop = asyncio.Event()
        watchers = [asyncio.create_task(w.run(watcher_stop)) for w in self.parts.unique_watchers]
        scheduler = AsyncIOScheduler()
        delays = first_delays(self.config.probes, self.config.start_jitter, self.rng)
        start = datetime.now().astimezone()
        for probe in self.config.probes:
            first = start + timedelta(seconds=delays[probe.name])
            scheduler.add_job(
                self._job, IntervalTrigger(seconds=probe.interval, jitter=probe.jitter or None), args=[probe.name],
                id=probe.name, name=f"probe {probe.name}", max_instances=1, coalesce=True,
                misfire_grace_time=max(1, int(probe.interval / 2)), next_run_time=first,
            )  # fmt: skip
        scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        scheduler.start()
        log.info("probes scheduled", probes=len(self.config.probes), mailboxes=len(watchers))
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), EXPIRE_EVERY)
                if self.parts.registry.expire():
                    self._save()
        finally:
            scheduler.shutdown(wait=False)
            watcher_stop.set()
            _, running = await asyncio.wait(watchers, timeout=10) if watchers else (set(), set())
            for task in running:
                task.cancel()
            self._save()

    async def _job(self, name: str) -> None:
        probe = next(p for p in self.config.probes if p.name == name)
        try:
            result = await self.parts.runner.run(probe)
        except asyncio.CancelledError:
            return  # shutting down: no outcome for this run
        self.record(result)

    def record(self, result: ProbeResult) -> None:
        log_result(result)
        self.metrics.record(result)
        self.metrics.timeline(result.probe, result.timeline, delivered=result.delivered)
        with self.metrics.lock:
            self.history.add(result)
        self._save()

    def _late(self, result: ProbeResult) -> None:
        self.metrics.late_arrival(result)
        with self.metrics.lock:
            self.history.add(result)

    def _skipped(self, event: Any) -> None:
        self.metrics.skipped(str(event.job_id))

    def _save(self) -> None:
        if self.state_file:
            state.save(self.state_file, self.metrics.dump(), self.parts.registry.snapshot())

    def _restore_pending(self) -> None:
        known = {p.name: p for p in self.config.probes}
        for entry in state.pending_entries(self._restored):
            probe = known.get(str(entry.get("probe")))
            if probe is None or probe.target not in self.parts.watchers:
                continue
            watcher = self.parts.watchers[probe.target]
            self.parts.registry.restore(entry["token"], probe.name, watcher.name, str(entry.get("kind", "imap")),
                                        float(entry["accepted_at"]), probe.late_window)  # fmt: skip
