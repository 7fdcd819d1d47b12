"""Two probers in two locations, one Prometheus, the quorum rules: one location failing warns, both page.

Two `mailpulse run` processes (locations `fra` and `ams`, set by MAILPULSE_PROBE_LOCATION over one config)
probe the real lab (Postfix submission on 587, Dovecot IMAPS, the same mailbox) every 2 s. Debian's
Prometheus scrapes both every second and evaluates the shipped rules (alerts/*.yml) every second:

1. both healthy: no quorum alert;
2. ams's route points at a closed port (its own config, reloaded with SIGHUP): MailProbeLocationFailing
   fires for ams, MailProbeQuorumFailing does not, and neither does MailProbeDeliveryFailing (a lone
   prober's page), though ams has failed three runs in a row;
3. fra's route broken too: MailProbeQuorumFailing fires and the per-location warning is withdrawn.

Prometheus runs docs/fleet.md's central layout (one job, every runner a target, the shipped rules) with
the test's ports and 1 s intervals; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.envfile import LabEnv
from tests.dashboards.promql import ALERTS_DIR
from tests.dashboards.test_lab_prometheus import Daemon, Prometheus, free_port, http_get, start, wait_for
from tests.lab.test_probes_e2e import lab_config, probe

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]

LOCATIONS = ("fra", "ams")
PROBE = "fleet-587"
WAIT_S = 60.0  # each phase: two failed runs (2 s apart) plus a scrape and an evaluation take ~5 s


@dataclass
class Fleet:
    prometheus: Prometheus
    configs: dict[str, Path]
    daemons: dict[str, Daemon]
    dead_port: int

    def firing(self) -> set[tuple[str, str]]:
        """(alertname, location or "") of the firing alerts about the fleet's probe."""
        alerts = self.prometheus.api("alerts")["data"]["alerts"]
        return {(a["labels"]["alertname"], a["labels"].get("location", "")) for a in alerts
                if a["state"] == "firing" and a["labels"].get("probe") == PROBE}  # fmt: skip

    def break_route(self, location: str) -> None:
        """Point this location's route at a closed port and reload it (SIGHUP), as an operator would."""
        path = self.configs[location]
        data = yaml.safe_load(path.read_text())
        for route in data["probes"]["routes"]:
            if route["name"] == "submission-587":
                route["port"] = self.dead_port
        path.write_text(yaml.safe_dump(data))
        self.daemons[location].proc.send_signal(signal.SIGHUP)


def fleet_prometheus_config(targets: list[str]) -> dict[str, Any]:
    """docs/fleet.md's central Prometheus: one job, every prober a target, the shipped rules."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted(ALERTS_DIR.glob("*.yml"))],
        "scrape_configs": [{"job_name": "mailpulse-probes", "static_configs": [{"targets": targets}]}],
    }


@pytest.fixture(scope="module")
def fleet(mail_lab: LabEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus (Debian package prometheus) is not installed")
    work = tmp_path_factory.mktemp("fleet")
    ports = {loc: free_port() for loc in LOCATIONS}
    prom_port, dead_port = free_port(), free_port()
    configs: dict[str, Path] = {}
    for loc in LOCATIONS:
        (work / loc).mkdir()
        base = lab_config(mail_lab, work / loc, probes=[probe(PROBE, interval="2s", deadline="8s", late_window="30s")],
                          start_jitter="0s")  # fmt: skip
        data = yaml.safe_load(base.read_text())
        data["http"] = {"listen": f"127.0.0.1:{ports[loc]}"}
        data["log"] = {"level": "warning", "format": "json"}
        base.write_text(yaml.safe_dump(data))
        configs[loc] = base
    (work / "prometheus.yml").write_text(
        yaml.safe_dump(fleet_prometheus_config([f"127.0.0.1:{ports[loc]}" for loc in LOCATIONS]))
    )
    daemons: dict[str, Daemon] = {}
    env_before = os.environ.get("MAILPULSE_PROBE_LOCATION")
    try:
        for loc in LOCATIONS:
            os.environ["MAILPULSE_PROBE_LOCATION"] = loc  # start() passes the environment on
            daemons[loc] = start(f"mailpulse-{loc}", [sys.executable, "-m", "mailpulse", "run", "-c", str(configs[loc])],
                                 work / loc / "mailpulse.log")  # fmt: skip
        daemons["prometheus"] = start(
            "prometheus",
            [binary, f"--config.file={work / 'prometheus.yml'}", f"--web.listen-address=127.0.0.1:{prom_port}",
             f"--storage.tsdb.path={work / 'tsdb'}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            work / "prometheus.log",
        )  # fmt: skip
        api = Prometheus(f"http://127.0.0.1:{prom_port}", since=time.time())
        everyone = list(daemons.values())

        def serving() -> bool:
            try:
                for loc in LOCATIONS:
                    http_get(f"http://127.0.0.1:{ports[loc]}/health", timeout=2)
                http_get(f"http://127.0.0.1:{prom_port}/-/ready", timeout=2)
            except OSError:
                return False
            return True

        wait_for("both probers and Prometheus serving", serving, 30, everyone)
        yield Fleet(api, configs, daemons, dead_port)
    finally:
        if env_before is None:
            os.environ.pop("MAILPULSE_PROBE_LOCATION", None)
        else:
            os.environ["MAILPULSE_PROBE_LOCATION"] = env_before
        for daemon in reversed(list(daemons.values())):
            daemon.stop()
        if os.environ.get("MAILPULSE_LAB_KEEP"):
            print(f"fleet lab test: logs in {work}")


def test_one_location_warns_both_page(fleet: Fleet) -> None:
    """Healthy: two locations counted, none failing, no alert. ams broken: a warning for ams, no page (not even
    the lone-prober page after three failures in a row). Both broken: the page, and no warning."""
    api, everyone = fleet.prometheus, list(fleet.daemons.values())

    def value(expr: str) -> float | None:
        result = api.instant(expr)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def healthy() -> bool:
        delivered = value(
            f'min(mailpulse_probe_success{{probe="{PROBE}"}}) and count(mailpulse_probe_success{{probe="{PROBE}"}}) == 2'
        )
        return delivered == 1.0 and value(f'mailpulse:probe_locations:count{{probe="{PROBE}"}}') == 2.0

    wait_for("both locations delivering, two locations counted", healthy, WAIT_S, everyone)
    assert 0.0 == value(f'mailpulse:probe_locations_failing:count{{probe="{PROBE}"}}')
    assert set() == fleet.firing()
    locations = {s["metric"]["location"] for s in api.instant("mailpulse_probe_info")["data"]["result"]}
    assert set(LOCATIONS) == locations

    fleet.break_route("ams")
    wait_for("the warning for ams", lambda: ("MailProbeLocationFailing", "ams") in fleet.firing(), WAIT_S, everyone)
    # let ams fail a third time in a row: a lone prober would page now, one location of two must not
    wait_for("ams failing 3 runs in a row", lambda: (value(
        f'mailpulse_probe_consecutive_failures{{probe="{PROBE}", location="ams"}}') or 0) >= 3, WAIT_S, everyone)  # fmt: skip
    time.sleep(2.5)  # two more evaluations of every rule
    assert {("MailProbeLocationFailing", "ams")} == fleet.firing()
    failures = api.instant(
        f'mailpulse_probe_failures_total{{probe="{PROBE}", location="ams", stage="send", reason="connect"}}'
    )
    assert float(failures["data"]["result"][0]["value"][1]) >= 3

    fleet.break_route("fra")
    wait_for("the page", lambda: ("MailProbeQuorumFailing", "") in fleet.firing(), WAIT_S, everyone)
    time.sleep(2.5)
    assert {("MailProbeQuorumFailing", "")} == fleet.firing()
    assert 2.0 == value(f'mailpulse:probe_locations_failing:count{{probe="{PROBE}"}}')
    rule_health = {
        r["name"]: r["health"] for r in api.rules() if r["name"].startswith(("MailProbeQuorum", "MailProbeLocation"))
    }
    assert {"MailProbeQuorumFailing": "ok", "MailProbeLocationFailing": "ok"} == rule_health
