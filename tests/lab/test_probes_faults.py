"""Faults, each with its own reason, while `mailpulse run`'s probe scheduler keeps going: a closed port, a
wrong SMTP password, an untrusted certificate (SMTP and IMAP), a wrong IMAP password, mail that never arrives (routed to
the lab's deferring remote MX), and the IMAP server going down mid-run and coming back.

These run in a lab of their own (lab_factory): stopping Dovecot must not disturb the session lab.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailpulse import load_config
from mailpulse.exporter.config import Config
from mailpulse.exporter.feature import Context
from mailpulse.exporter.metrics.family import Family
from mailpulse.probes import metrics as m
from mailpulse.probes.feature import Probes
from mailpulse.probes.service import ProbeService
from tests.lab.test_probes_e2e import lab_config, lab_probes, probe

pytestmark = [pytest.mark.lab]


@pytest.fixture(scope="module")
def own_lab(lab_factory: Any) -> Any:
    return lab_factory()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def value(service: ProbeService, family: Family, *labels: str) -> float:
    with service.metrics.lock:
        return service.metrics.counters[family].get(tuple(labels), 0.0)


async def until(what: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message}")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(120)
async def test_each_fault_has_its_reason_and_the_scheduler_keeps_running(own_lab: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Seven probes on 3 s intervals for a few rounds: the healthy one keeps succeeding, each faulty one
    fails again and again at its own stage and reason, and the probe whose deadline outlasts its
    interval is skipped rather than run twice at once."""
    env = own_lab.env
    monkeypatch.setenv("MAILPULSE_TEST_WRONG", "not-the-password")
    lab = lab_probes(env)
    sub = next(r for r in lab["routes"] if r["name"] == "submission-587")
    remote = next(t for t in lab["targets"] if t["name"] == "remote-inbox")
    partner = next(t for t in lab["targets"] if t["name"] == "partner-inbox")
    no_password = {k: v for k, v in sub.items() if k != "password_file"}
    routes = [
        {**sub, "name": "closed-port", "port": free_port()},
        {**no_password, "name": "wrong-password", "password_env": "MAILPULSE_TEST_WRONG"},
        {**{k: v for k, v in sub.items() if k != "ca_file"}, "name": "untrusted"},  # system CAs only
    ]
    targets = [
        {**{k: v for k, v in remote.items() if k != "password_file"}, "name": "wrong-imap",
         "port": int(env["LAB_IMAP_PORT"]), "tls": "starttls", "password_env": "MAILPULSE_TEST_WRONG"},
        {**partner, "name": "tempfail", "address": "probe@tempfail.test"},  # 450 at the remote MX: never arrives
        {**{k: v for k, v in partner.items() if k != "ca_file"}, "name": "untrusted-imap",
         "port": int(env["LAB_IMAPS_PORT"]), "tls": "implicit"},  # the lab CA is not in the system store
    ]  # fmt: skip
    fast = {"interval": "3s", "jitter": "0.5s", "deadline": "4s"}
    expected = {
        "closed": ("closed-port", "remote-inbox", "send", "connect"),
        "badpw": ("wrong-password", "remote-inbox", "send", "auth"),
        "untrusted": ("untrusted", "remote-inbox", "send", "tls"),
        "imapauth": ("submission-587", "wrong-imap", "receive", "imap_auth"),
        "lost": ("submission-587", "tempfail", "deliver", "lost"),
        "imaptls": ("submission-587", "untrusted-imap", "receive", "imap_tls"),
    }
    probes = [probe("good", **fast | {"deadline": "20s"})] + [
        probe(name, route=route, target=target, **fast) for name, (route, target, _, _) in expected.items()
    ]
    config = load_config(str(lab_config(env, tmp_path, probes=probes, routes=routes, targets=targets)))
    service = probe_service(config)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await until(lambda: all(value(service, m.RUNS, p["name"]) >= 3 for p in probes), 60, "3 runs of every probe")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert 1.0 == value(service, m.SUCCESS, "good")
    assert 0.0 == sum(v for k, v in service.metrics.counters[m.FAILURES].items() if k[0] == "good")
    for name, (_, _, stage, reason) in expected.items():
        runs = value(service, m.RUNS, name)
        assert runs == value(service, m.FAILURES, name, stage, reason), (name, service.metrics.counters[m.FAILURES])
        assert (0.0, runs) == (value(service, m.SUCCESS, name), value(service, m.CONSECUTIVE, name))
    assert value(service, m.SKIPPED, "lost") >= 1  # 4 s deadline, 3 s interval: never two runs at once
    assert 0.0 == value(service, m.MAILBOX_UP, "wrong-imap")
    assert value(service, m.MAILBOX_ERRORS, "wrong-imap", "imap_auth") >= 1
    state = Path(config.state_dir) / "probes.json"
    assert state.exists()  # written after every outcome


@pytest.mark.timeout(120)
async def test_imap_down_mid_run_then_back(own_lab: Any, tmp_path: Path) -> None:
    """Dovecot stops while the service runs: runs fail at the receive stage (connection refused or
    closed), the mailbox is reported down, the scheduler keeps running; once Dovecot is back, the
    watcher reconnects by itself and probes are delivered again."""
    env = own_lab.env
    config = load_config(str(lab_config(env, tmp_path, probes=[
        probe("watch", interval="2s", jitter="0.2s", deadline="8s")])))  # fmt: skip
    service = probe_service(config)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await until(lambda: value(service, m.SUCCESS, "watch") == 1.0, 30, "a first delivery")
        pid = int((Path(env["LAB_DIR"]) / "dovecot" / "run" / "master.pid").read_text().split()[0])
        os.kill(pid, signal.SIGTERM)

        def receive_failures() -> float:
            return sum(
                v for k, v in service.metrics.counters[m.FAILURES].items() if k[0] == "watch" and k[1] == "receive"
            )

        await until(lambda: receive_failures() >= 2, 40, "receive failures while Dovecot is down")
        assert 0.0 == value(service, m.SUCCESS, "watch")
        assert 0.0 == value(service, m.MAILBOX_UP, "remote-inbox")
        refused = value(service, m.FAILURES, "watch", "receive", "imap_connect")
        closed = value(service, m.FAILURES, "watch", "receive", "imap_protocol")
        assert refused + closed == receive_failures()
        assert value(service, m.MAILBOX_ERRORS, "remote-inbox", "imap_connect") >= 1
        runs_while_down = value(service, m.RUNS, "watch")
        await asyncio.to_thread(own_lab.up)  # `mail-lab up` restarts what is not running
        await until(lambda: value(service, m.SUCCESS, "watch") == 1.0, 40, "deliveries after Dovecot is back")
        assert value(service, m.RUNS, "watch") > runs_while_down
        assert 1.0 == value(service, m.MAILBOX_UP, "remote-inbox")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def probe_service(config: Config) -> ProbeService:
    """The service the daemon would run for this config (built by the probes feature)."""
    feature = Probes()
    section = config.section(feature)
    assert section is not None
    return feature.build(section, Context(threading.Lock(), config.state_dir))
