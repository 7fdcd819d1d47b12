"""Probe benchmarks against a running mail lab (root; `lab/mail-lab up --dir DIR` first).

    .venv/bin/python bench/probe_bench.py --lab DIR detect [--idle 20] [--poll 10] [--poll-interval 10]
    .venv/bin/python bench/probe_bench.py --lab DIR load [--probes 50] [--seconds 60] [--interval 10]

detect: detection delay, i.e. from Dovecot delivering a probe (the time in its maildir file name, in
        microseconds) to mailpulse having its headers (Found.detected_at), with the watcher in IDLE and
        in polling mode. Sends one probe at a time, at random offsets to the
        poll cycle; messages are kept until measured, then removed.
load:   N probes scheduled by the real ProbeService (APScheduler, no jitter, so all N start at the same
        second, every --interval seconds) for --seconds; reports runs, outcomes, the most runs in flight
        at once, and this process's RSS (VmRSS sampled every 0.5 s, VmHWM = peak).

Prints one JSON object per measurement on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import imaplib
import json
import os
import random
import re
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from mailpulse import load_config
from mailpulse.exporter.logsetup import configure_logging
from mailpulse.probes.feature import Probes
from mailpulse.probes.metrics import SKIPPED
from mailpulse.probes.registry import Found
from mailpulse.probes.service import ProbeService, build_parts


def proc_status(key: str) -> float:
    """A /proc/self/status value in MiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_config(lab: Path, tmp: Path, probes: list[dict[str, Any]], target_changes: dict[str, Any]) -> Path:
    data = yaml.safe_load((lab / "mailpulse.yaml").read_text())
    section = data["probes"]
    section["targets"] = [{**t, **target_changes} for t in section["targets"]]
    section["probes"] = probes
    config = {"log": {"level": "warning"}, "state_dir": str(tmp / "state"), "probes": section}
    path = tmp / "mailpulse.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def delivered_at(lab: Path, token: str) -> float | None:
    """When Dovecot delivered the message holding ``token`` into probe@remote.test's INBOX: the
    maildir file name starts with it, ``<seconds>.M<microseconds>P<pid>``. (Not the file's ctime: an IMAP
    session that syncs the folder renames new/ to cur/ and so resets it.)"""
    base = lab / "mail" / "remote.test" / "probe" / "Maildir"
    for sub in ("new", "cur"):
        for entry in os.scandir(base / sub):
            with open(entry.path, "rb") as fh:
                if token.encode() not in fh.read(8192):
                    continue
            m = re.match(r"(\d+)\.M(\d+)P", entry.name)
            return int(m.group(1)) + int(m.group(2)) / 1e6 if m else None
    return None


async def detect(lab: Path, mode: str, rounds: int, poll_interval: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        probe = {"name": f"detect-{mode}", "route": "submission-587", "target": "remote-inbox", "interval": "1h",
                 "deadline": "60s", "late_window": "10m"}  # fmt: skip
        config = load_config(str(write_config(lab, Path(tmp), [probe], {
            "watch": mode, "poll_interval": poll_interval, "cleanup": "keep"})))  # fmt: skip
        probes = config.section(Probes())
        assert probes is not None
        parts = build_parts(probes)
        seen: dict[str, float] = {}
        resolve = parts.registry.resolve

        def spy(found: Found) -> Any:
            seen[found.token] = found.detected_at
            return resolve(found)

        parts.registry.resolve = spy  # type: ignore[method-assign]
        stop = asyncio.Event()
        watchers = [asyncio.create_task(w.run(stop)) for w in parts.unique_watchers]
        delays, latencies, tokens = [], [], []
        try:
            for _ in range(rounds):
                await asyncio.sleep(random.uniform(0, poll_interval if mode == "poll" else 0.5))
                result = await parts.runner.run(probes.probes[0])
                token = (result.message_id or "").split(".")[1] if result.message_id else ""
                tokens.append(token)
                delivered = delivered_at(lab, token) if result.delivered else None
                if delivered is not None and token in seen:
                    delays.append(seen[token] - delivered)
                    latencies.append(result.latency_seconds or 0.0)
        finally:
            stop.set()
            await asyncio.wait(watchers, timeout=10)
        _remove(lab, tokens)
    return {"measure": "detection_delay", "mode": mode, "poll_interval": poll_interval if mode == "poll" else None,
            "n": len(delays), **_stats("delay_s", delays), **_stats("latency_s", latencies)}  # fmt: skip


def _stats(name: str, values: list[float]) -> dict[str, float | None]:
    if not values:
        return {f"{name}_median": None}
    ordered = sorted(values)
    return {f"{name}_min": round(ordered[0], 4), f"{name}_median": round(statistics.median(ordered), 4),
            f"{name}_p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4), f"{name}_max": round(ordered[-1], 4),
            f"{name}_mean": round(statistics.fmean(ordered), 4)}  # fmt: skip


def _remove(lab: Path, tokens: list[str]) -> None:
    env = dict(line.split("=", 1) for line in (lab / "lab.env").read_text().splitlines() if "=" in line)
    env = {k: v.strip("'\"") for k, v in env.items()}
    conn = imaplib.IMAP4_SSL("127.0.0.1", int(env["LAB_IMAPS_PORT"]),
                             ssl_context=ssl.create_default_context(cafile=env["LAB_CA_FILE"]))  # fmt: skip
    conn.login("probe@remote.test", env["LAB_PASSWORD"])
    conn.select("INBOX")
    for token in tokens:
        typ, data = conn.uid("SEARCH", "SUBJECT", token)
        for uid in data[0].split() if typ == "OK" else []:
            conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
    conn.expunge()
    conn.logout()


async def load(lab: Path, n: int, seconds: float, interval: float) -> dict[str, Any]:
    routes = ("submission-587", "submission-465", "relay-cert")
    targets = ("remote-inbox", "partner-inbox")
    probes = [{"name": f"load-{i:03d}", "route": routes[i % 3], "target": targets[i % 2], "interval": interval,
               "jitter": 0, "deadline": "60s", "late_window": "10m"} for i in range(n)]  # fmt: skip
    rss_before = proc_status("VmRSS")
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(str(write_config(lab, Path(tmp), probes, {})))
        probes_config = config.section(Probes())
        assert probes_config is not None
        service = ProbeService(copy.deepcopy(probes_config), threading.Lock(), None)
        in_flight, peak_in_flight, outcomes = 0, 0, {}  # type: ignore[var-annotated]
        durations: list[float] = []
        sends: list[float] = []
        run = service.parts.runner.run

        async def counted(probe: Any) -> Any:
            nonlocal in_flight, peak_in_flight
            in_flight += 1
            peak_in_flight = max(peak_in_flight, in_flight)
            try:
                result = await run(probe)
            finally:
                in_flight -= 1
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
            durations.append((result.finished_at or 0) - (result.started_at or 0))
            sends.append(result.send_seconds or 0.0)
            return result

        service.parts.runner.run = counted  # type: ignore[method-assign]
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(service.run(stop))
        samples = []
        while time.monotonic() - started < seconds:
            await asyncio.sleep(0.5)
            samples.append(proc_status("VmRSS"))
        stop.set()
        await asyncio.wait_for(task, 60)
    latencies = list(service.metrics.latency.values())
    count = sum(sum(h.counts) for h in latencies)
    return {"measure": "load", "probes": n, "seconds": seconds, "interval": interval,
            "runs": sum(outcomes.values()), "outcomes": outcomes, "peak_in_flight": peak_in_flight,
            "skipped": sum(service.metrics.counters[SKIPPED].values()), **_stats("run_s", durations),
            **_stats("send_s", sends),
            "mean_latency_s": round(sum(h.sum for h in latencies) / count, 3) if count else None,
            "rss_mib_before": round(rss_before, 1), "rss_mib_max_sampled": round(max(samples), 1),
            "rss_mib_last": round(samples[-1], 1), "vmhwm_mib": round(proc_status("VmHWM"), 1),
            "rss_mib_quarters": [round(samples[min(len(samples) - 1, len(samples) * q // 4)], 1) for q in (1, 2, 3, 4)],
            }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", required=True, type=Path, help="lab directory (lab/mail-lab up --dir DIR)")
    sub = parser.add_subparsers(dest="what", required=True)
    d = sub.add_parser("detect")
    d.add_argument("--idle", type=int, default=20, help="probes measured in IDLE mode")
    d.add_argument("--poll", type=int, default=10, help="probes measured in polling mode")
    d.add_argument("--poll-interval", type=float, default=10.0)
    ld = sub.add_parser("load")
    ld.add_argument("--probes", type=int, default=50)
    ld.add_argument("--seconds", type=float, default=60.0)
    ld.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    configure_logging("warning")
    if args.what == "detect":
        for mode, rounds in (("idle", args.idle), ("poll", args.poll)):
            if rounds:
                print(json.dumps(asyncio.run(detect(args.lab, mode, rounds, args.poll_interval))), flush=True)
    else:
        print(json.dumps(asyncio.run(load(args.lab, args.probes, args.seconds, args.interval))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
