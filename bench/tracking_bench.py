#!/usr/bin/env python3
"""Message tracking's cost: ``mailpulse scan`` with tracking on vs off, and the daemon's RSS per in-flight message.

    .venv/bin/python bench/tracking_bench.py                 # both measurements
    .venv/bin/python bench/tracking_bench.py --only scan     # or --only rss
    .venv/bin/python bench/tracking_bench.py --only instructions --compare DIR   # valgrind, exact counts

scan: the 1M-line benchmark input of bench/postfix_bench.py (the 2-day real server log repeated 133 times),
and a variant in which every copy's queue IDs get a per-copy suffix, so that every copy's messages are new
messages to the tracker (in the plain input copy 2..133 repeat copy 1's queue IDs and timestamps, and the
tracker takes most of their lines for a replay). Each configuration runs ``--runs`` times alternately in the
same run, measured as CPU seconds of the scan process (the machine is shared: wall time says little); the
range over the runs is reported, and the cost of each repetition (on against off of the same repetition).
``--compare DIR`` adds a third configuration: tracking on with another checkout's code (before/after).

rss: a synthetic log of N messages accepted and never removed (smtpd client=, cleanup message-id, qmgr
queue active: what a message in flight has logged), read by the real daemon (``mailpulse run``) from a file
source; when /metrics says N are in flight, the daemon's VmRSS is read from /proc. Also with tracking off,
on the same file: the difference divided by N is the bytes per in-flight message.
This is a benchmark, not a test: it prints measured figures and judges nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from postfix_bench import DEFAULT_CORPUS, build_input  # noqa: E402

MAILPULSE = str(ROOT / ".venv" / "bin" / "mailpulse")
QID = re.compile(rb"(?<![0-9A-Za-z])([0-9A-F]{8,12})(?=: |\)|$)", re.M)


def unique_ids(src: Path, copies: int, out: Path) -> None:
    if out.exists() and out.stat().st_size > 0:
        return
    data = src.read_bytes()
    with out.open("wb") as fh:
        for i in range(copies):
            suffix = f"Z{i:03d}".encode()
            fh.write(QID.sub(lambda m, s=suffix: m.group(1) + s, data))  # type: ignore[misc]


def config(path: Path, tracking: bool, state_dir: Path, extra: str = "") -> Path:
    path.write_text(
        f"state_dir: {state_dir}\nsources:\n  - {{name: postfix, path: {state_dir}/unused.log}}\n"
        f"postfix:\n  tracking:\n    enabled: {str(tracking).lower()}\n"
        f"    reconcile: false\n{extra}"
    )
    return path


def scan_argv(cfg: Path, log: Path, tree: Path | None = None) -> tuple[list[str], dict[str, str] | None]:
    """``mailpulse scan`` of this worktree, or of another checkout ``tree`` (``--compare``: its code first on the
    path, run with this worktree's interpreter, in ``tree``: ``python -m`` puts the working directory first)."""
    args = ["scan", "--no-progress", "-c", str(cfg), "--postfix", str(log)]
    if tree is None:
        return [MAILPULSE, *args], None
    return [sys.executable, "-m", "mailpulse", *args], {**os.environ, "PYTHONPATH": str(tree)}


def cpu_seconds(argv: list[str], env: dict[str, str] | None) -> float:
    """Run to completion; the CPU seconds (user + system) of that child alone."""
    cwd = env["PYTHONPATH"] if env is not None else None
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"{argv} failed: {err[-500:]}")
    return usage.ru_utime + usage.ru_stime


def bench_scan(log: Path, runs: int, work: Path, compare: Path | None) -> dict[str, list[float]]:
    """CPU seconds of every run, by configuration: ``off``, ``on`` and (with ``compare``) ``before``, run one
    after the other in each repetition, so that the machine's load hits them alike."""
    on = config(work / "on.yaml", True, work)
    off = config(work / "off.yaml", False, work)
    configs: list[tuple[str, Path, Path | None]] = [("off", off, None), ("on", on, None)]
    if compare is not None:
        configs.append(("before", on, compare))
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    for _ in range(runs):
        for name, cfg, tree in configs:
            argv, env = scan_argv(cfg, log, tree)
            cpu[name].append(cpu_seconds(argv, env))
    return cpu


def instructions(log: Path, work: Path, compare: Path | None) -> dict[str, int]:
    """Instructions executed by the scan (valgrind's callgrind, whole process): exact and repeatable where CPU
    time on a shared machine is not; blind to cache misses and memory stalls, so it complements CPU time.
    ``startup``: a scan of an empty file."""
    empty = work / "empty.log"
    empty.write_bytes(b"")
    configs: list[tuple[str, bool, Path | None, Path]] = [("startup", False, None, empty), ("off", False, None, log),
                                                          ("on", True, None, log)]  # fmt: skip
    if compare is not None:
        configs.append(("before", True, compare, log))
    counts: dict[str, int] = {}
    for name, tracking, tree, path in configs:
        argv, env = scan_argv(config(work / f"{name}.yaml", tracking, work), path, tree)
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/callgrind.out", *argv],
                              capture_output=True, text=True, env=env, check=True, cwd=tree)  # fmt: skip
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-300:]}")
        counts[name] = int(found.group(1))
    return counts


def cost_range(on: list[float], off: list[float]) -> str:
    """The cost of each repetition (on / off of the same repetition), lowest to highest, and of the fastest runs."""
    costs = sorted(100.0 * (a - b) / b for a, b in zip(on, off, strict=True))
    best = 100.0 * (min(on) - min(off)) / min(off)
    return f"{costs[0]:+.0f} % to {costs[-1]:+.0f} % (fastest runs: {best:+.1f} %)"


def messages_finished(log: Path, work: Path) -> str:
    cfg = config(work / "on.yaml", True, work)
    out = subprocess.run([MAILPULSE, "scan", "--no-progress", "-c", str(cfg), "--postfix", str(log)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    total = sum(float(line.rpartition(" ")[2]) for line in out.splitlines()
                if line.startswith("mailpulse_postfix_messages_total{"))  # fmt: skip
    return format(total, ",.0f")


def inflight_log(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            qid = f"{i:010X}"
            ts = time.strftime("%b %d %H:%M:%S", time.localtime(time.time() - 3600 + i * 3600 / n))
            ts = ts[:4] + ts[4:6].replace("0", " ", 1) + ts[6:] if ts[4] == "0" else ts
            fh.write(f"{ts} mx1 postfix/smtpd[1]: {qid}: client=c{i % 97}.example[192.0.2.{i % 250}]\n"
                     f"{ts} mx1 postfix/cleanup[2]: {qid}: message-id=<{i:x}.{qid}@client.example>\n"
                     f"{ts} mx1 postfix/qmgr[3]: {qid}: from=<s{i % 1000}@example>, size=2048, nrcpt=1 "
                     "(queue active)\n")  # fmt: skip


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        body: bytes = resp.read()
        return body.decode()


def value(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rpartition(" ")[2])
    return None


def rss_run(log: Path, n: int, tracking: bool, work: Path, port: int, max_messages: int,
            tree: Path | None = None) -> float:  # fmt: skip
    state = work / f"state-{tracking}-{n}-{tree is not None}"
    state.mkdir(exist_ok=True)
    cfg = work / "run.yaml"
    cfg.write_text(
        f"state_dir: {state}\nhttp:\n  listen: 127.0.0.1:{port}\nsources:\n  - name: postfix\n    path: {log}\n"
        f"    start_at: beginning\npostfix:\n  tracking:\n    enabled: {str(tracking).lower()}\n    reconcile: false\n"
        f"    state: false\n    max_messages: {max_messages}\n"
    )
    argv, env = [MAILPULSE, "run", "-c", str(cfg)], None
    if tree is not None:
        argv, env = [sys.executable, "-m", "mailpulse", *argv[1:]], {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tree)
    try:
        deadline = time.monotonic() + 600
        lines = 3 * n
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                text = scrape(port)
            except OSError:
                continue
            parsed = value(text, 'mailpulse_log_lines_total{result="parsed",source="postfix"}') or 0
            if parsed >= lines:
                break
        else:
            raise RuntimeError("the daemon did not catch up")
        time.sleep(2)
        text = scrape(port)
        if tracking:
            inflight = value(text, "mailpulse_postfix_tracking_inflight_messages")
            assert inflight == n, (inflight, n)
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--copies", type=int, default=133)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("scan", "rss", "instructions"), action="append")
    parser.add_argument("--instruction-lines", type=int, default=150_000,
                        help="lines of each input for --only instructions (valgrind: ~1 minute per 150k)")  # fmt: skip
    parser.add_argument("--inflight", type=int, action="append", help="messages in flight (default 100k and 1M)")
    parser.add_argument("--port", type=int, default=19947)
    parser.add_argument("--compare", type=Path, help="another checkout whose tracking-on scan runs in the same "
                        "repetitions (e.g. `git archive REV | tar -x -C DIR`)")  # fmt: skip
    args = parser.parse_args()
    only = set(args.only or ("scan", "rss"))  # "instructions" only when asked: valgrind is slow
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log = out / f"postfix-{args.copies}x.log"
        unique = out / f"postfix-{args.copies}x-unique-ids.log"
        inputs = (("benchmark input", log), ("unique queue IDs per copy", unique))
        if only & {"scan", "instructions"}:
            lines = build_input(args.corpus, args.copies, log)
            unique_ids(args.corpus, args.copies, unique)
        if "scan" in only:
            for name, path in inputs:
                cpu = bench_scan(path, args.runs, work, args.compare)
                print(f"scan, {name} ({lines:,} lines; {messages_finished(path, work)} messages finished), "
                      f"{args.runs} runs, CPU s:")  # fmt: skip
                for conf, times in cpu.items():
                    line = f"  tracking {conf:6s} {min(times):.2f}-{max(times):.2f}"
                    if conf != "off":
                        line += f": {cost_range(times, cpu['off'])}"
                    print(line, flush=True)
        if "instructions" in only:
            for name, path in inputs:
                head = work / "head.log"
                with path.open("rb") as src, head.open("wb") as dst:
                    dst.writelines(islice(src, args.instruction_lines))
                counts = instructions(head, work, args.compare)
                startup = counts.pop("startup")
                print(f"scan, {name}, first {args.instruction_lines:,} lines, instructions (valgrind), the "
                      f"startup's {startup / 1e9:.3f} G subtracted:")  # fmt: skip
                base = counts["off"] - startup
                for conf, ir in counts.items():
                    extra = f": {100.0 * (ir - startup - base) / base:+.1f} %" if conf != "off" else ""
                    print(f"  tracking {conf:6s} {(ir - startup) / 1e9:.3f} G{extra}", flush=True)
        if "rss" in only:
            for n in args.inflight or [100_000, 1_000_000]:
                log = work / f"inflight-{n}.log"
                inflight_log(log, n)
                off = rss_run(log, n, False, work, args.port, n + 1000)
                on = rss_run(log, n, True, work, args.port, n + 1000)
                print(f"daemon RSS with {n:,} messages in flight: tracking on {on:.0f} MB, off {off:.0f} MB: "
                      f"{(on - off) * 1024 * 1024 / n:.0f} bytes per in-flight message", flush=True)  # fmt: skip
                if args.compare is not None:
                    before = rss_run(log, n, True, work, args.port, n + 1000, args.compare)
                    print(f"  before (--compare): tracking on {before:.0f} MB: "
                          f"{(before - off) * 1024 * 1024 / n:.0f} bytes per message", flush=True)  # fmt: skip
                os.unlink(log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
