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
from typing import TYPE_CHECKING, TextIO

from mailpulse.exporter import __version__
from mailpulse.exporter.configtools import ConfigError, Secret
from mailpulse.exporter.feature import AnyFeature, CommandIO, CommandRunner

if TYPE_CHECKING:  # the config loader (and PyYAML) load only for commands that read a config
    from contextlib import AbstractAsyncContextManager

    from mailpulse.exporter.capabilities import Capabilities
    from mailpulse.exporter.config import Config

EX_CONFIG = 78


def build_parser(features: Sequence[AnyFeature]) -> tuple[argparse.ArgumentParser, dict[str, CommandRunner]]:
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
    for feature in features:
        for name in feature.format_names:
            scan.add_argument(f"--{name}", nargs="+", default=[], metavar="FILE", help=f"{name} logs (plain or .gz)")
    for feature in features:
        for flag, help_text in feature.scan_inputs.items():
            scan.add_argument(f"--{flag}", nargs="+", default=[], metavar="PATH", help=help_text)
    scan.add_argument("--summary", action="store_true", help="print a human report instead of metrics")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    scan.add_argument("-c", "--config", help="use the parser settings of this config file")
    scan.add_argument("--openmetrics", action="store_true",
                      help="print OpenMetrics with the log's own timestamps (one snapshot per --step of log time "
                      "and one at the last line), for promtool tsdb create-blocks-from openmetrics")  # fmt: skip
    scan.add_argument("--step", default="1h", metavar="DURATION",
                      help="with --openmetrics: log time between snapshots (default 1h, at least 1m)")  # fmt: skip
    scan.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                      help="with --openmetrics: add this label to every sample (e.g. job=mailpulse, "
                      "instance=mx1:9947, to join the live series); repeatable")  # fmt: skip

    runners: dict[str, CommandRunner] = {}
    for feature in features:
        runners.update(feature.commands(sub))
    return parser, runners


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
report. Features add inputs of their own (--reports: DMARC, TLS-RPT and ARF report files and
directories). Nothing is saved: scan keeps no offsets.

--openmetrics prints the families at the log's own times instead (a snapshot at every --step of log
time and one at the last line, `# EOF` at the end), which `promtool tsdb create-blocks-from openmetrics`
turns into Prometheus history; see docs/backfill.md."""


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
    io = CommandIO(out, err, lambda path: _load(path, features, err),
                   lambda config, skip: _follow(config, features, skip))  # fmt: skip
    if args.command == "check-config":
        return _check_config(args, features, io)
    if args.command == "scan":
        return _scan(args, features, io)
    if args.command == "run":
        return _run(args.config, features, io)
    return runners[args.command](args, io)


def _follow(config: Config, features: Sequence[AnyFeature], skip: str) -> AbstractAsyncContextManager[Capabilities]:
    from mailpulse.exporter.follow import follow_logs  # noqa: PLC0415

    return follow_logs(config, features, skip=skip)


def _load(path: str, features: Sequence[AnyFeature], err: TextIO) -> Config | None:
    from mailpulse.exporter.config import load_config  # noqa: PLC0415
    from mailpulse.exporter.logsetup import register_secret  # noqa: PLC0415

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


def _check_config(args: argparse.Namespace, features: Sequence[AnyFeature], io: CommandIO) -> int:
    from mailpulse.exporter.feature import ERROR  # noqa: PLC0415
    from mailpulse.exporter.preflight import check_all, whoami  # noqa: PLC0415

    path = args.config
    config = io.load(path)
    if config is None:
        return EX_CONFIG
    active = [f.name for f in features if f.active(config.section(f))]
    findings = [] if args.config_only else check_all(config, features)
    for finding in findings:
        io.err.write(f"  {finding}\n")
    errors = sum(f.level == ERROR for f in findings)
    warnings = len(findings) - errors
    if errors or (warnings and args.strict):
        io.err.write(f"mailpulse: {path} cannot run here as {whoami()}: {errors} error(s), {warnings} warning(s)\n")
        return EX_CONFIG
    checked = "OK (file only)" if args.config_only else f"OK for {whoami()}"
    extra = f", {warnings} warning(s)" if warnings else ""
    io.out.write(f"{path}: {checked} ({len(config.sources)} sources; features: {', '.join(active) or 'none'}{extra})\n")
    return 0


def _scan(args: argparse.Namespace, features: Sequence[AnyFeature], io: CommandIO) -> int:
    from mailpulse.exporter.logsetup import configure_logging  # noqa: PLC0415
    from mailpulse.exporter.scan import scan  # noqa: PLC0415

    # warnings (a line that made a rule fail) go to stderr: stdout carries the metrics
    configure_logging("warning", "console", stream=io.err)
    jobs = [(name, path) for f in features for name in f.format_names for path in getattr(args, name)]
    inputs = [(f, flag, paths) for f in features for flag in f.scan_inputs if (paths := getattr(args, flag))]
    if not jobs and not inputs:
        names = " and/or ".join([*(f"--{n} FILE..." for f in features for n in f.format_names),
                                 *(f"--{flag} PATH..." for f in features for flag in f.scan_inputs)])  # fmt: skip
        io.err.write(f"mailpulse scan: give {names}\n")
        return 2
    step, labels = None, None
    if args.openmetrics:
        step, labels, problem = _backfill_options(args)
        if problem:
            io.err.write(f"mailpulse scan: {problem}\n")
            return 2
    elif args.label:
        io.err.write("mailpulse scan: --label goes with --openmetrics\n")
        return 2
    sections = None
    if args.config:
        config = io.load(args.config)
        if config is None:
            return EX_CONFIG
        sections = config.sections
    return scan(jobs, features, sections, summary=args.summary, progress=not args.no_progress, out=io.out,
                err=io.err, inputs=inputs, openmetrics_step=step, labels=labels)  # fmt: skip


def _backfill_options(args: argparse.Namespace) -> tuple[float | None, dict[str, str] | None, str]:
    """(step, labels, problem) of ``scan --openmetrics``."""
    from mailpulse.exporter.backfill import MIN_STEP, parse_labels  # noqa: PLC0415
    from mailpulse.exporter.configtools import parse_duration  # noqa: PLC0415

    if args.summary:
        return None, None, "--openmetrics and --summary exclude each other"
    try:
        step = parse_duration(args.step)
    except ValueError as exc:
        return None, None, f"--step: {exc}"
    if step < MIN_STEP:
        return None, None, f"--step: at least {MIN_STEP:g}s (got {step:g}s)"
    labels = parse_labels(args.label)
    if isinstance(labels, str):
        return None, None, labels
    return step, labels, ""


def _run(path: str, features: Sequence[AnyFeature], io: CommandIO) -> int:
    from mailpulse.exporter.app import App  # noqa: PLC0415
    from mailpulse.exporter.logsetup import configure_logging  # noqa: PLC0415

    config = io.load(path)
    if config is None:
        return EX_CONFIG
    from mailpulse.exporter.preflight import check_state_dir  # noqa: PLC0415

    # Without this a state dir the user cannot create (the default /var/lib/mailpulse, run as non-root)
    # ended in a traceback from os.makedirs.
    for finding in check_state_dir(config.state_dir):
        io.err.write(f"mailpulse: {finding}\n")
        return EX_CONFIG
    configure_logging(config.log.level, config.log.format)
    return asyncio.run(App(config, features).run())
