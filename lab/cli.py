"""`lab/mail-lab`: bring a loopback mail lab up and down, drive traffic, capture fixtures."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from lab import lifecycle, packages
from lab.layout import Paths

REPO = Path(__file__).resolve().parents[1]
CURRENT = REPO / ".lab" / "current"
DEFAULT_FIXTURES = str(REPO / "tests" / "fixtures" / "lab")  # symlink to the lab dir used when --dir is not given


def _log(msg: str) -> None:
    print(f"[mail-lab] {msg}", file=sys.stderr, flush=True)


def _default_dir(create: bool) -> Path:
    """--dir omitted: the lab `up` created last (.lab/current), else a fresh temporary directory."""
    if CURRENT.is_symlink() and CURRENT.resolve().is_dir():
        return CURRENT.resolve()
    if not create:
        raise SystemExit("no --dir given and no current lab (.lab/current); run `lab/mail-lab up` first")
    root = Path(tempfile.mkdtemp(prefix="mail-lab-"))
    CURRENT.parent.mkdir(exist_ok=True)
    CURRENT.unlink(missing_ok=True)
    CURRENT.symlink_to(root)
    return root


def _dir(args: argparse.Namespace, create: bool = False) -> Path:
    return Path(args.dir).absolute() if args.dir else _default_dir(create)


def cmd_up(args: argparse.Namespace) -> int:
    root = _dir(args, create=True)
    lab, t = lifecycle.up(
        root, args.port_base, args.dkim, install=not args.no_install, log=_log, log_mode=args.log_mode
    )
    _log(
        f"lab up in {root} (port base {lab.ports.base}, DKIM by {lab.dkim_mode}): packages "
        f"{t.packages_s:.2f}s, prepare {t.prepare_s:.2f}s, start+ready {t.start_s:.2f}s, "
        f"total {t.total_s:.2f}s"
        + (f"; started {','.join(t.started)}" if t.started else "")
        + (f"; restarted {','.join(t.restarted)}" if t.restarted else "")
    )
    _log(f"env: {lab.paths.env}   mailpulse config: {lab.paths.mailpulse_yaml}")
    if args.json:
        print(
            json.dumps(
                {
                    "dir": str(root),
                    "port_base": lab.ports.base,
                    "packages_s": t.packages_s,
                    "prepare_s": t.prepare_s,
                    "start_s": t.start_s,
                    "total_s": t.total_s,
                    "started": t.started,
                    "restarted": t.restarted,
                }
            )
        )
    else:
        print(root)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    root = _dir(args)
    left = lifecycle.down(root, log=_log)
    if left:
        _log(f"could not stop: {left}")
        return 1
    if args.purge:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    if CURRENT.is_symlink() and (args.purge or not CURRENT.resolve().exists()):
        CURRENT.unlink()
    _log(f"lab in {root} is down")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    root = _dir(args)
    rows = lifecycle.status(root)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows]))
    else:
        for r in rows:
            print(f"{r.name:14} {'ready' if r.ready else ('running' if r.pid else 'stopped'):8} pid={r.pid}")
    return 0 if rows and all(r.ready for r in rows) else 3


def cmd_env(args: argparse.Namespace) -> int:
    sys.stdout.write(Paths(_dir(args)).env.read_text())
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    secs = packages.install(log=_log)
    _log(f"packages ready (apt {secs:.2f}s)")
    return 0


def cmd_traffic(args: argparse.Namespace) -> int:
    from lab.traffic import run

    report = run(Paths(_dir(args)).env, scale=args.scale, log=_log)
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Install, bring the lab up, then run mailpulse on the lab's config in the foreground."""
    root = _dir(args, create=True)
    lab, t = lifecycle.up(root, args.port_base, install=True, log=_log)
    mailpulse = REPO / ".venv" / "bin" / "mailpulse"
    if not mailpulse.exists():
        _log(f"lab up in {root}, but {mailpulse} is missing: run scripts/setup first")
        return 1
    _log(f"lab up in {t.total_s:.1f}s; metrics will be at http://127.0.0.1:{lab.ports.metrics}/metrics")
    _log(f"send traffic from another shell: lab/mail-lab traffic --dir {root}")
    return _exec([str(mailpulse), "run", "--config", str(lab.paths.mailpulse_yaml)])


def _exec(argv: list[str]) -> NoReturn:
    import os

    os.execv(argv[0], argv)


def cmd_capture(args: argparse.Namespace) -> int:
    from lab.capture import capture, capture_multihost

    if args.multihost:
        out = Path(args.out) / "multihost" if args.out == DEFAULT_FIXTURES else Path(args.out)
        capture_multihost(out, scale=args.scale or 1, log=_log)
    else:
        capture(Path(args.out), port_base=args.port_base, scale=args.scale or 3, log=_log)
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mail-lab", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", help="lab directory (default: .lab/current, or a new temp dir for up)")
        return p

    up = with_dir(sub.add_parser("up", help="install, configure and start a lab (idempotent)"))
    up.add_argument("--port-base", type=int, help="every port is base+offset (default 20000, or the lab's)")
    up.add_argument("--dkim", choices=["rspamd", "opendkim"], help="DKIM signer (default rspamd)")
    up.add_argument(
        "--log-mode",
        choices=["per-host", "central"],
        help="per-host: one maillog per Postfix instance (default); central: all instances in one file "
        "(default from MAILPULSE_LAB_LOG_MODE, else the lab's)",
    )
    up.add_argument("--no-install", action="store_true", help="fail instead of running apt-get")
    up.add_argument("--json", action="store_true", help="print timings as JSON")
    up.set_defaults(func=cmd_up)
    down = with_dir(sub.add_parser("down", help="stop every process of the lab"))
    down.add_argument("--purge", action="store_true", help="also delete the lab directory")
    down.set_defaults(func=cmd_down)
    st = with_dir(sub.add_parser("status", help="show the lab's services (exit 0 if all ready)"))
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    with_dir(sub.add_parser("env", help="print lab.env")).set_defaults(func=cmd_env)
    sub.add_parser("install", help="only install the Debian packages").set_defaults(func=cmd_install)
    tr = with_dir(sub.add_parser("traffic", help="send known traffic, print a JSON report"))
    tr.add_argument("--scale", type=int, default=1, help="repeat every kind this many times")
    tr.add_argument("--output", help="also write the report to this file")
    tr.set_defaults(func=cmd_traffic)
    demo = with_dir(sub.add_parser("demo", help="up, then run mailpulse on the lab (foreground)"))
    demo.add_argument("--port-base", type=int)
    demo.set_defaults(func=cmd_demo)
    cap = sub.add_parser("capture-fixtures", help="fresh lab + traffic, copy logs to tests/fixtures/lab")
    cap.add_argument("--out", default=DEFAULT_FIXTURES)
    cap.add_argument("--port-base", type=int, default=None)
    cap.add_argument("--scale", type=int, default=None, help="default 3 (1 with --multihost)")
    cap.add_argument(
        "--multihost",
        action="store_true",
        help="per-host and central logs of the multi-host topology (default --out: tests/fixtures/lab/multihost)",
    )
    cap.set_defaults(func=cmd_capture)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (lifecycle.LabError, packages.PackageError, TimeoutError, ValueError) as exc:
        _log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
