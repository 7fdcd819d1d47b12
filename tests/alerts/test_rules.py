"""The Prometheus rules and the example Alertmanager config: conventions, runbooks, real metrics, and the
promtool/amtool checks (promtool unit tests show every alert firing and not firing).

promtool and amtool come from the Debian packages prometheus and prometheus-alertmanager (scripts/setup
installs them); the tests that run them skip, saying so, only when the binary is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.promql import (
    ALERTS_DIR,
    BUILTIN_SERIES,
    RATE_FUNCTIONS,
    RUNBOOKS_DIR,
    reference,
    selectors,
    unguarded_divisions,
)

# runbook_url = RUNBOOK_BASE + docs/runbooks/<AlertName>.md (docs/dashboards.md says how to change the base).
RUNBOOK_BASE = "https://mailpulse.example.org/"
RULE_FILES = sorted(ALERTS_DIR.glob("*.yml"))
TEST_FILES = sorted((ALERTS_DIR / "tests").glob("*_test.yml"))
ALERTMANAGER = ALERTS_DIR / "alertmanager" / "alertmanager.example.yml"
SEVERITIES = {"critical", "warning", "info"}
# Alerts without `for:`, and why. Every other alert waits before firing.
NO_FOR = {
    "MailProbeDeliveryFailing": "the gauge counts failed runs in a row: three runs are the wait",
    "PostfixBlocklistedByRemote": "a blocklisting reply is rare and always worth a look; the 1h window holds it",
    "MailpulseLogRuleErrors": "one failing line is a bug to report; the 1h window holds it",
    "MailProbeQuorumFailing": "a location fails after two failed runs in a row: the runs are the wait",
    "MailProbeLocationFailing": "a location fails after two failed runs in a row: the runs are the wait",
}
# Routing of the example Alertmanager config: severity -> receiver.
ROUTES = {"critical": "pager", "warning": "mail-team", "info": "null"}

PROMTOOL = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")
AMTOOL = pytest.mark.skipif(
    shutil.which("amtool") is None, reason="amtool (Debian package prometheus-alertmanager) missing"
)


def load_groups() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, g) for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]]


GROUPS = load_groups()
RULES = [(path, group["name"], rule) for path, group in GROUPS for rule in group["rules"]]
ALERTS = [rule for _, _, rule in RULES if "alert" in rule]
ALERT_NAMES = {rule["alert"] for rule in ALERTS}
RECORDS = {rule["record"] for _, _, rule in RULES if "record" in rule}


def rule_id(item: tuple[Path, str, dict[str, Any]]) -> str:
    path, _, rule = item
    return f"{path.stem}:{rule.get('alert') or rule.get('record')}"


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, check=False)


def test_rule_files_exist() -> None:
    """One rule file per part: mailpulse itself, fleet quorum, probes, Postfix, posture, rspamd, receiver reports."""
    assert ["fleet.yml", "mailpulse.yml", "postfix.yml", "posture.yml", "probes.yml", "reports.yml", "rspamd.yml"] == [
        p.name for p in RULE_FILES
    ]
    assert len(ALERTS) == len(ALERT_NAMES), "alert names repeat"


@pytest.mark.parametrize("group", [g for _, g in GROUPS], ids=lambda g: g["name"])
def test_groups_are_small(group: dict[str, Any]) -> None:
    """mixtool: at most 20 rules per group, group names of at most 40 characters."""
    assert len(group["rules"]) <= 20
    assert len(group["name"]) <= 40


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_conventions(rule: dict[str, Any]) -> None:
    """CamelCase name of at most 40 characters, a severity, a static summary (capital letter, period), a
    templated description, a runbook_url to this alert's runbook, and for: unless listed in NO_FOR."""
    name = rule["alert"]
    assert re.fullmatch(r"[A-Z][a-zA-Z0-9]*", name)
    assert len(name) <= 40
    assert rule["labels"]["severity"] in SEVERITIES
    ann = rule["annotations"]
    assert set(ann) == {"summary", "description", "runbook_url"}
    assert "{{" not in ann["summary"], "summary must be static"
    assert re.fullmatch(r"[A-Z].*\.", ann["summary"]), "summary: capital letter ... period"
    assert re.search(r"\{\{.*\}\}", ann["description"]), "description must be templated"
    assert f"{RUNBOOK_BASE}docs/runbooks/{name}.md" == ann["runbook_url"]
    assert (name in NO_FOR) == ("for" not in rule), "for: missing (or add the alert to NO_FOR, with the reason)"
    if "for" in rule:
        assert "_over_time(" not in rule["expr"], "no *_over_time() with for: (the window already waits)"


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_runbook_exists(rule: dict[str, Any]) -> None:
    """Every alert has its runbook: what it means, what to check, how to fix it, at the right severity."""
    name = rule["alert"]
    path = RUNBOOKS_DIR / f"{name}.md"
    assert path.is_file()
    text = path.read_text()
    assert text.startswith(f"# {name}\n")
    assert f"**Severity:** {rule['labels']['severity']}" in text
    for heading in ("## Meaning", "## Check", "## Fix"):
        assert heading in text, f"{path.name}: {heading} missing"


def test_no_orphan_runbooks() -> None:
    """Every runbook belongs to an alert (a renamed alert leaves none behind)."""
    runbooks = {p.stem for p in RUNBOOKS_DIR.glob("*.md")} - {"README"}
    assert ALERT_NAMES == runbooks
    index = (RUNBOOKS_DIR / "README.md").read_text()
    rows = dict(re.findall(r"^\| \[(\w+)\]\(\1\.md\) \| (\w+) \|", index, re.MULTILINE))
    assert {r["alert"]: r["labels"]["severity"] for r in ALERTS} == rows, "runbook index out of date"


def test_recording_rule_names() -> None:
    """Recording rules are named level:metric:operations and all are used by an alert or a dashboard."""
    from dashboards.build import all_dashboards  # the dashboards are the other user of recorded series

    used = " ".join(rule["expr"] for _, _, rule in RULES)
    used += " ".join(t["expr"] for d in all_dashboards() for p in d["panels"] for t in p.get("targets", []))
    for name in RECORDS:
        assert re.fullmatch(r"mailpulse:[a-z_]+:[a-z0-9_]+", name), name
        assert re.search(re.escape(name) + r"(?![\w:])", used.replace(f"record: {name}", "")), f"{name} unused"


@pytest.mark.parametrize("item", RULES, ids=rule_id)
def test_expressions(item: tuple[Path, str, dict[str, Any]]) -> None:
    """Every metric exists in docs/metrics.md (or is a recording rule, or up); counters only inside
    rate/increase, gauges never; label matchers name real labels; every division is guarded."""
    _, _, rule = item
    ref = reference()
    known = set(ref) | RECORDS | set(BUILTIN_SERIES)
    for s in selectors(rule["expr"]):
        assert s.metric in known, f"unknown metric {s.metric}"
        if s.metric.endswith("_total"):
            assert s.function in RATE_FUNCTIONS, f"{s.metric} without rate()/increase()"
        if s.function in RATE_FUNCTIONS:
            assert s.metric in ref, f"rate() of recorded series {s.metric}"
            assert ref[s.metric].kind in ("counter", "histogram"), f"rate() of gauge {s.metric}"
        labels = ref[s.metric].labels if s.metric in ref else BUILTIN_SERIES.get(s.metric, ("probe",))
        assert set() == s.labels - set(labels) - {"job", "instance"}, f"{s.metric}: unknown label"
    assert [] == unguarded_divisions(rule["expr"])


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    """The promtool unit tests hold, for each alert, a case where it fires (with its annotations) and one
    where it must not."""
    fired: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        spec = yaml.safe_load(path.read_text())
        for test in spec["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
                    assert all("exp_annotations" in a for a in case["exp_alerts"]), path.name
                else:
                    silent.add(case["alertname"])
    assert set() == ALERT_NAMES - fired, "alerts never shown firing"
    assert set() == ALERT_NAMES - silent, "alerts never shown silent"
    assert set() == (fired | silent) - ALERT_NAMES, "tests of alerts that do not exist"


@PROMTOOL
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    """promtool check rules (with its linter: duplicate rules are fatal)."""
    proc = run("promtool", "check", "rules", "--lint=all", "--lint-fatal", str(path))
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@PROMTOOL
def test_the_documented_promtool_command_passes() -> None:
    """`promtool check rules alerts/*.yml`, as docs/dashboards.md writes it, run by a shell in the repository:
    every file the glob matches is a rule file (the Alertmanager example lives in alerts/alertmanager/)."""
    proc = subprocess.run("promtool check rules alerts/*.yml", shell=True, cwd=ALERTS_DIR.parent, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    assert not (ALERTS_DIR / "alertmanager.example.yml").exists()


@PROMTOOL
@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(path: Path) -> None:
    """promtool test rules: every alert fires where it should, with its exact labels and annotations."""
    proc = run("promtool", "test", "rules", str(path))
    assert 0 == proc.returncode, proc.stdout + proc.stderr


def test_unit_tests_cover_every_rule_file() -> None:
    tested = set()
    for path in TEST_FILES:
        tested |= {(path.parent / f).resolve() for f in yaml.safe_load(path.read_text())["rule_files"]}
    assert {p.resolve() for p in RULE_FILES} == tested


@AMTOOL
def test_alertmanager_config_is_valid() -> None:
    proc = run("amtool", "check-config", str(ALERTMANAGER))
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@AMTOOL
@pytest.mark.parametrize(("severity", "receiver"), sorted(ROUTES.items()))
def test_alertmanager_routes_by_severity(severity: str, receiver: str) -> None:
    """critical pages, warning opens a ticket, info goes nowhere; checked for a real alert of each."""
    alert = next(r["alert"] for r in ALERTS if r["labels"]["severity"] == severity)
    proc = run(
        "amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER}", f"--verify.receivers={receiver}",
        f"severity={severity}", f"alertname={alert}", "instance=mx1:9947", "job=mailpulse",
    )  # fmt: skip
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    assert receiver == proc.stdout.strip()


@AMTOOL
def test_every_alert_reaches_its_receiver() -> None:
    """Each alert, with its own severity, lands on the receiver of that severity."""
    for rule in ALERTS:
        severity = rule["labels"]["severity"]
        proc = run(
            "amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER}",
            f"severity={severity}", f"alertname={rule['alert']}",
        )  # fmt: skip
        assert ROUTES[severity] == proc.stdout.strip(), rule["alert"]


def test_inhibit_rules_name_real_alerts() -> None:
    """amtool does not know the rule files: a misspelt alertname in an inhibit rule would pass it."""
    config = yaml.safe_load(ALERTMANAGER.read_text())
    referenced: set[str] = set()
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            m = re.fullmatch(r'alertname(=~|=)"([^"]+)"', matcher)
            assert m, f"inhibit rules match on alertname: {matcher}"
            referenced |= set(m[2].split("|")) if m[1] == "=~" else {m[2]}
        assert rule["equal"], "inhibit only within the same instance (and probe/source)"
    assert set() == referenced - ALERT_NAMES
    assert set(ROUTES.values()) == {r["name"] for r in config["receivers"]}
