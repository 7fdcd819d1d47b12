"""The probes feature: the ``probes:`` section, the probe scheduler and mailbox watchers, ``mailpulse probe``.

The metrics object lives as long as the feature (the process): on a reload the service is rebuilt from
the new section, counters of probes that are still configured go on, removed ones disappear.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mailpulse.exporter.configtools import Node
from mailpulse.exporter.feature import CommandIO, CommandRunner, Context, Feature, Health, Part, Service
from mailpulse.exporter.status import StatusSection
from mailpulse.probes.config import KEY_DOCS, ProbesConfig, parse_probes
from mailpulse.probes.metrics import FAMILIES, LABEL_SETS, ProbeMetrics
from mailpulse.probes.status import RunHistory

if TYPE_CHECKING:  # the scheduler and the SMTP/IMAP stack load only when probes run
    from mailpulse.probes.service import ProbeService

PROBE_DESCRIPTION = """\
Run the configured end-to-end probes (all, or those named with --probe) once, at the same time, and
print one JSON line per probe as it finishes. The daemon (`mailpulse run`) schedules probes itself;
this command is for trying a config and for Nagios-style checks.

exit status:
  0   every selected probe was delivered within its deadline
  1   at least one was lost, late or failed
  2   no probes configured, or an unknown --probe name
  78  invalid config"""


class Probes(Feature[ProbesConfig | None]):
    name = "probes"
    title = "End-to-end probes"
    section = ("probes",)
    families = FAMILIES
    label_sets = LABEL_SETS
    standalone = True
    key_docs = KEY_DOCS

    def __init__(self) -> None:
        self._metrics: ProbeMetrics | None = None
        self._history = RunHistory()  # the last runs shown on the status page survive a reload
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
        from mailpulse.probes.service import ProbeService  # noqa: PLC0415

        service = ProbeService(config, context.lock, os.path.join(context.state_dir, "probes.json"), self._metrics,
                               self._history, capabilities=context.capabilities)  # fmt: skip
        self._metrics = service.metrics
        return service

    def parts(self) -> Sequence[Part]:
        return (self.service,) if self.service is not None else ()

    def health(self) -> Health | None:
        if self.service is None:
            return None
        return self.service.health()

    def status(self) -> StatusSection | None:
        return self.service.status() if self.service is not None else None

    def commands(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Mapping[str, CommandRunner]:
        probe = sub.add_parser(
            "probe", help="run end-to-end delivery probes once and print the results",
            description=PROBE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        probe.add_argument("-c", "--config", required=True, help="YAML config file")
        probe.add_argument("--probe", action="append", default=[], metavar="NAME", help="only this probe (repeatable)")
        probe.add_argument("--once", action="store_true",
                           help="accepted for compatibility: every `mailpulse probe` runs each probe once")  # fmt: skip
        probe.add_argument("--timeout", type=float, default=None, help="overall time limit in seconds")
        return {"probe": self._probe}

    def _probe(self, args: argparse.Namespace, io: CommandIO) -> int:
        from mailpulse.exporter.logsetup import configure_logging  # noqa: PLC0415
        from mailpulse.probes.cli import run_probes_once  # noqa: PLC0415

        config = io.load(args.config)
        if config is None:
            return 78
        configure_logging(config.log.level, config.log.format)
        # every `mailpulse probe` runs each probe once (`--once` is accepted, not required): the daemon is
        # what schedules probes, and a foreground scheduler without /metrics would duplicate it
        # with the Postfix logs in the config, follow them while the probes run: each run gets its timeline
        follow = None
        if io.follow is not None and config.sources:
            follow = io.follow(config, self.name)
        return run_probes_once(config.section(self), args.probe, out=io.out, timeout=args.timeout, follow=follow)
