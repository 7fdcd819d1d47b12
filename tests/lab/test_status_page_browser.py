"""The status page in a real browser: headless Chromium loads / from mailpulse running on the lab (HTTPS with
the lab's certificate, basic auth), and the DOM it built shows every section with real probe runs."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.envfile import LabEnv
from tests.browser import FAILING_PROBE, PASSWORD, USER, StatusDaemon, chromium, run_chromium, spki_sha256, tables

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]


@pytest.fixture
def daemon(mail_lab: LabEnv, tmp_path: Path) -> Iterator[StatusDaemon]:
    if chromium() is None:
        pytest.fail("chromium is not installed: scripts/setup installs it (Debian package chromium)")
    with StatusDaemon(mail_lab.dir, tmp_path) as running:
        running.wait_for_every_probe()
        yield running


def test_chromium_renders_the_status_page_of_the_lab(daemon: StatusDaemon, tmp_path: Path) -> None:
    """Chromium, trusting only the lab server's key and sending the credentials, gets the page: the lab's
    log sources are up, the queue was listed, every lab probe delivered to the Inbox with DKIM, SPF and
    DMARC passing, the closed-port probe fails at send with connect, and the mailbox watchers are up."""
    spki = spki_sha256(daemon.cert)
    dom = run_chromium(daemon.browser_url, "--dump-dom", spki=spki).decode()
    assert "<title>mailpulse status</title>" in dom
    page = tables(dom)
    sources = {r[0][0]: r for r in page["source"]}
    assert {"postfix", "rspamd"} == set(sources)
    assert all(("up", "ok") == r[1] for r in sources.values())
    assert all(int(r[5][0]) > 0 for r in sources.values())  # lines parsed
    ((listing, _failed),) = page["postqueue -j"]
    assert "ok" == listing[1]
    assert listing[0].startswith("ok, "), listing
    assert {"active", "deferred", "hold", "incoming", "maildrop"} <= {r[0][0] for r in page["queue"]}

    lab_config = yaml.safe_load((daemon.lab_dir / "mailpulse.yaml").read_text())["probes"]
    summary = {r[0][0]: r for r in page["Probes"]}
    lab_probes = [p for p in summary if p != FAILING_PROBE]
    assert {p["name"] for p in lab_config["probes"]} == set(lab_probes)
    for probe in lab_probes:
        assert ("delivered", "ok") == summary[probe][2], summary[probe]
    assert ("failing", "fail") == summary[FAILING_PROBE][2]
    streak, streak_state = summary[FAILING_PROBE][5]  # failures in a row (1, or more after a minute)
    assert int(streak) >= 1
    assert "fail" == streak_state

    (runs_caption,) = [c for c in page if c.startswith("Last runs")]
    runs: dict[str, list[list[tuple[str, str | None]]]] = {}
    for r in page[runs_caption]:
        runs.setdefault(r[0][0], []).append(r)
    for probe in lab_probes:
        newest = runs[probe][0]
        assert ("delivered", "ok") == newest[2]
        assert newest[3][0].endswith(" s")  # latency
        assert ("Inbox", "ok") == newest[4]
        assert ("dkim=pass spf=pass dmarc=pass", "ok") == newest[5]
    failed = runs[FAILING_PROBE][0]
    assert ("failed", "fail") == failed[2]
    assert failed[7][0].startswith("send/connect: "), failed

    watchers = {r[0][0]: r for r in page["Mailbox watchers"]}
    assert {t["name"] for t in lab_config["targets"]} == set(watchers)
    assert all(("up", "ok") == r[3] for r in watchers.values())

    # without the credentials the browser gets no page
    anonymous = run_chromium(daemon.browser_url.replace(f"{USER}:{PASSWORD}@", ""), "--dump-dom", spki=spki)
    assert b"mailpulse status" not in anonymous
    # and a screenshot is a real picture of it, at the window's size
    shot = tmp_path / "page.png"
    run_chromium(daemon.browser_url, "--window-size=1280,1500", f"--screenshot={shot}", spki=spki)
    header = shot.read_bytes()[:24]
    assert b"\x89PNG\r\n\x1a\n" == header[:8]
    assert (1280, 1500) == struct.unpack(">II", header[16:24])
