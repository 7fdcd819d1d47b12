#!/usr/bin/env python3
"""How late the daemon's event loop runs while a log backlog is read: the error it adds to probe timestamps.

Probes take their timestamps (SMTP accept, IMAP arrival) on the daemon's event loop; any time the loop
is held by other work is added to the measured latency. This starts the real daemon in-process
(``exporter.app.App`` with every feature), tailing a file of ``--lines`` Postfix lines from the start,
and samples the loop meanwhile: a task asks to wake every 10 ms and records how late it woke.

    .venv/bin/python bench/loop_lag.py                 # parsing in a worker thread (the default)
    .venv/bin/python bench/loop_lag.py --on-loop       # the same backlog parsed on the event loop

Prints one JSON object: lines, seconds to read them, and the loop's lateness (p50, p99, max, in ms).
This is a benchmark: it prints measured figures and judges nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailpulse import features, parse_config  # noqa: E402
from mailpulse.exporter.app import App  # noqa: E402
from mailpulse.exporter.sources.files import FileSource  # noqa: E402
from tests.helpers import free_port  # noqa: E402

SEED = ROOT / "tests" / "fixtures" / "lab" / "postfix.log"
TICK = 0.010


def build_log(path: Path, lines: int) -> int:
    seed = [line for line in SEED.read_text().splitlines() if line.strip()]
    with path.open("w") as fh:
        for i in range(lines):
            fh.write(seed[i % len(seed)] + "\n")
    return lines


async def measure(log: Path, state: Path, lines: int) -> dict[str, object]:
    config = parse_config({
        "state_dir": str(state), "http": {"listen": f"127.0.0.1:{free_port()}"},
        "sources": [{"name": "backlog", "path": str(log), "start_at": "beginning", "poll_interval": "0.05s"}],
    })  # fmt: skip
    app = App(config, features())
    get = app.registry.get_sample_value
    lateness: list[float] = []
    done = asyncio.Event()

    async def sampler() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            start = loop.time()
            await asyncio.sleep(TICK)
            lateness.append(loop.time() - start - TICK)

    runner = asyncio.create_task(app.run())
    sampling = asyncio.create_task(sampler())
    started = time.monotonic()
    while sum(get("mailpulse_log_lines_total", {"source": "backlog", "result": r}) or 0
              for r in ("parsed", "unparsed", "foreign")) < lines:  # fmt: skip
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - started
    done.set()
    await sampling
    app.request_stop()
    await runner
    lateness.sort()
    return {
        "lines": lines, "read_seconds": round(seconds, 2), "samples": len(lateness),
        "lateness_p50_ms": round(1000 * statistics.median(lateness), 2),
        "lateness_p99_ms": round(1000 * statistics.quantiles(lateness, n=100)[98], 2) if len(lateness) > 1 else None,
        "lateness_max_ms": round(1000 * lateness[-1], 2),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--on-loop", action="store_true", help="parse on the event loop (the old way)")
    args = parser.parse_args()
    FileSource.offload = not args.on_loop
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "mail.log"
        build_log(log, args.lines)
        result = asyncio.run(measure(log, Path(tmp) / "state", args.lines))
    result["mode"] = "event loop" if args.on_loop else "worker thread"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
