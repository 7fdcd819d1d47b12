#!/usr/bin/env python3
"""Benchmark mailpulse's rspamd pipeline: task (verdict) lines per CPU second.

    .venv/bin/python bench/rspamd_bench.py [--lines 1000000] [--runs 3] [--corpus ../shared/corpus/rspamd_lab.log]

Input, built once in bench/out/: the lab's rspamd log (tests/fixtures/lab/rspamd.log, written by a real
rspamd 3.4) reshuffled into ~1M lines: its 111 verdict lines, repeated, with one of its other lines after
every tenth verdict (so ~9% side lines: the errors, lifecycle, greylist and noise lines of a real log).

Measured, each as the best of ``--runs`` (the machine's cores are shared), with ``time.process_time()``:

* scan: ``exporter.scan.scan([], [FILE])`` -- the whole path of ``mailpulse scan --rspamd FILE``: reading,
  decoding, splitting, parsing, counting, building the exposition (interpreter start-up excluded; the
  ``mailpulse scan`` command itself is also timed once, as CPU time of the child process);
* parse: ``RspamdParser().parse_line`` over the same lines, already in memory;
* parse, verdicts only: the same over the verdict lines alone.

With ``--corpus``, it also counts the task lines of a log independently (lines containing
``rspamd_task_write_log: ``, a plain substring test) and the verdicts mailpulse parsed from it.

This is a benchmark, not a test: it prints measured figures and judges nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailpulse.exporter.features import scan_logs as scan  # noqa: E402
from mailpulse.parsers.rspamd import RspamdParser  # noqa: E402
from mailpulse.parsers.rspamd.events import RspamdScan  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "lab" / "rspamd.log"
OUT = ROOT / "bench" / "out"
TASK = "rspamd_task_write_log: "


def build_input(lines: int, out: Path) -> tuple[int, int]:
    """Write the benchmark log; return (lines, task lines)."""
    source = FIXTURE.read_text().splitlines()
    verdicts = [line for line in source if TASK in line]
    side = [line for line in source if TASK not in line]
    body: list[str] = []
    task = si = 0
    while len(body) < lines:
        for i, line in enumerate(verdicts):
            body.append(line)
            task += 1
            if i % 10 == 9:
                body.append(side[si % len(side)])
                si += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(body) + "\n"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return len(body), task


def best(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def child_cpu(argv: list[str]) -> float:
    """CPU seconds (user + system) of a child process run to completion."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return usage.ru_utime + usage.ru_stime


def corpus_figures(path: Path) -> dict[str, int]:
    lines = path.read_text(errors="replace").splitlines()
    parser = RspamdParser()
    events = [parser.parse_line(line) for line in lines]
    return {
        "lines": len(lines),
        "task_lines_grep": sum(TASK in line for line in lines),
        "task_lines_parsed": sum(isinstance(e, RspamdScan) for e in events),
        "unparsed": sum(type(e).__name__ == "Unparsed" for e in events),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--corpus", type=Path, help="also count task lines of this log, independently and parsed")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args()

    log = OUT / "rspamd_bench.log"
    n_lines, n_task = build_input(args.lines, log)
    results: dict[str, object] = {"input": str(log), "lines": n_lines, "task_lines": n_task,
                                  "python": sys.version.split()[0]}  # fmt: skip

    scan_cpu = best(args.runs, lambda: scan([], [str(log)], progress=False, out=io.StringIO()))
    command_cpu = child_cpu([sys.executable, "-m", "mailpulse", "scan", "--no-progress", "--rspamd", str(log)])
    lines = log.read_text().splitlines()
    verdicts = [line for line in lines if TASK in line]

    def parse_all(which: list[str]) -> Callable[[], object]:
        def run() -> None:
            parse = RspamdParser().parse_line
            for line in which:
                parse(line)

        return run

    parse_cpu = best(args.runs, parse_all(lines))
    verdict_cpu = best(args.runs, parse_all(verdicts))
    results.update({
        "scan_cpu_s": round(scan_cpu, 3),
        "scan_task_lines_per_cpu_s": round(n_task / scan_cpu),
        "scan_lines_per_cpu_s": round(n_lines / scan_cpu),
        "command_cpu_s": round(command_cpu, 3),
        "command_task_lines_per_cpu_s": round(n_task / command_cpu),
        "parse_cpu_s": round(parse_cpu, 3),
        "parse_lines_per_cpu_s": round(n_lines / parse_cpu),
        "parse_verdicts_per_cpu_s": round(len(verdicts) / verdict_cpu),
    })  # fmt: skip
    if args.corpus:
        results["corpus"] = {"path": str(args.corpus), **corpus_figures(args.corpus)}

    def row(label: str, cpu: float, count: int, unit: str) -> None:
        print(f"{label:<40} {cpu:7.2f} CPU s  {count / cpu:10,.0f} {unit}/CPU s")

    print(f"input: {n_lines:,} lines, {n_task:,} task lines ({log})")
    row("scan (exporter.scan.scan, in process)", scan_cpu, n_task, "task lines")
    row("mailpulse scan --rspamd (child process)", command_cpu, n_task, "task lines")
    row("parse only, all lines", parse_cpu, n_lines, "lines")
    row("parse only, verdict lines", verdict_cpu, len(verdicts), "verdicts")
    if args.corpus:
        c = results["corpus"]
        assert isinstance(c, dict)
        print(f"corpus {c['path']}: {c['lines']} lines, task lines by substring {c['task_lines_grep']}, "
              f"parsed as verdicts {c['task_lines_parsed']}, unparsed {c['unparsed']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
