"""``mailpulse probe -c FILE [--probe NAME] --once``: run probes once, print one JSON line each.

All selected probes run at the same time against long-lived watchers of their mailboxes (the same
code as the daemon, without the scheduler). Each line is printed as soon as its probe has an outcome.
Exit status: 0 if every probe was delivered within its deadline, 1 otherwise, 2 for unknown probe
names; a Nagios-style check can use it as is.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TextIO

from mailpulse.exporter.capabilities import Capabilities
from mailpulse.probes.config import ProbeConfig, ProbesConfig
from mailpulse.probes.outcome import ProbeResult
from mailpulse.probes.runner import log_result
from mailpulse.probes.service import build_parts

STOP_GRACE = 10.0  # time the watchers get to finish a cleanup in progress
FOLLOW_START = 0.5


def run_probes_once(probes_config: ProbesConfig | None, only: Sequence[str], *, out: TextIO,
                    timeout: float | None,
                    follow: AbstractAsyncContextManager[Capabilities] | None = None) -> int:  # fmt: skip
    if probes_config is None or not probes_config.probes:
        out.write(json.dumps({"error": "no probes configured"}) + "\n")
        return 2
    known = {p.name: p for p in probes_config.probes}
    unknown = [name for name in only if name not in known]
    if unknown:
        out.write(json.dumps({"error": f"unknown probe(s): {', '.join(unknown)}",
                              "known": sorted(known)}) + "\n")  # fmt: skip
        return 2
    selected = [known[n] for n in dict.fromkeys(only)] if only else list(probes_config.probes)
    results = asyncio.run(_followed(probes_config, selected, out, timeout, follow))
    return 0 if results and all(r.delivered for r in results) else 1


async def _followed(config: Any, probes: list[ProbeConfig], out: TextIO, timeout: float | None,
                    follow: AbstractAsyncContextManager[Capabilities] | None) -> list[ProbeResult]:  # fmt: skip
    if follow is None:
        return await _run(config, probes, out, timeout, None)
    async with follow as capabilities:
        await asyncio.sleep(FOLLOW_START)  # the sources' first poll: they start at the logs' current end
        return await _run(config, probes, out, timeout, capabilities)


async def _run(config: Any, probes: list[ProbeConfig], out: TextIO, timeout: float | None,
               capabilities: Capabilities | None) -> list[ProbeResult]:  # fmt: skip
    parts = build_parts(config, targets={p.target for p in probes}, capabilities=capabilities)
    parts.runner.want_scans()
    stop = asyncio.Event()
    watchers = [asyncio.create_task(w.run(stop)) for w in parts.unique_watchers]
    tasks: dict[asyncio.Task[ProbeResult], ProbeConfig] = {asyncio.create_task(parts.runner.run(p)): p for p in probes}
    results: list[ProbeResult] = []
    try:
        for done in asyncio.as_completed(tasks, timeout=timeout):
            try:
                result = await done
            except TimeoutError:
                break
            _emit(result, out, results)
    finally:
        for task, probe in tasks.items():
            if not task.done():
                task.cancel()
                _emit(ProbeResult(probe.name, probe.route, probe.target, finished_at=time.time()).fail(
                    "internal", "error", f"--timeout {timeout}s reached"), out, results)  # fmt: skip
        stop.set()
        _, running = await asyncio.wait(watchers, timeout=STOP_GRACE) if watchers else (set(), set())
        for leftover in running:
            leftover.cancel()
        await asyncio.gather(*tasks, *watchers, return_exceptions=True)
    return results


def _emit(result: ProbeResult, out: TextIO, results: list[ProbeResult]) -> None:
    log_result(result)
    results.append(result)
    out.write(json.dumps(result.as_json(), sort_keys=False) + "\n")
    out.flush()
