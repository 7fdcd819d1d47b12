"""The probes feature: the ``probes:`` section, the probe scheduler and mailbox watchers, ``mailpulse probe``.

The metrics object lives as long as the feature (the process): on a reload the service is rebuilt from
the new section, counters of probes that are still configured go on, removed ones disappear.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence

from exporter.configtools import Node
from exporter.feature import CommandIO, CommandRunner, Context, Feature, Health, Part, Service
from probes.config import KEY_DOCS, ProbesConfig, parse_probes
from probes.metrics import FAMILIES, ProbeMetrics
from probes.service import ProbeService


class Probes(Feature[ProbesConfig | None]):
    name = "probes"
    title = "End-to-end probes"
    section = ("probes",)
    families = FAMILIES
    standalone = True
    key_docs = KEY_DOCS

    def __init__(self) -> None:
        self._metrics: ProbeMetrics | None = None
        self.service: ProbeService | None = None

    def parse_config(self, node: Node) -> ProbesConfig | None:
        return parse_probes(node)

    def absent(self) -> ProbesConfig | None:
        return None

    def active(self, config: ProbesConfig | None) -> bool:
        return config is not None

    def configure(self, config: ProbesConfig | None, context: Context) -> Sequence[Service]:
        if config is None:
            self.service = None
            return ()
        self.service = self.build(config, context)
        return (self.service,)

    def build(self, config: ProbesConfig, context: Context) -> ProbeService:
        """A service for ``config``; the metrics object is the feature's, so counters survive a rebuild."""
        service = ProbeService(config, context.lock, os.path.join(context.state_dir, "probes.json"), self._metrics)
        self._metrics = service.metrics
        return service

    def parts(self) -> Sequence[Part]:
        return (self.service,) if self.service is not None else ()

    def health(self) -> Health | None:
        if self.service is None:
            return None
        return self.service.health()

    def commands(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Mapping[str, CommandRunner]:
        probe = sub.add_parser(
            "probe", help="run end-to-end delivery probes",
            description="Run the configured probes once and print one JSON line per probe.",
        )  # fmt: skip
        probe.add_argument("-c", "--config", required=True, help="YAML config file")
        probe.add_argument("--probe", action="append", default=[], metavar="NAME", help="only this probe (repeatable)")
        probe.add_argument("--once", action="store_true", help="run each probe once, print JSON lines, exit")
        probe.add_argument("--timeout", type=float, default=None, help="overall time limit in seconds")
        return {"probe": self._probe}

    def _probe(self, args: argparse.Namespace, io: CommandIO) -> int:
        from exporter.logsetup import configure_logging  # noqa: PLC0415
        from probes.cli import run_probes_once  # noqa: PLC0415

        config = io.load(args.config)
        if config is None:
            return 78
        configure_logging(config.log.level, config.log.format)
        if not args.once:
            io.err.write("mailpulse probe: only --once is supported here; `mailpulse run` schedules probes\n")
            return 2
        return run_probes_once(config.section(self), args.probe, out=io.out, timeout=args.timeout)
