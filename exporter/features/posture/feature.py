"""The posture feature: the ``posture:`` section, its scheduled checks, ``mailpulse posture``."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mailpulse.exporter.configtools import Node
from mailpulse.exporter.feature import (
    ERROR,
    WARNING,
    CommandIO,
    CommandRunner,
    Context,
    Feature,
    Finding,
    Health,
    Part,
    Service,
)
from mailpulse.exporter.features.posture.config import KEY_DOCS, PostureConfig, parse_posture
from mailpulse.exporter.features.posture.metrics import FAMILIES, LABEL_SETS, PostureMetrics
from mailpulse.exporter.status import StatusSection

if TYPE_CHECKING:
    from mailpulse.exporter.features.posture.service import PostureService


class Posture(Feature[PostureConfig | None]):
    name = "posture"
    title = "Deliverability posture"
    section = ("posture",)
    families = FAMILIES
    label_sets = LABEL_SETS
    standalone = True
    key_docs = KEY_DOCS

    def __init__(self) -> None:
        self._metrics: PostureMetrics | None = None
        self.service: PostureService | None = None

    def parse_config(self, node: Node) -> PostureConfig | None:
        return parse_posture(node)

    def absent(self) -> PostureConfig | None:
        return None

    def active(self, config: PostureConfig | None) -> bool:
        return config is not None

    def configure(self, config: PostureConfig | None, context: Context) -> Sequence[Service]:
        if config is None:
            self.service = None
            return ()
        from mailpulse.exporter.features.posture.service import PostureService  # noqa: PLC0415

        if self._metrics is None:
            self._metrics = PostureMetrics(context.lock)
        self.service = PostureService(config, context.lock, self._metrics)
        return (self.service,)

    def parts(self) -> Sequence[Part]:
        return (self.service,) if self.service is not None else ()

    def health(self) -> Health | None:
        return self.service.health() if self.service is not None else None

    def status(self) -> StatusSection | None:
        if self.service is None or self._metrics is None:
            return None
        from mailpulse.exporter.features.posture.status import posture_section  # noqa: PLC0415

        # called under the kernel's lock, which is the metrics' lock: read ``last`` directly
        return posture_section(self.service.planned(), self._metrics.last, time.time())

    def preflight(self, config: PostureConfig | None) -> list[Finding]:
        """Key files readable as this user; the resolver answers (a warning: the checks report it too)."""
        if config is None:
            return []
        findings = self._resolver_finding(config)
        for i, domain in enumerate(config.domains):
            for j, selector in enumerate(domain.dkim):
                if selector.key_file and not os.access(selector.key_file, os.R_OK):
                    findings.append(Finding(ERROR, f"posture.domains[{i}].dkim[{j}].key_file",
                                            f"{selector.key_file} is not readable"))  # fmt: skip
        return findings

    def _resolver_finding(self, config: PostureConfig) -> list[Finding]:
        import asyncio  # noqa: PLC0415 - check-config only

        from mailpulse.exporter.features.posture.dnsq import DnsError, Resolver  # noqa: PLC0415

        name = config.domains[0].name if config.domains else "."
        resolver = Resolver(config.resolvers, config.resolver_port, config.dns_timeout, cache_seconds=0)
        try:
            asyncio.run(resolver.query(name, "SOA"))
        except DnsError as exc:
            where = f"posture.resolvers ({', '.join(config.resolvers)} port {config.resolver_port})"
            return [Finding(WARNING, where, f"{exc.reason}: {exc.detail}")]
        return []

    def commands(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Mapping[str, CommandRunner]:
        from mailpulse.exporter.features.posture.report import DESCRIPTION  # noqa: PLC0415

        cmd = sub.add_parser("posture", help="check SPF, DKIM, DMARC, MTA-STS, MX TLS, DANE, rDNS and blocklists once",
                             description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        cmd.add_argument("-c", "--config", required=True, help="YAML config file")
        cmd.add_argument("--once", action="store_true", help="accepted for clarity: the command always runs once")
        cmd.add_argument("--check", action="append", default=[], metavar="CHECK", help="only this check (repeatable)")
        cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
        return {"posture": self._posture}

    def _posture(self, args: argparse.Namespace, io: CommandIO) -> int:
        from mailpulse.exporter.features.posture.report import run_report  # noqa: PLC0415

        config = io.load(args.config)
        if config is None:
            return 78
        return run_report(config.section(self), args.check, as_json=args.json, out=io.out, err=io.err)
