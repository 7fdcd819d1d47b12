"""Posture benchmark: N configured domains checked once, with bounded concurrency, against the posture
lab's real DNS (knotd behind a validating unbound), SMTP and HTTPS servers.

    .venv/bin/python bench/posture_bench.py [--domains 1000] [--concurrency 32] [--slow]

Starts the lab in a child process (``python -m lab.posture DIR --bench-domains N``), so this process
holds only mailpulse: its peak RSS (VmHWM) is mailpulse's. Every check of every bench domain runs (SPF
with sender authorization, DKIM with the key-file match, DMARC, MTA-STS with the HTTPS fetch, TLS-RPT,
MX STARTTLS, the domain blocklist) plus the lab's own domains and senders. With ``--slow`` a domain
blocklist whose server never answers is added (each query's limit 1 s): the other checks' completion
times are reported separately, to show the slow lane does not hold them up.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from mailpulse import parse_config
from mailpulse.exporter.features.posture.feature import Posture
from mailpulse.exporter.features.posture.result import CheckResult
from mailpulse.exporter.features.posture.service import run_once


def vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--slow", action="store_true", help="add a blocklist zone that never answers")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mplab-posture-bench-"))
    started = time.monotonic()
    lab = subprocess.Popen([sys.executable, "-m", "lab.posture", str(root), "--bench-domains", str(args.domains)],
                           stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    try:
        assert lab.stdout is not None
        if lab.stdout.readline().strip() != "ready":
            raise SystemExit("the posture lab did not start")
        lab_seconds = time.monotonic() - started
        raw: dict[str, Any] = yaml.safe_load((root / "posture.yaml").read_text())["posture"]
        raw["concurrency"] = args.concurrency
        for domain in raw["domains"]:  # the bench domains are looked up in the domain blocklists too
            domain["dnsbl"] = domain["dnsbl"] or domain["name"][1:5].isdigit()
        if args.slow:
            raw["dnsbl"]["custom"].append({"name": "lab-slow", "zone": "slowbl.test", "kind": "domain",
                                           "test_point": "test"})  # fmt: skip
        feature = Posture()
        config = parse_config({"posture": raw}, with_features=[feature]).section(feature)
        assert config is not None
        rss_before = vm("VmRSS")
        t0 = time.monotonic()
        done: dict[tuple[str, str, str, str], float] = {}

        def finished(result: CheckResult) -> None:
            done[result.target.key] = time.monotonic() - t0

        results = asyncio.run(run_once(config, on_result=finished))
        wall = time.monotonic() - t0
        slow = [done[r.target.key] for r in results if r.target.zone == "lab-slow"]
        other = sorted(done[r.target.key] for r in results if r.target.zone != "lab-slow")
        reasons: dict[str, int] = {}
        for r in results:
            if r.target.domain.startswith("b") and r.target.domain[1:5].isdigit() and r.target.zone != "lab-slow":
                reasons[r.reason] = reasons.get(r.reason, 0) + 1
        print(json.dumps({
            "domains_configured": len(config.domains), "bench_domains": args.domains, "checks": len(results),
            "concurrency": args.concurrency, "lab_start_seconds": round(lab_seconds, 1),
            "wall_seconds": round(wall, 2), "checks_per_second": round(len(results) / wall, 1),
            "peak_rss_mb": round(vm("VmHWM"), 1), "rss_before_mb": round(rss_before, 1),
            "bench_domain_reasons": reasons,
            "other_checks_done_p50_s": round(statistics.median(other), 2),
            "other_checks_done_max_s": round(other[-1], 2),
            "slow_zone_checks": len(slow), "slow_zone_done_min_s": round(min(slow), 2) if slow else None,
            "slow_zone_done_max_s": round(max(slow), 2) if slow else None,
            "slow_zone_reasons": sorted({r.reason for r in results if r.target.zone == "lab-slow"}),
        }))  # fmt: skip
    finally:
        lab.terminate()
        lab.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
