"""Lab hygiene: loopback only, idempotent `up`, two labs side by side, nothing left after `down`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from lab import procs, ready
from lab.envfile import LabEnv
from lab.layout import PORT_SPAN, Ports
from lab.traffic import smtp
from tests.lab import mailbox
from tests.lab_plugin import LabHandle, mail_lab_cmd

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]


def _status(root: Path) -> list[dict[str, Any]]:
    status: list[dict[str, Any]] = json.loads(mail_lab_cmd("status", "--dir", str(root), "--json", timeout=30).stdout)
    return status


def _lab_listeners(env: LabEnv) -> list[ready.Listener]:
    pids = set(procs.lab_pids(env.dir))
    assert pids, "no process carries the lab marker"
    return [lst for lst in ready.listeners(with_pids=True) if pids & set(lst.pids)]


def test_lab_listens_on_loopback_only(mail_lab: LabEnv) -> None:
    """Every socket a lab process listens on is 127.0.0.1, on a port of the lab's own range."""
    found = _lab_listeners(mail_lab)

    assert {lst.address for lst in found} == {"127.0.0.1"}
    base = mail_lab.port_base
    assert all(base <= lst.port < base + PORT_SPAN for lst in found), found
    expected = set(Ports(base).all(mail_lab.dkim_mode).values())
    assert {lst.port for lst in found} == expected


def test_up_is_idempotent(mail_lab_handle: LabHandle) -> None:
    """A second `up` on a running lab restarts nothing and keeps every pid."""
    before = _status(mail_lab_handle.root)
    env_before = (mail_lab_handle.root / "lab.env").read_text()

    report = mail_lab_handle.up()

    after = _status(mail_lab_handle.root)
    assert report["started"] == []
    assert report["restarted"] == []
    assert before == after
    assert all(s["ready"] for s in after)
    assert (mail_lab_handle.root / "lab.env").read_text() == env_before
    assert report["total_s"] < 5


def test_two_labs_coexist_and_down_leaves_nothing(mail_lab: LabEnv, lab_factory: Any) -> None:
    """A second lab (other dir, other port base, OpenDKIM as signer) runs next to the session lab,
    signs and delivers, starts warm in at most 5 s, and leaves no process or port behind."""
    second: LabHandle = lab_factory("--dkim", "opendkim")
    env2 = second.env
    assert second.up_report["total_s"] <= 5.0, second.up_report
    ports1, ports2 = Ports(mail_lab.port_base).all(), Ports(env2.port_base).all("opendkim")
    assert not set(ports1.values()) & set(ports2.values())

    mid, reply = mailbox.send(env2, smtp.SUBMISSION, "probe@remote.test", kind="second-lab")
    assert reply.accepted, str(reply)
    raw = mailbox.fetch(env2, "probe@remote.test", mid)
    assert "c=relaxed/simple" in str(mailbox.parse(raw)["DKIM-Signature"]).replace("\n", "")  # OpenDKIM's
    assert mailbox.dkim_verifies(env2, raw)

    t0 = time.monotonic()
    second.down()
    took = time.monotonic() - t0

    assert procs.lab_pids(env2.dir) == []
    assert not ready.ports_in_use(set(range(env2.port_base, env2.port_base + PORT_SPAN)))
    assert all(s["ready"] for s in _status(mail_lab.dir)), "the second lab's down hurt the session lab"
    assert took < 30
