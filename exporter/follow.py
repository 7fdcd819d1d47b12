"""Follow the configured logs in the background of a one-shot command (``mailpulse probe``).

The daemon tails the logs all the time; a command that runs once (a probe run, then exit) has no daemon
to ask. :func:`follow_logs` gives it the same thing for its duration: every configured log source read
from its *current end* (positions in a temporary directory: the daemon's own are never touched) into
the log features, configured as ``mailpulse run`` configures them, and yields the capabilities they
provide (the message tracker) to the command. Only the log features run (those with log formats): no
HTTP, no queue collector, not the calling command's own feature.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Sequence

from mailpulse.exporter.app import make_source
from mailpulse.exporter.capabilities import Capabilities
from mailpulse.exporter.config import Config
from mailpulse.exporter.feature import AnyFeature, Context, Service
from mailpulse.exporter.metrics.sources import SourcesAggregator
from mailpulse.exporter.pipeline import Format

STOP_WAIT = 10.0


@contextlib.asynccontextmanager
async def follow_logs(config: Config, features: Sequence[AnyFeature], *,
                      skip: str = "") -> AsyncIterator[Capabilities]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mailpulse-follow-") as state_dir:
        os.makedirs(os.path.join(state_dir, "offsets"))
        followed = dataclasses.replace(config, state_dir=state_dir)
        lock = threading.Lock()
        capabilities = Capabilities()
        context = Context(lock, state_dir, capabilities)
        formats: dict[str, Format] = {}
        services: list[Service] = []
        for feature in features:
            if feature.name == skip or not feature.format_names:
                continue
            section = followed.section(feature)
            for fmt in feature.formats(section):
                formats[fmt.name] = fmt
            services.extend(feature.configure(section, context))
        sources = SourcesAggregator()
        for src in followed.sources:
            if all(f in formats for f in src.formats):
                services.append(make_source(dataclasses.replace(src, start_at="end"), formats, followed, sources,
                                            lock))  # fmt: skip
        stop = asyncio.Event()
        tasks = [asyncio.create_task(service.run(stop)) for service in services]
        try:
            yield capabilities
        finally:
            stop.set()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=STOP_WAIT)
                for task in pending:
                    task.cancel()
