#!/usr/bin/env python3
"""Fuzz mailpulse with hostile log lines, through ``mailpulse scan`` and through the running daemon.

    .venv/bin/python bench/fuzz.py                          # 10^6 lines, seed 1, both phases
    .venv/bin/python bench/fuzz.py --lines 30000 --json out.json

The lines (deterministic for a seed): seed lines of every shape the parsers know (tests/fixtures/fuzz/*.seeds,
written for this, and the lab logs in tests/fixtures/lab/), as they are and mutated (bytes flipped into
invalid UTF-8, characters inserted, spans deleted or doubled, separators swapped, lines cut or spliced
across formats), every number replaced by hostile ones (400 digits, superscripts and other scripts' digits,
inf, nan, NUL), random bytes, and 64 KB lines. No generated line contains a newline, so "lines written"
is exact. Half go to a Postfix log, half to an rspamd log.

Phase 1 runs ``mailpulse scan`` on both files. Phase 2 starts ``mailpulse run`` on two empty files, appends
the same lines while it runs, and scrapes /metrics every ``--scrape-interval`` seconds meanwhile. Each phase
checks: the process did not crash (exit status, no traceback in its log), did not stall (the daemon
keeps making progress until every line is read), every line is accounted (parsed + unparsed + foreign
+ error == lines written, per file), and (phase 2) every scrape was answered. The exit status is 0 only if
every check passed; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "fixtures" / "fuzz"
LAB = ROOT / "tests" / "fixtures" / "lab"
RESULTS = ("parsed", "unparsed", "foreign", "error")

# What replaces a number: too big for a float, digits that str.isdigit() or int() accept but are no
# ASCII digits, float()'s specials, and damage.
NUMBERISH = [
    "9" * 400, "1" + "0" * 309, "-" + "9" * 330, "18446744073709551616", "99999999999999999999",
    "\u00b2", "1\u00b2", "\u00b3\u00b9", "\u0661\u0662\u0663", "\u06f4\u06f2", "\u0967\u0968", "\uff11\uff12",
    "\u2460", "inf", "-inf", "nan", "-nan", "Infinity", "1e999", "-1e999", "1_000", "0x1f", " 7", "+7",
    "1.2.3", ".", "", "\x00", "1\x00", "-0", "00000000000000000000000000000000000001",
]  # fmt: skip
INSERTS = [
    "\x00", "\r", "\t", "\x1b[31m", "\u00b2", "\u0661", "\ufffd", "\U0001f4e7", "\u202e", ":", ": ", ", ", "=",
    "[", "]", "(", ")", "<", ">", "/", "{", "}", ";", '"', "\\", " ", "  ", "%s", "%n", "'", "\x7f",
]  # fmt: skip
SEPARATORS = " :,=[]()<>/{};"
NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
LONG_LINE = 64 * 1024


def load_seeds() -> tuple[list[str], list[str]]:
    def read(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if line]

    postfix = read(SEEDS / "postfix.seeds") + read(LAB / "postfix.log")
    rspamd = read(SEEDS / "rspamd.seeds") + read(LAB / "rspamd.log")
    return postfix, rspamd


class Generator:
    """Hostile lines for one file, reproducible from the seed and the file's format."""

    def __init__(self, seed: int, fmt: str, postfix: list[str], rspamd: list[str]) -> None:
        self.rng = random.Random(f"{seed}/{fmt}")
        self.fmt = fmt
        self.seeds = {"postfix": postfix, "rspamd": rspamd}
        self.kinds: list[tuple[Callable[[str], bytes], float]] = [
            (self.as_is, 20), (self.mutated, 45), (self.numbers, 18), (self.random_bytes, 12),
            (self.repeated, 3), (self.spliced, 2), (self.long_line, 0.02),
        ]  # fmt: skip
        self._kind_fns = [k for k, _ in self.kinds]
        self._kind_weights = [w for _, w in self.kinds]
        self.mutations: list[Callable[[str], str]] = [
            self.insert, self.delete, self.truncate, self.double, self.swap_separator, self.swap_words,
            self.flip_case,
        ]  # fmt: skip

    def lines(self, n: int) -> Iterator[bytes]:
        for _ in range(n):
            line = self.rng.choices(self._kind_fns, self._kind_weights)[0](self.fmt)
            yield line.replace(b"\n", b"\\n")

    def _seed(self, fmt: str) -> str:
        # mostly the file's own format, sometimes the other one (a foreign or damaged line)
        if self.rng.random() < 0.15:
            fmt = "rspamd" if fmt == "postfix" else "postfix"
        return self.rng.choice(self.seeds[fmt])

    # -- kinds of line ------------------------------------------------------------------------------------
    def as_is(self, fmt: str) -> bytes:
        return self._seed(fmt).encode()

    def mutated(self, fmt: str) -> bytes:
        line = self._seed(fmt)
        for _ in range(self.rng.randint(1, 4)):
            line = self.rng.choice(self.mutations)(line)
        data = line.encode("utf-8", "surrogatepass")
        if data and self.rng.random() < 0.2:  # bytes that are not UTF-8
            raw = bytearray(data)
            for _ in range(self.rng.randint(1, 3)):
                raw[self.rng.randrange(len(raw))] = self.rng.randrange(128, 256)
            data = bytes(raw)
        return data

    def numbers(self, fmt: str) -> bytes:
        """Every number of a seed line (or one of them) replaced by a hostile one."""
        line = self._seed(fmt)
        spans = [m.span() for m in NUMBER.finditer(line)]
        if not spans:
            return line.encode()
        if self.rng.random() < 0.5:
            start, end = self.rng.choice(spans)
            return (line[:start] + self.rng.choice(NUMBERISH) + line[end:]).encode()
        return NUMBER.sub(lambda _: self.rng.choice(NUMBERISH), line).encode()

    def random_bytes(self, fmt: str) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 300)))

    def repeated(self, fmt: str) -> bytes:
        n = self.rng.choice([*NUMBERISH, "1000000000", "4294967295", "298", "1000", "1001", "0", "1"])
        if fmt == "rspamd":
            head = "2026-11-24 16:58:18 #1285(controller) rspamd_log_reset_repeated: "
            return f"{head}Last message repeated {n} times".encode()
        head = "Nov 24 16:58:18 mail postfix/smtpd[1]: "
        return f"{head}message repeated {n} times: [ connect from x[192.0.2.1]]".encode()

    def spliced(self, fmt: str) -> bytes:
        a, b = self._seed(fmt), self._seed(fmt)
        return (a[: self.rng.randrange(len(a) + 1)] + b[self.rng.randrange(len(b) + 1) :]).encode()

    def long_line(self, fmt: str) -> bytes:
        """About 64 KB: a seed line padded with junk, a 60,000-digit number, or random bytes."""
        line = self._seed(fmt)
        choice = self.rng.randrange(3)
        if choice == 0:
            return (line + " " + "x" * LONG_LINE).encode()
        if choice == 1:
            spans = [m.span() for m in NUMBER.finditer(line)] or [(len(line), len(line))]
            start, end = self.rng.choice(spans)
            return (line[:start] + "9" * 60000 + line[end:]).encode()
        return bytes(self.rng.randrange(256) for _ in range(LONG_LINE))

    # -- mutations ----------------------------------------------------------------------------------------
    def insert(self, line: str) -> str:
        at = self.rng.randrange(len(line) + 1)
        return line[:at] + self.rng.choice(INSERTS) + line[at:]

    def delete(self, line: str) -> str:
        if not line:
            return line
        at = self.rng.randrange(len(line))
        return line[:at] + line[at + self.rng.randint(1, 20) :]

    def truncate(self, line: str) -> str:
        return line[: self.rng.randrange(len(line) + 1)]

    def double(self, line: str) -> str:
        if not line:
            return line
        at = self.rng.randrange(len(line))
        end = at + self.rng.randint(1, 40)
        return line[:end] + line[at:end] + line[end:]

    def swap_separator(self, line: str) -> str:
        spots = [i for i, c in enumerate(line) if c in SEPARATORS]
        if not spots:
            return line
        at = self.rng.choice(spots)
        return line[:at] + self.rng.choice(SEPARATORS) + line[at + 1 :]

    def swap_words(self, line: str) -> str:
        words = line.split(" ")
        if len(words) > 2:
            i, j = self.rng.randrange(len(words)), self.rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        return " ".join(words)

    def flip_case(self, line: str) -> str:
        words = line.split(" ")
        i = self.rng.randrange(len(words))
        words[i] = words[i].swapcase()
        return " ".join(words)


def write_lines(gen: Generator, n: int, path: Path, chunk: int = 5000) -> int:
    """Write ``n`` lines; return the number of lines written (every line ends with a newline)."""
    written = 0
    with path.open("ab") as fh:
        while written < n:
            batch = list(gen.lines(min(chunk, n - written)))
            fh.write(b"\n".join(batch) + b"\n")
            written += len(batch)
    return written


# -- accounting -----------------------------------------------------------------------------------------------
def line_counts(exposition: str) -> dict[str, dict[str, float]]:
    """``mailpulse_log_lines_total`` by source and result, and the rule errors by source."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == "mailpulse_log_lines_total":
                out.setdefault(s.labels["source"], dict.fromkeys(RESULTS, 0.0))[s.labels["result"]] = s.value
            elif s.name == "mailpulse_log_rule_errors_total":
                out.setdefault(s.labels["source"], dict.fromkeys(RESULTS, 0.0))
                out[s.labels["source"]]["rule:" + s.labels["rule"]] = s.value
    return out


def collect_errors(exposition: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(exposition) for s in f.samples
               if s.name == "mailpulse_collect_errors_total")  # fmt: skip


@dataclass
class Phase:
    lines_written: dict[str, int]
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    exit_status: int | None = None
    crashes: int = 0
    stalls: int = 0
    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    accounted: dict[str, float] = field(default_factory=dict)
    collect_errors: float = 0.0
    scrapes: int = 0
    scrapes_failed: int = 0
    scrape_seconds_max: float = 0.0
    rule_errors_logged: int = 0
    problems: list[str] = field(default_factory=list)

    def check_accounting(self) -> None:
        for source, written in self.lines_written.items():
            counts = self.counts.get(source, {})
            total = sum(counts.get(r, 0.0) for r in RESULTS)
            self.accounted[source] = total
            if total != written:
                self.problems.append(f"{source}: {total:.0f} lines accounted, {written} written")
        if self.collect_errors:
            self.problems.append(f"{self.collect_errors:.0f} collect errors")
        if self.crashes:
            self.problems.append(f"{self.crashes} crashes")
        if self.stalls:
            self.problems.append(f"{self.stalls} stalls")
        if self.scrapes_failed:
            self.problems.append(f"{self.scrapes_failed} of {self.scrapes} scrapes failed")


def run_scan(files: dict[str, Path], written: dict[str, int], timeout: float) -> Phase:
    phase = Phase(written)
    argv = [sys.executable, "-m", "mailpulse", "scan", "--no-progress",
            "--postfix", str(files["postfix"]), "--rspamd", str(files["rspamd"])]  # fmt: skip
    started = time.monotonic()
    cpu_before = os.times()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        phase.stalls += 1
    phase.seconds = time.monotonic() - started
    phase.cpu_seconds = _children_cpu(cpu_before)
    phase.exit_status = proc.returncode
    phase.rule_errors_logged = err.count(b"a line made a rule fail")
    if proc.returncode != 0:
        phase.crashes += 1
        phase.problems.append(err.decode(errors="replace")[-2000:])
    text = out.decode(errors="replace")
    if text:
        phase.counts = line_counts(text)
        phase.collect_errors = collect_errors(text)
    phase.check_accounting()
    return phase


def _children_cpu(before: os.times_result) -> float:
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


class Scraper(threading.Thread):
    """Scrape /metrics every ``interval`` seconds until stopped; remember failures and the slowest answer."""

    def __init__(self, url: str, interval: float, phase: Phase) -> None:
        super().__init__(daemon=True)
        self.url, self.interval, self.phase = url, interval, phase
        self.stop = threading.Event()
        self.last = ""
        self.lock = threading.Lock()

    def scrape(self) -> str | None:
        started = time.monotonic()
        self.phase.scrapes += 1
        try:
            with urllib.request.urlopen(self.url, timeout=10) as resp:
                text: str = resp.read().decode()
            line_counts(text)  # must parse
        except Exception as exc:  # any failure is a failed scrape, counted
            self.phase.scrapes_failed += 1
            self.phase.problems.append(f"scrape failed: {type(exc).__name__}: {exc}"[:300])
            return None
        self.phase.scrape_seconds_max = max(self.phase.scrape_seconds_max, time.monotonic() - started)
        with self.lock:
            self.last = text
        return text

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.scrape()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_daemon(
    gens: dict[str, Generator], n: dict[str, int], work: Path, scrape_interval: float, stall_after: float
) -> Phase:
    port = free_port()
    files = {fmt: work / f"daemon-{fmt}.log" for fmt in n}
    for path in files.values():
        path.write_bytes(b"")
    config = work / "mailpulse.yaml"
    config.write_text(
        f"state_dir: {work / 'state'}\nhttp: {{listen: '127.0.0.1:{port}'}}\nlog: {{format: json}}\nsources:\n"
        f"  - {{name: postfix, path: {files['postfix']}, start_at: beginning, poll_interval: 0.1s}}\n"
        f"  - {{name: rspamd, format: rspamd, path: {files['rspamd']}, start_at: beginning, poll_interval: 0.1s}}\n"
    )
    phase = Phase(dict(n))
    log_path = work / "daemon.log"
    started = time.monotonic()
    cpu_before = os.times()
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "mailpulse", "run", "-c", str(config)], cwd=ROOT,
                                stdout=log_file, stderr=subprocess.STDOUT)  # fmt: skip
        scraper = Scraper(f"http://127.0.0.1:{port}/metrics", scrape_interval, phase)
        try:
            _wait_up(scraper, proc, 30.0)
            scraper.start()
            # write while the daemon runs: the two files in turns, 5,000 lines at a time
            left = dict(n)
            while any(left.values()):
                for fmt, path in files.items():
                    k = min(5000, left[fmt])
                    if k:
                        write_lines(gens[fmt], k, path)
                        left[fmt] -= k
                if proc.poll() is not None:
                    break
            _wait_read_all(scraper, proc, n, phase, stall_after)
        finally:
            scraper.stop.set()
            scraper.join(timeout=15)
            final = scraper.scrape() if proc.poll() is None else None
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    phase.problems.append("did not stop within 30 s of SIGTERM")
    phase.seconds = time.monotonic() - started
    phase.cpu_seconds = _children_cpu(cpu_before)
    phase.exit_status = proc.returncode
    log_text = log_path.read_text(errors="replace")
    # a part of the daemon that died on an exception is logged and restarted: that is a crash. A line
    # that made a rule fail is logged with its traceback too, but is counted (result="error"), not a crash.
    phase.crashes += log_text.count("service crashed")
    phase.rule_errors_logged = log_text.count("a line made a rule fail")
    if proc.returncode != 0:
        phase.crashes += 1
        phase.problems.append(f"exit status {proc.returncode}: {log_text[-2000:]}")
    if final:
        phase.counts = line_counts(final)
        phase.collect_errors = collect_errors(final)
    phase.check_accounting()
    return phase


def _wait_up(scraper: Scraper, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mailpulse run exited with {proc.returncode} at start")
        try:
            with urllib.request.urlopen(scraper.url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("mailpulse run did not answer within 30 s")


def _wait_read_all(
    scraper: Scraper, proc: subprocess.Popen[bytes], n: dict[str, int], phase: Phase, stall_after: float
) -> None:
    """Wait until every line is accounted; a stall is no progress for ``stall_after`` seconds."""
    last_total, last_progress = -1.0, time.monotonic()
    want = sum(n.values())
    while proc.poll() is None:
        with scraper.lock:
            text = scraper.last
        counts = line_counts(text) if text else {}
        total = sum(c.get(r, 0.0) for c in counts.values() for r in RESULTS)
        if total >= want:
            return
        now = time.monotonic()
        if total > last_total:
            last_total, last_progress = total, now
        elif now - last_progress > stall_after:
            phase.stalls += 1
            phase.problems.append(f"no progress for {stall_after:g} s at {total:.0f} of {want} lines")
            return
        time.sleep(scraper.interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in all (half per format)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phase", choices=("scan", "daemon", "both"), default="both")
    parser.add_argument("--scrape-interval", type=float, default=0.25)
    parser.add_argument("--stall-after", type=float, default=60.0, help="seconds without progress that are a stall")
    parser.add_argument("--timeout", type=float, default=1800.0, help="for the scan phase")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = parser.parse_args(argv)

    postfix, rspamd = load_seeds()
    n = {"postfix": args.lines // 2, "rspamd": args.lines - args.lines // 2}
    results: dict[str, object] = {"lines": args.lines, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="mailpulse-fuzz-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ok = True
        scan = None
        if args.phase in ("scan", "both"):
            gens = {fmt: Generator(args.seed, fmt, postfix, rspamd) for fmt in n}
            files = {fmt: work / f"scan-{fmt}.log" for fmt in n}
            t = time.monotonic()
            written = {fmt: write_lines(gens[fmt], k, files[fmt]) for fmt, k in n.items()}
            results["generate_seconds"] = round(time.monotonic() - t, 2)
            results["bytes"] = sum(p.stat().st_size for p in files.values())
            scan = run_scan(files, written, args.timeout)
            results["scan"] = asdict(scan)
            ok &= not scan.problems
            _report("scan", scan)
        if args.phase in ("daemon", "both"):
            gens = {fmt: Generator(args.seed, fmt, postfix, rspamd) for fmt in n}  # the same lines again
            daemon = run_daemon(gens, n, work, args.scrape_interval, args.stall_after)
            if scan is not None and scan.counts != daemon.counts:
                # scan and run share every part but the reader: the same lines must count the same
                daemon.problems.append(f"counts differ from the scan's: {daemon.counts} != {scan.counts}")
            results["daemon"] = asdict(daemon)
            ok &= not daemon.problems
            _report("daemon", daemon)
    results["ok"] = ok
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


def _report(name: str, phase: Phase) -> None:
    counts = {src: {k: int(v) for k, v in c.items()} for src, c in phase.counts.items()}
    print(f"{name}: {sum(phase.lines_written.values()):,} lines in {phase.seconds:.1f} s "
          f"(CPU {phase.cpu_seconds:.1f} s), exit {phase.exit_status}, crashes {phase.crashes}, "
          f"stalls {phase.stalls}, scrapes {phase.scrapes} ({phase.scrapes_failed} failed, slowest "
          f"{phase.scrape_seconds_max:.3f} s), counts {counts}")  # fmt: skip
    for problem in phase.problems:
        print(f"  PROBLEM: {problem}")


if __name__ == "__main__":
    sys.exit(main())
