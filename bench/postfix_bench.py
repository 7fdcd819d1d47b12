#!/usr/bin/env python3
"""Benchmark mailpulse's Postfix pipeline against the tools admins use today, in one run.

    sudo bench/postfix-bench              # installs the peers if missing, builds the input, prints a table

Input: the 2-day real server log repeated 133 times (1,002,022 lines), built in bench/out/.
Tools, each measured as CPU seconds (user + system) and peak RSS of its own process:

* ``mailpulse scan`` (the same code path as the daemon; output discarded);
* Debian's prometheus-postfix-exporter (kumina 0.3.0): it only tails from the end, so it is started on an
  empty file, the input is appended, and its CPU time is read from /proc until it stops growing;
* mtail with Debian's /usr/share/doc/mtail/examples/postfix.mtail, ``--one_shot`` on 127.0.0.1;
* pflogsumm.

Each tool runs ``--runs`` times and the fastest run is reported (the machine shares its cores).
This is a benchmark, not a test: it prints measured figures and judges nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "real_server_2day.log"
MTAIL_PROG = Path("/usr/share/doc/mtail/examples/postfix.mtail")
PEER_PACKAGES = ("prometheus-postfix-exporter", "mtail", "pflogsumm")


@dataclass
class Result:
    tool: str
    cpu: float
    rss_mb: float
    note: str = ""


def build_input(corpus: Path, copies: int, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = corpus.read_bytes()
    if not out.exists() or out.stat().st_size != len(data) * copies:
        with out.open("wb") as fh:
            for _ in range(copies):
                fh.write(data)
    with out.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def run_measured(argv: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, int]:
    """Run to completion; return (cpu seconds, peak RSS MB, exit status) of that child alone."""
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err[-500:]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def proc_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_mailpulse(log: Path) -> Result:
    mailpulse = shutil.which("mailpulse", path=str(ROOT / ".venv" / "bin")) or "mailpulse"
    cpu, rss, _ = run_measured([mailpulse, "scan", "--no-progress", "--postfix", str(log)])
    return Result("mailpulse scan", cpu, rss)


def bench_kumina(log: Path, work: Path) -> Result:
    tail = work / "mail.log"
    tail.write_bytes(b"")
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus-postfix-exporter",
            f"--postfix.logfile_path={tail}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--postfix.showq_path={work / 'no-such-showq'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics", 15)
        start = proc_cpu(proc.pid)
        with tail.open("ab") as out, log.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        last, still = proc_cpu(proc.pid), 0
        while still < 3:  # CPU time unchanged for 3 seconds: it has read everything
            time.sleep(1)
            now = proc_cpu(proc.pid)
            still = still + 1 if now == last else 0
            last = now
        return Result("kumina postfix_exporter 0.3.0", last - start, proc_hwm_mb(proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)


def bench_mtail(log: Path, work: Path) -> Result:
    progs = work / "progs"
    progs.mkdir(exist_ok=True)
    shutil.copy(MTAIL_PROG, progs / "postfix.mtail")
    argv = ["mtail", "--progs", str(progs), "--logs", str(log), "--one_shot", "--one_shot_format", "prometheus",
            "--address", "127.0.0.1", "--port", str(free_port())]  # fmt: skip
    cpu, rss, _ = run_measured(argv)
    return Result("mtail (Debian postfix.mtail)", cpu, rss)


def bench_pflogsumm(log: Path) -> Result:
    cpu, rss, _ = run_measured(["pflogsumm", str(log)])
    return Result("pflogsumm", cpu, rss)


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).read()
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def ensure_peers() -> None:
    missing = [
        p for p in PEER_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True, check=False).returncode
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing Debian packages {missing}; run as root so the benchmark can install them")
    # keep maintainer scripts from starting the exporter as a system service
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600",
                        *missing], check=True, env=env)  # fmt: skip
    finally:
        if created:
            policy.unlink()


def best_of(runs: int, fn: Callable[..., Result], *args: object) -> Result:
    results = [fn(*args) for _ in range(runs)]
    return min(results, key=lambda r: r.cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--copies", type=int, default=133)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("mailpulse", "kumina", "mtail", "pflogsumm"), action="append")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    only = set(args.only or ("mailpulse", "kumina", "mtail", "pflogsumm"))
    if only - {"mailpulse"}:
        ensure_peers()
    log = ROOT / "bench" / "out" / f"postfix-{args.copies}x.log"
    lines = build_input(args.corpus, args.copies, log)
    print(f"input: {log} ({lines:,} lines, {log.stat().st_size / 1e6:.0f} MB); best of {args.runs} runs each\n")
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "mailpulse" in only:
            results.append(best_of(args.runs, bench_mailpulse, log))
        if "kumina" in only:
            results.append(best_of(args.runs, bench_kumina, log, work))
        if "mtail" in only:
            results.append(best_of(args.runs, bench_mtail, log, work))
        if "pflogsumm" in only:
            results.append(best_of(args.runs, bench_pflogsumm, log))
    mine = next((r for r in results if r.tool.startswith("mailpulse")), None)
    print(f"{'tool':<32} {'CPU s':>7} {'lines/CPU-s':>12} {'peak RSS MB':>12} {'mailpulse x':>12}")
    for r in results:
        rate = lines / r.cpu if r.cpu else float("inf")
        ratio = f"{(lines / mine.cpu) / rate:.2f}" if mine and r is not mine else ""
        print(f"{r.tool:<32} {r.cpu:>7.2f} {rate:>12,.0f} {r.rss_mb:>12.1f} {ratio:>12}")
    if args.json:
        args.json.write_text(json.dumps({"lines": lines, "results": [r.__dict__ for r in results]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
