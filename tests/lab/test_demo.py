"""scripts/demo on its own lab: the URLs it prints answer (the status page, Prometheus scraping mailpulse with
the shipped rules, its alerts page, Alertmanager), and everything it started is gone when it ends."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.lab_plugin import REPO, lab_unavailable_reason, new_lab_dir

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]
DURATION = 25  # seconds the demo stays up after printing its URLs


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:  # loopback only
        return resp.status, resp.read()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_demos_urls_answer_and_it_cleans_up() -> None:
    """Run `scripts/demo --duration`: while it is up, every printed URL answers; Prometheus has `up` 1 for
    mailpulse, every shipped rule loaded healthy, and sees Alertmanager; afterwards no port is open."""
    for binary in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is not installed: scripts/setup installs it")
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from lab.portpick import free_port_base, release

    root = new_lab_dir()
    base = free_port_base(owner=root)
    proc = subprocess.Popen([str(REPO / "scripts" / "demo"), "--duration", str(DURATION), "--no-setup", "--dir",
                             str(root), "--port-base", str(base)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("[demo] ready"):
                break
        urls = dict(re.findall(r"^  (status page|Prometheus|alerts|Alertmanager)\s+(\S+)", "".join(
            proc.stderr.readline() for _ in range(7)), re.M))  # fmt: skip
        assert {"status page", "Prometheus", "alerts", "Alertmanager"} == set(urls), "".join(lines)
        rest = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
        rest.start()  # drain the pipe while the demo runs
        for name, url in urls.items():
            assert 200 == get(url)[0], name
        assert b"End-to-end probes" in get(urls["status page"])[1]
        assert urls["alerts"].endswith("/classic/alerts")  # Debian's Prometheus has the classic UI only
        prom = urls["Prometheus"].removesuffix("/classic/graph")
        query = urllib.parse.urlencode({"query": 'up{job="mailpulse"}'})
        (up,) = json.loads(get(f"{prom}/api/v1/query?{query}")[1])["data"]["result"]
        assert "1" == up["value"][1]
        groups = json.loads(get(f"{prom}/api/v1/rules")[1])["data"]["groups"]
        files = {Path(g["file"]).name for g in groups}
        assert {p.name for p in (REPO / "alerts").glob("*.yml")} == files
        assert all("ok" == r["health"] for g in groups for r in g["rules"])
        assert json.loads(get(f"{prom}/api/v1/alertmanagers")[1])["data"]["activeAlertmanagers"]
        assert 0 == proc.wait(timeout=DURATION + 90), "".join(lines)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
        release(base)
        shutil.rmtree(root, ignore_errors=True)
    for offset in (47, 88, 89):
        assert not listening(base + offset), offset
