"""Every dashboard query and every rule, evaluated by a real Prometheus scraping mailpulse on the real mail lab.

The lab (tests/lab_plugin.py) runs Postfix, rspamd and Dovecot on loopback. mailpulse runs on the lab's own
config with a free port, a fast queue listing and fast probes (every 5 s instead of every minute), plus two
probes the lab's config does not have, so that the failure and Junk panels and alerts see real data: one
whose route's port is closed (every run fails at stage send) and one carrying the lab's score header (its
messages are filed into Junk). Debian's Prometheus scrapes it every second with alerts/*.yml loaded; the
lab's traffic driver sends its known mix of mail. Then:

* every panel query (Grafana variables substituted) must be valid PromQL, and return data unless the panel
  is in NO_DATA_IN_LAB with the reason the lab cannot feed it;
* every variable query must return values;
* every recording and alerting expression must be valid PromQL, and every rule's health "ok";
* the probe whose port is closed must fire MailProbeDeliveryFailing, the healthy ones must not.

Everything listens on 127.0.0.1 only; Prometheus and mailpulse are stopped at the end, also on failure.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import all_dashboards
from mailpulse.exporter.features.posture.result import CHECKS
from tests.dashboards.promql import ALERTS_DIR, REPO, substitute_grafana
from tests.lab import reports_mail

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

RULE_FILES = sorted(ALERTS_DIR.glob("*.yml"))
FAILING_PROBE = "unreachable-to-remote"
JUNK_PROBE = "junk-to-partner"
# Panels that legitimately stay empty in the lab, and why. An entry whose panel does have data fails the
# test too, so the list cannot rot.
NO_DATA_IN_LAB: dict[tuple[str, str], str] = {
    ("mailpulse-postfix", "TLS handshake failures"): "every TLS handshake in the lab succeeds",
    ("mailpulse-rspamd", "Bayes learns"): "nothing is learned through rspamd's controller in the lab",
    ("mailpulse-postfix", "Delivery attempts by destination provider"): "every relay in the lab is on loopback "
    "(provider internal) or a mailbox (local): no remote provider",
    ("mailpulse-postfix", "Deferral ratio by destination provider"): "no remote provider in the lab (see above)",
    ("mailpulse-delivery", "Lost probes: where they were held"): "no probe here is lost with its message in the "
    "logs (the failing one never gets past its closed port); tests/lab/test_probe_timeline_lab.py loses one",
}
READY_TIMEOUT_S = 90.0  # Prometheus's first sample takes ~7 s, rule health another evaluation or two


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Daemon:
    """A process this test started, with its output in a file; stop() is safe to call twice."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start(name: str, cmd: list[str], log: Path) -> Daemon:
    # setpriv (util-linux) sets the parent-death signal before exec: a killed test session leaves no daemon
    # behind either (a preexec_fn would do the same in Python, but is unsafe with threads).
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        cmd = [setpriv, "--pdeathsig", "TERM", "--", *cmd]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
    return Daemon(name, proc, log)


def wait_for(what: str, check: Callable[[], bool], timeout: float, daemons: list[Daemon]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in daemons:
            if d.proc.poll() is not None:
                raise AssertionError(f"{d.name} exited ({d.proc.returncode}) while waiting for {what}:\n{d.tail()}")
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
        body: bytes = resp.read()
        return body


@dataclass
class Prometheus:
    url: str
    since: float  # start of the traffic: range queries begin here

    def api(self, path: str, **params: str) -> dict[str, Any]:
        query = urllib.parse.urlencode(params)
        try:
            body = http_get(f"{self.url}/api/v1/{path}?{query}")
        except urllib.error.HTTPError as exc:  # 400/422 carry the parse error in the JSON body
            body = exc.read()
        out: dict[str, Any] = json.loads(body)
        return out

    def instant(self, expr: str) -> dict[str, Any]:
        return self.api("query", query=expr)

    def range(self, expr: str) -> dict[str, Any]:
        now = time.time()
        return self.api("query_range", query=expr, start=f"{self.since:.3f}", end=f"{now:.3f}", step="2")

    def rules(self) -> list[dict[str, Any]]:
        groups = self.api("rules")["data"]["groups"]
        return [rule for g in groups for rule in g["rules"]]


def has_values(result: dict[str, Any]) -> bool:
    """At least one sample that is a number (NaN, e.g. a quantile over no observations, is no data)."""
    data = result["data"]
    if data["resultType"] == "scalar":
        return not math.isnan(float(data["result"][1]))
    for series in data["result"]:
        points = series.get("values") or [series["value"]]
        if any(not math.isnan(float(v)) for _, v in points):
            return True
    return False


def lab_config(lab_dir: Path, work: Path, http_port: int, closed_port: int, score_header: str) -> dict[str, Any]:
    """The lab's mailpulse.yaml with a free port, fast probes and queue listing, and the two extra probes."""
    config: dict[str, Any] = yaml.safe_load((lab_dir / "mailpulse.yaml").read_text())
    config["http"]["listen"] = f"127.0.0.1:{http_port}"
    config["state_dir"] = str(work / "state")
    config["postfix"]["queue"]["interval"] = "2s"
    config.setdefault("rspamd", {})["symbols"] = ["R_DKIM_ALLOW", "DMARC_POLICY_ALLOW", "R_SPF_ALLOW"]
    probes = config["probes"]
    routes = {r["name"]: r for r in probes["routes"]}
    probes["routes"].append({**routes["submission-587"], "name": "unreachable", "port": closed_port})
    probes["probes"] += [
        {"name": FAILING_PROBE, "route": "unreachable", "target": "remote-inbox"},
        {"name": JUNK_PROBE, "route": "submission-587", "target": "partner-inbox", "headers": {score_header: "8"}},
    ]
    for probe in probes["probes"]:
        probe.update(interval="5s", jitter="0s", deadline="20s", late_window="20s")
    return config


def prometheus_config(rules: list[Path], target: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rules],
        "scrape_configs": [{"job_name": "mailpulse", "static_configs": [{"targets": [target]}]}],
    }


@pytest.fixture(scope="module")
def prometheus(mail_lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """mailpulse and Prometheus on the session's lab, after one run of the traffic driver."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus (Debian package prometheus) is not installed")
    from lab.posture import PostureLab
    from lab.traffic import run as run_traffic

    work = tmp_path_factory.mktemp("dashboards-lab")
    http_port, prom_port, closed_port = free_port(), free_port(), free_port()
    config = lab_config(mail_lab.dir, work, http_port, closed_port, mail_lab["LAB_SCORE_HEADER"])
    # the report panels: the lab's postmaster@ mailbox as the rua address, fed report mails after the traffic
    config["reports"] = {"domains": ["example.com", "example.org"], "authorized_networks": ["192.0.2.0/24"],
                         "new_series_delay": "3s", "mailboxes": [reports_mail.mailbox(mail_lab)]}  # fmt: skip
    # the posture lab (its own DNS, SMTP and HTTPS servers) feeds the Domain posture dashboard and alerts
    posture_lab = PostureLab.up(work / "posture-lab")
    config["posture"] = posture_lab.config(checks={c: {"interval": "5s"} for c in CHECKS})
    (work / "mailpulse.yaml").write_text(yaml.safe_dump(config))
    (work / "mailpulse.yaml").chmod(0o600)
    (work / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(RULE_FILES, f"127.0.0.1:{http_port}")))
    daemons: list[Daemon] = []
    try:
        mailpulse = start(
            "mailpulse", [sys.executable, "-m", "mailpulse", "run", "-c", str(work / "mailpulse.yaml")], work / "mp.log"
        )
        daemons.append(mailpulse)
        prom = start(
            "prometheus",
            [
                binary, f"--config.file={work / 'prometheus.yml'}", f"--web.listen-address=127.0.0.1:{prom_port}",
                f"--storage.tsdb.path={work / 'tsdb'}", "--storage.tsdb.retention.time=1h", "--log.level=warn",
            ],
            work / "prometheus.log",
        )  # fmt: skip
        daemons.append(prom)

        def serving(url: str) -> Callable[[], bool]:
            def check() -> bool:
                try:
                    http_get(url, timeout=2)
                except OSError:
                    return False
                return True

            return check

        wait_for("mailpulse /health", serving(f"http://127.0.0.1:{http_port}/health"), 30, daemons)
        wait_for("Prometheus /-/ready", serving(f"http://127.0.0.1:{prom_port}/-/ready"), 30, daemons)
        api = Prometheus(f"http://127.0.0.1:{prom_port}", since=time.time())
        run_traffic(mail_lab.dir / "lab.env")
        report_mails = reports_mail.all_mails()
        reports_mail.send_all(mail_lab, report_mails)
        traffic_end = time.time()

        def ready() -> bool:
            scraped = api.instant('max(timestamp(up{job="mailpulse"}))')["data"]["result"]
            if not scraped or float(scraped[0]["value"][1]) < traffic_end + 2:
                return False  # the counters of the whole traffic run are in Prometheus
            moved = api.instant('sum(mailpulse_reports_mails_total{job="mailpulse"})')["data"]["result"]
            if not moved or float(moved[0]["value"][1]) < len(report_mails):
                return False  # every report mail taken from the mailbox
            if any(rule["health"] != "ok" for rule in api.rules()):
                return False  # every rule evaluated at least once (health is "unknown" before)
            firing = f'ALERTS{{alertname="MailProbeDeliveryFailing", alertstate="firing", probe="{FAILING_PROBE}"}}'
            return bool(api.instant(firing)["data"]["result"])

        wait_for("traffic in Prometheus, rules evaluated, the failing probe paging", ready, READY_TIMEOUT_S, daemons)
        yield api
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        posture_lab.down()
        if os.environ.get("MAILPULSE_LAB_KEEP"):
            print(f"dashboards lab test: logs in {work}")


def panel_targets() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (d["uid"], p["title"], t)
        for d in all_dashboards()
        for p in d["panels"]
        if p["type"] != "row"
        for t in p["targets"]
    ]


def test_every_panel_query_is_valid_and_has_data(prometheus: Prometheus) -> None:
    """Each panel's queries parse and run; each panel (but the listed ones) draws something."""
    errors: list[str] = []
    with_data: set[tuple[str, str]] = set()
    panels: set[tuple[str, str]] = set()
    for uid, title, target in panel_targets():
        panels.add((uid, title))
        expr = substitute_grafana(target["expr"])
        result = prometheus.instant(expr) if target["instant"] else prometheus.range(expr)
        if result.get("status") != "success":
            errors.append(f"{uid} / {title} [{target['refId']}]: {result.get('error')}\n    {expr}")
        elif has_values(result):
            with_data.add((uid, title))
    assert [] == errors
    empty = sorted(panels - with_data - set(NO_DATA_IN_LAB))
    assert [] == empty, "panels without data (fix the query, or add them to NO_DATA_IN_LAB with the reason)"
    stale = sorted(set(NO_DATA_IN_LAB) & with_data)
    assert [] == stale, "NO_DATA_IN_LAB lists panels that do have data"
    assert set(NO_DATA_IN_LAB) <= panels, "NO_DATA_IN_LAB lists panels that do not exist"


def test_variable_queries_return_values(prometheus: Prometheus) -> None:
    """job, instance and probe list the lab's mailpulse and its probes."""
    for d in all_dashboards():
        for v in d["templating"]["list"]:
            if v["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+), (\w+)\)", v["query"])
            assert m, v["query"]
            values = prometheus.api("label/" + m[2] + "/values", **{"match[]": substitute_grafana(m[1])})["data"]
            assert values, f"{d['uid']}: variable {v['name']} has no values"
            if v["name"] == "probe":
                assert {FAILING_PROBE, JUNK_PROBE, "submission-587-to-remote"} <= set(values)


def test_every_rule_expression_is_valid(prometheus: Prometheus) -> None:
    """Each recording and alerting expression runs as a query on its own."""
    errors = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                result = prometheus.instant(rule["expr"])
                if result.get("status") != "success":
                    errors.append(f"{path.name} {rule.get('alert') or rule.get('record')}: {result.get('error')}")
    assert [] == errors


def test_every_rule_is_healthy(prometheus: Prometheus) -> None:
    """Prometheus loaded every rule of alerts/*.yml and evaluates each without error."""
    rules = prometheus.rules()
    expected = sum(len(g["rules"]) for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"])
    assert expected == len(rules)
    assert [] == [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]


def test_slo_recordings_have_data(prometheus: Prometheus) -> None:
    """The SLO recording rules produce a series per probe; the failing probe's error ratio is 1."""
    for name in ("mailpulse:probe_slo_objective:ratio", "mailpulse:probe_errors:ratio_rate30m",
                 "mailpulse:probe_errors:ratio_rate30d", "mailpulse:probe_runs:increase6h"):  # fmt: skip
        probes = {s["metric"]["probe"] for s in prometheus.instant(name)["data"]["result"]}
        assert {FAILING_PROBE, JUNK_PROBE, "relay-cert-to-partner"} <= probes, name
    failing = prometheus.instant(f'mailpulse:probe_errors:ratio_rate30m{{probe="{FAILING_PROBE}"}}')
    assert 1.0 == float(failing["data"]["result"][0]["value"][1])
    healthy = prometheus.instant('mailpulse:probe_errors:ratio_rate30m{probe="submission-465-to-remote"}')
    assert 0.0 == float(healthy["data"]["result"][0]["value"][1])


def test_only_the_failing_probe_pages(prometheus: Prometheus) -> None:
    """The probe whose route's port is closed pages after three failed runs; the healthy ones do not."""
    # over the last 30 s, not at one instant: a scrape that times out on the loaded CI machine makes the
    # series stale for a moment and the alert blinks out, which is not what this test is about
    firing = prometheus.instant('max_over_time(ALERTS{alertname="MailProbeDeliveryFailing", alertstate="firing"}[30s])')
    assert [FAILING_PROBE] == sorted(s["metric"]["probe"] for s in firing["data"]["result"])
    alert = firing["data"]["result"][0]["metric"]
    assert "critical" == alert["severity"]
