"""The Grafana dashboards follow the conventions (dashboard-linter's rules, replicated) and use only real metrics.

No Grafana server is needed: the generated JSON is checked structurally here, its queries' syntax with
promtool, and their results against a real Prometheus in test_lab_prometheus.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import build
from tests.dashboards.promql import (
    AGGREGATIONS,
    ALERTS_DIR,
    BUILTIN_SERIES,
    RATE_FUNCTIONS,
    reference,
    selectors,
    substitute_grafana,
    unguarded_divisions,
)

DASHBOARDS = build.all_dashboards()
EXPECTED_UIDS = {
    "mailpulse-delivery",
    "mailpulse-postfix",
    "mailpulse-rspamd",
    "mailpulse-authentication",
    "mailpulse-reports",
    "mailpulse-posture",
}
PANEL_TYPES = {"timeseries", "stat", "bargauge", "heatmap", "table", "piechart", "state-timeline"}
GRAFANA_RANGES = {"[$__rate_interval]", "[$__range]"}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel but rows (rows are expanded: their panels sit at the top level)."""
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def all_targets() -> list[tuple[str, str, dict[str, Any]]]:
    return [(d["uid"], p["title"], t) for d in DASHBOARDS for p in panels(d) for t in p["targets"]]


def target_id(item: tuple[str, str, dict[str, Any]]) -> str:
    uid, title, target = item
    return f"{uid}/{title}/{target['refId']}"


TARGETS = all_targets()


def recording_rules() -> set[str]:
    names = set()
    for path in sorted(ALERTS_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def test_committed_json_is_generated() -> None:
    """dashboards/json/ and the generated tables of docs/dashboards.md hold exactly what
    dashboards/build.py generates (run it after changing a panel or a rule)."""
    assert build.main(["--check"]) == 0


def test_no_data_allowlist_is_documented() -> None:
    """Each panel the lab test allows to stay empty is listed, with its reason, in docs/dashboards.md."""
    from tests.dashboards.test_lab_prometheus import NO_DATA_IN_LAB

    doc = (build.OUT_DIR.parents[1] / "docs" / "dashboards.md").read_text()
    titles = {d["uid"]: d["title"].removeprefix("mailpulse / ") for d in DASHBOARDS}
    for (uid, panel), reason in NO_DATA_IN_LAB.items():
        assert f"| {titles[uid]} / {panel} | {reason} |" in doc


def test_uids_are_fixed_and_unique() -> None:
    """Each dashboard keeps its uid, so links and provisioning survive every rebuild."""
    uids = [d["uid"] for d in DASHBOARDS]
    assert sorted(EXPECTED_UIDS) == sorted(uids)
    assert len(set(uids)) == len(uids)
    committed = {p.stem for p in build.OUT_DIR.glob("*.json")}
    assert EXPECTED_UIDS == committed


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d["uid"])
def test_dashboard_settings(dashboard: dict[str, Any]) -> None:
    """Provisioned dashboards are not editable in the UI, tagged mailpulse, titled and described."""
    assert dashboard["editable"] is False
    assert "mailpulse" in dashboard["tags"]
    assert dashboard["title"].startswith("mailpulse / ")
    assert dashboard["description"]
    titles = [p["title"] for p in panels(dashboard)]
    assert len(set(titles)) == len(titles), "panel titles repeat"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d["uid"])
def test_variables(dashboard: dict[str, Any]) -> None:
    """One Prometheus datasource variable, job and instance (and probe where probes are shown); all used."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = [v for v in variables.values() if v["type"] == "datasource"]
    assert ["datasource"] == [v["name"] for v in datasource]
    assert "prometheus" == variables["datasource"]["query"]
    for name in ("job", "instance"):
        assert "query" == variables[name]["type"]
        assert {"type": "prometheus", "uid": "${datasource}"} == variables[name]["datasource"]
    exprs = [t["expr"] for p in panels(dashboard) for t in p["targets"]]
    used = {m for expr in exprs for m in re.findall(r"\$\{?(\w+)\}?", expr) if not m.startswith("__")}
    defined = set(variables) - {"datasource"}
    assert used == defined, "variables defined but unused, or used but undefined"
    for v in variables.values():
        if v["type"] == "query":
            assert 2 == v["refresh"], f"{v['name']}: refresh on time range change"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d["uid"])
def test_every_panel_has_title_description_unit_datasource(dashboard: dict[str, Any]) -> None:
    """dashboard-linter: panel-title-description, panel-units, panel-datasource, panel-no-targets."""
    for p in panels(dashboard):
        where = f"{dashboard['uid']}: {p['title']!r}"
        assert p["type"] in PANEL_TYPES, where
        assert p["title"].strip(), where
        assert len(p["description"]) >= 20, where
        assert p["fieldConfig"]["defaults"]["unit"], where
        assert {"type": "prometheus", "uid": "${datasource}"} == p["datasource"], where
        assert p["targets"], where
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), where
        for t in p["targets"]:
            assert {"type": "prometheus", "uid": "${datasource}"} == t["datasource"], where
            assert t["expr"].strip(), where
        if p["type"] == "heatmap":
            assert all(t["format"] == "heatmap" and "le" in t["expr"] for t in p["targets"]), where
        if p["type"] in ("stat", "bargauge", "table", "piechart"):
            assert all(t["instant"] for t in p["targets"]), f"{where}: shows one value per series"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d["uid"])
def test_layout_has_no_overlaps(dashboard: dict[str, Any]) -> None:
    """Panels fit the 24-column grid and do not overlap."""
    cells: dict[tuple[int, int], str] = {}
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"], p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


@pytest.mark.parametrize("item", TARGETS, ids=target_id)
def test_queries_follow_the_rules(item: tuple[str, str, dict[str, Any]]) -> None:
    """Every selector filters job and instance; counters only inside rate/increase over Grafana's own
    ranges ($__rate_interval, or $__range for totals), never a gauge inside rate; ratios guarded; every
    histogram_quantile keeps le."""
    _, _, target = item
    expr: str = target["expr"]
    sels = selectors(substitute_grafana(expr))
    assert sels
    ref = reference()
    for s in sels:
        assert {"job", "instance"} <= s.labels, f"{s.metric}: job/instance matchers missing"
        if s.metric.endswith("_total"):
            assert s.function in RATE_FUNCTIONS, f"{s.metric} used without rate()/increase()"
        if s.function in RATE_FUNCTIONS:
            kind = ref[s.metric].kind if s.metric in ref else "recording"
            assert kind in ("counter", "histogram"), f"{s.metric} is a {kind}: never rate() a gauge"
    ranges = set(re.findall(r"\[[^\]]*\]", expr))
    assert ranges <= GRAFANA_RANGES, f"fixed ranges {ranges - GRAFANA_RANGES}: use recording rules"
    assert [] == unguarded_divisions(substitute_grafana(expr))
    if "histogram_quantile" in expr:
        assert re.search(r"by \([^)]*\ble\b", expr), "histogram_quantile needs le in by (...)"
    for agg in AGGREGATIONS & set(re.findall(r"\b(\w+) \(", expr)):
        assert agg in ("sum", "max", "min"), f"unexpected aggregation {agg}"


def test_every_metric_exists() -> None:
    """Every metric a dashboard uses is in docs/metrics.md (histograms as _bucket/_sum/_count) or is a
    recording rule from alerts/: a typo fails here, not in front of a user."""
    ref = reference()
    known = set(ref) | recording_rules() | set(BUILTIN_SERIES)
    used = {s.metric for _, _, t in TARGETS for s in selectors(substitute_grafana(t["expr"]))}
    variable_metrics = {
        m
        for d in DASHBOARDS
        for v in d["templating"]["list"]
        if v["type"] == "query"
        for m in re.findall(r"label_values\((\w+)", v["query"])
    }
    assert set() == (used | variable_metrics) - known
    # Label matchers name labels the family has (job and instance come from Prometheus).
    for _, title, t in TARGETS:
        for s in selectors(substitute_grafana(t["expr"])):
            if s.metric in ref:
                extra = s.labels - set(ref[s.metric].labels) - {"job", "instance"}
                assert set() == extra, f"{title}: {s.metric} has no label {extra}"


def test_reference_is_complete_enough() -> None:
    """docs/metrics.md documents every part the dashboards draw from (regenerate it with
    `python -m mailpulse.docsgen` if this fails after a rebase)."""
    ref = reference()
    for prefix in ("postfix_", "mailpulse_postfix_queue_", "mailpulse_rspamd_", "mailpulse_probe_", "mailpulse_log_"):
        assert any(name.startswith(prefix) for name in ref), prefix


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_queries_parse(tmp_path: Path) -> None:
    """Every panel query (Grafana variables substituted) and variable query is valid PromQL for promtool."""
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": substitute_grafana(t["expr"])}
        for i, (_, _, t) in enumerate(TARGETS)
    ]
    for d in DASHBOARDS:
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                m = re.fullmatch(r"label_values\((.+), (\w+)\)", v["query"])
                assert m, v["query"]
                rules.append({"record": f"dashboard:variable_{v['name']}:check", "expr": substitute_grafana(m[1])})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    proc = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert 0 == proc.returncode, proc.stdout + proc.stderr
