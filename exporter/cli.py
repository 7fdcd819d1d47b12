"""Command line: ``mailpulse run | check-config | scan`` and the commands features add (``probe``).

``main(argv, features) -> int`` is what the application shell and tests call. Heavy modules (the
daemon, the probe stack) are imported only by the commands that need them, which keeps ``scan`` quick.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import TextIO

from exporter import __version__
from exporter.config import Config
from exporter.configtools import ConfigError, Secret
from exporter.feature import AnyFeature, CommandIO, CommandRunner

EX_CONFIG = 78


def build_parser(features: Sequence[AnyFeature]) -> tuple[argparse.ArgumentParser, dict[str, CommandRunner]]:
    parser = argparse.ArgumentParser(
        prog="mailpulse",
        description="Prometheus metrics that tell whether your mail is really being delivered.",
    )
    parser.add_argument("--version", action="version", version=f"mailpulse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon: tail logs, run probes, serve /metrics")
    run.add_argument("-c", "--config", required=True, help="YAML config file")

    check = sub.add_parser("check-config", help="validate a config file and exit (78 when it is invalid)")
    check.add_argument("-c", "--config", required=True, help="YAML config file")

    scan = sub.add_parser("scan", help="read log files to the end and print metrics (or --summary)")
    for feature in features:
        for name in feature.format_names:
            scan.add_argument(f"--{name}", nargs="+", default=[], metavar="FILE", help=f"{name} logs (plain or .gz)")
    scan.add_argument("--summary", action="store_true", help="print a human report instead of metrics")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    scan.add_argument("-c", "--config", help="use the parser settings of this config file")

    runners: dict[str, CommandRunner] = {}
    for feature in features:
        runners.update(feature.commands(sub))
    return parser, runners


def main(
    argv: Sequence[str] | None = None,
    *,
    features: Sequence[AnyFeature],
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser, runners = build_parser(features)
    args = parser.parse_args(argv)
    io = CommandIO(out, err, lambda path: _load(path, features, err))
    if args.command == "check-config":
        return _check_config(args.config, features, io)
    if args.command == "scan":
        return _scan(args, features, io)
    if args.command == "run":
        return _run(args.config, features, io)
    return runners[args.command](args, io)


def _load(path: str, features: Sequence[AnyFeature], err: TextIO) -> Config | None:
    from exporter.config import load_config  # noqa: PLC0415
    from exporter.logsetup import register_secret  # noqa: PLC0415

    try:
        config = load_config(path, features)
    except ConfigError as exc:
        err.write(f"mailpulse: invalid config {path}:\n")
        for problem in exc.problems:
            err.write(f"  {problem}\n")
        return None
    for secret in _secrets(config):
        register_secret(secret)
    return config


def _secrets(config: object) -> list[str]:
    """Every Secret value anywhere in the config tree (every feature's section too), so logging can scrub it."""
    found: list[str] = []
    stack: list[object] = [config]
    while stack:
        obj = stack.pop()
        if isinstance(obj, Secret):
            found.append(obj.value)
        elif is_dataclass(obj) and not isinstance(obj, type):
            stack.extend(getattr(obj, f.name) for f in fields(obj))
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(obj, Mapping):
            stack.extend(obj.values())
    return found


def _check_config(path: str, features: Sequence[AnyFeature], io: CommandIO) -> int:
    config = io.load(path)
    if config is None:
        return EX_CONFIG
    active = [f.name for f in features if f.active(config.section(f))]
    io.out.write(f"{path}: OK ({len(config.sources)} sources; features: {', '.join(active) or 'none'})\n")
    return 0


def _scan(args: argparse.Namespace, features: Sequence[AnyFeature], io: CommandIO) -> int:
    from exporter.scan import scan  # noqa: PLC0415

    jobs = [(name, path) for f in features for name in f.format_names for path in getattr(args, name)]
    if not jobs:
        names = " and/or ".join(f"--{n} FILE..." for f in features for n in f.format_names)
        io.err.write(f"mailpulse scan: give {names}\n")
        return 2
    sections = None
    if args.config:
        config = io.load(args.config)
        if config is None:
            return EX_CONFIG
        sections = config.sections
    return scan(jobs, features, sections, summary=args.summary, progress=not args.no_progress, out=io.out, err=io.err)


def _run(path: str, features: Sequence[AnyFeature], io: CommandIO) -> int:
    from exporter.app import App  # noqa: PLC0415
    from exporter.logsetup import configure_logging  # noqa: PLC0415

    config = io.load(path)
    if config is None:
        return EX_CONFIG
    configure_logging(config.log.level, config.log.format)
    return asyncio.run(App(config, features).run())
