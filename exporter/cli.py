"""Command line: ``mailpulse run | check-config | scan | probe``.

``main(argv) -> int`` is what tests call; ``console_main`` is the installed script. Heavy modules (the
probe stack) are imported only by the commands that need them, which keeps ``scan`` small and quick.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from exporter import __version__
from exporter.configtools import ConfigError

EX_CONFIG = 78


def build_parser() -> argparse.ArgumentParser:
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
    scan.add_argument("--postfix", nargs="+", default=[], metavar="FILE", help="Postfix logs (plain or .gz)")
    scan.add_argument("--rspamd", nargs="+", default=[], metavar="FILE", help="rspamd logs (plain or .gz)")
    scan.add_argument("--summary", action="store_true", help="print a human report instead of metrics")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    scan.add_argument("-c", "--config", help="use the postfix/rspamd settings of this config file")

    probe = sub.add_parser("probe", help="run end-to-end delivery probes")
    probe.add_argument("-c", "--config", required=True, help="YAML config file")
    probe.add_argument("--probe", action="append", default=[], metavar="NAME", help="only this probe (repeatable)")
    probe.add_argument("--once", action="store_true", help="run each probe once, print JSON lines, exit")
    probe.add_argument("--timeout", type=float, default=None, help="overall time limit in seconds")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.config, out, err)
    if args.command == "scan":
        return _scan(args, out, err)
    if args.command == "run":
        return _run(args.config, err)
    if args.command == "probe":
        return _probe(args, out, err)
    return 2  # pragma: no cover - argparse enforces the choices


def _load(path: str, err: TextIO):  # type: ignore[no-untyped-def]
    from exporter.config import load_config  # noqa: PLC0415
    from exporter.logsetup import register_secret  # noqa: PLC0415

    try:
        config = load_config(path)
    except ConfigError as exc:
        err.write(f"mailpulse: invalid config {path}:\n")
        for problem in exc.problems:
            err.write(f"  {problem}\n")
        return None
    for secret in _secrets(config):
        register_secret(secret)
    return config


def _secrets(config: object) -> list[str]:
    """Every Secret value anywhere in the config tree, so logging can scrub it."""
    from dataclasses import fields, is_dataclass  # noqa: PLC0415

    from exporter.configtools import Secret  # noqa: PLC0415

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
        elif isinstance(obj, dict):
            stack.extend(obj.values())
    return found


def _check_config(path: str, out: TextIO, err: TextIO) -> int:
    config = _load(path, err)
    if config is None:
        return EX_CONFIG
    probes = config.probes
    n_probes = len(getattr(probes, "probes", ())) if probes is not None else 0
    out.write(f"{path}: OK ({len(config.sources)} sources, {n_probes} probes)\n")
    return 0


def _scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from exporter.logsetup import configure_logging  # noqa: PLC0415
    from exporter.scan import scan  # noqa: PLC0415

    # warnings (a line that made a rule fail) go to stderr: stdout carries the metrics
    configure_logging("warning", "console", stream=err)
    if not args.postfix and not args.rspamd:
        err.write("mailpulse scan: give --postfix FILE... and/or --rspamd FILE...\n")
        return 2
    postfix_cfg = rspamd_cfg = None
    if args.config:
        config = _load(args.config, err)
        if config is None:
            return EX_CONFIG
        postfix_cfg, rspamd_cfg = config.postfix.parser, config.rspamd
    return scan(
        args.postfix, args.rspamd, summary=args.summary, progress=not args.no_progress, out=out, err=err,
        postfix_config=postfix_cfg, rspamd_config=rspamd_cfg,
    )  # fmt: skip


def _run(path: str, err: TextIO) -> int:
    from exporter.app import App  # noqa: PLC0415
    from exporter.logsetup import configure_logging  # noqa: PLC0415

    config = _load(path, err)
    if config is None:
        return EX_CONFIG
    configure_logging(config.log.level, config.log.format)
    probe_factory = None
    if config.probes is not None:
        from probes.service import make_probe_service  # noqa: PLC0415

        probe_factory = make_probe_service
    return asyncio.run(App(config, probe_factory=probe_factory).run())


def _probe(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from exporter.logsetup import configure_logging  # noqa: PLC0415
    from probes.cli import run_probes_once  # noqa: PLC0415

    config = _load(args.config, err)
    if config is None:
        return EX_CONFIG
    configure_logging(config.log.level, config.log.format)
    if not args.once:
        err.write("mailpulse probe: only --once is supported here; `mailpulse run` schedules probes\n")
        return 2
    return run_probes_once(config, args.probe, out=out, timeout=args.timeout)


def console_main() -> None:
    sys.exit(main())
