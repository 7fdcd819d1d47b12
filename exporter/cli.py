"""Command line: ``mailpulse run | check-config | scan | probe``; ``--help`` describes each.

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
        epilog="Run `mailpulse COMMAND --help` for a command's options. Docs: README.md and docs/.",
    )
    parser.add_argument("--version", action="version", version=f"mailpulse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip

    run = command("run", "run the daemon: tail logs, run probes, serve /metrics", RUN_DESCRIPTION)
    run.add_argument("-c", "--config", required=True, help="YAML config file")

    check = command("check-config", "check a config file and whether it can run here, then exit", CHECK_DESCRIPTION)
    check.add_argument("-c", "--config", required=True, help="YAML config file")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 78)")
    check.add_argument("--config-only", action="store_true",
                       help="only validate the file, not whether it can run here (paths, port, postqueue)")  # fmt: skip

    scan = command("scan", "read log files to the end and print metrics (or --summary)", SCAN_DESCRIPTION)
    scan.add_argument("--postfix", nargs="+", default=[], metavar="FILE", help="Postfix logs (plain or .gz)")
    scan.add_argument("--rspamd", nargs="+", default=[], metavar="FILE", help="rspamd logs (plain or .gz)")
    scan.add_argument("--summary", action="store_true", help="print a human report instead of metrics")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    scan.add_argument("-c", "--config", help="use the postfix/rspamd settings of this config file")

    probe = command("probe", "run end-to-end delivery probes once and print the results", PROBE_DESCRIPTION)
    probe.add_argument("-c", "--config", required=True, help="YAML config file")
    probe.add_argument("--probe", action="append", default=[], metavar="NAME", help="only this probe (repeatable)")
    probe.add_argument("--once", action="store_true",
                       help="accepted for compatibility: every `mailpulse probe` runs each probe once")  # fmt: skip
    probe.add_argument("--timeout", type=float, default=None, help="overall time limit in seconds")
    return parser


RUN_DESCRIPTION = """\
Run the daemon in the foreground: follow the configured logs, collect the Postfix queue, run the
probes on their schedules and serve /metrics and /health. SIGHUP re-reads the config (a broken file is
refused and the old one kept), SIGTERM stops cleanly. Exit status 78 when the config or its state
directory cannot be used, 1 when the listen address is taken."""

CHECK_DESCRIPTION = """\
Validate the config file (every problem with its key path), then check that it can run here, as the
user running this command: the state directory is writable, the log files exist and are readable,
the listen address is free, postqueue works. Run it as the daemon's user (sudo -u mailpulse ...).

exit status:
  0   usable (warnings, if any, are printed: e.g. a log file that does not exist yet)
  78  not usable: an invalid file, or an error found on this machine (or a warning, with --strict)"""

SCAN_DESCRIPTION = """\
Read Postfix and/or rspamd log files (plain or .gz) to the end with the daemon's parsers and print
the same metric families the daemon would export for them, or with --summary a pflogsumm-style
report. Nothing is saved: scan keeps no offsets."""

PROBE_DESCRIPTION = """\
Run the configured end-to-end probes (all, or those named with --probe) once, at the same time, and
print one JSON line per probe as it finishes. The daemon (`mailpulse run`) schedules probes itself;
this command is for trying a config and for Nagios-style checks.

exit status:
  0   every selected probe was delivered within its deadline
  1   at least one was lost, late or failed
  2   no probes configured, or an unknown --probe name
  78  invalid config"""


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args, out, err)
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


def _check_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from exporter.preflight import ERROR, check_all, whoami  # noqa: PLC0415

    path = args.config
    config = _load(path, err)
    if config is None:
        return EX_CONFIG
    probes = config.probes
    n_probes = len(getattr(probes, "probes", ())) if probes is not None else 0
    findings = [] if args.config_only else check_all(config)
    for finding in findings:
        err.write(f"  {finding}\n")
    errors = sum(f.level == ERROR for f in findings)
    warnings = len(findings) - errors
    if errors or (warnings and args.strict):
        err.write(f"mailpulse: {path} cannot run here as {whoami()}: {errors} error(s), {warnings} warning(s)\n")
        return EX_CONFIG
    checked = "OK (file only)" if args.config_only else f"OK for {whoami()}"
    extra = f", {warnings} warning(s)" if warnings else ""
    out.write(f"{path}: {checked} ({len(config.sources)} sources, {n_probes} probes{extra})\n")
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
    from exporter.preflight import check_state_dir  # noqa: PLC0415

    # Without this a state dir the user cannot create (the default /var/lib/mailpulse, run as non-root)
    # ended in a traceback from os.makedirs.
    for finding in check_state_dir(config.state_dir):
        err.write(f"mailpulse: {finding}\n")
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
    # every `mailpulse probe` runs each probe once (`--once` is accepted, not required): the daemon is
    # what schedules probes, and a foreground scheduler without /metrics would duplicate it
    return run_probes_once(config, args.probe, out=out, timeout=args.timeout)


def console_main() -> None:
    sys.exit(main())
