"""A small, typed builder for the Grafana dashboard JSON mailpulse ships (no dependency but the stdlib).

Only what the four dashboards need: rows, time series, stats, bar gauges, heatmaps, tables, pie charts and
state timelines on a Prometheus data source chosen by the ``datasource`` variable. Every choice that the
tests enforce (a unit and a description on every panel, the data source variable on every panel and target,
``editable: false``, fixed uids) is made here once, so a dashboard module cannot forget it.

Panels are laid out left to right on Grafana's 24-column grid and wrap to a new line when full; a row starts
a new line. Ids are assigned in order, which keeps the generated JSON stable from one build to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
# Grafana 10.4/11.x; older versions migrate the JSON on load.
SCHEMA_VERSION = 39
TAG = "mailpulse"
# The import input Grafana asks for on a manual import (Dashboards → Import): the chosen Prometheus replaces
# ``${DS_PROMETHEUS}`` everywhere in the JSON, which here is only the ``datasource`` variable's starting
# value (panels use the variable, so the data source stays switchable). Provisioning ignores ``__inputs``;
# the variable then starts at the default Prometheus data source.
DS_INPUT = "DS_PROMETHEUS"
REFRESH_INTERVALS = ("5s", "10s", "30s", "1m", "5m", "15m", "30m", "1h", "2h", "1d")
TIME_OPTIONS = ("5m", "15m", "1h", "6h", "12h", "24h", "2d", "7d", "30d")
MIN_GRAFANA = "10.0.0"
PANEL_NAMES = {"timeseries": "Time series", "stat": "Stat", "bargauge": "Bar gauge", "heatmap": "Heatmap",
               "table": "Table", "piechart": "Pie chart", "state-timeline": "State timeline"}  # fmt: skip

# Selectors every query starts from: the standard job/instance variables, plus probe where it applies.
SEL = 'job=~"$job", instance=~"$instance"'
RI = "$__rate_interval"


def sel(*extra: str) -> str:
    """``{job=~"$job", instance=~"$instance", <extra matchers>}``."""
    return "{" + ", ".join((SEL, *extra)) + "}"


def psel(*extra: str) -> str:
    """The standard selector plus the probe variable."""
    return sel('probe=~"$probe"', *extra)


PSEL = psel()


def hide_columns(*names: str) -> Json:
    """A table transformation that hides label columns nobody needs to read (Time, Value, job ...)."""
    return {"id": "organize", "options": {"excludeByName": dict.fromkeys(names, True), "renameByName": {}}}


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""
    # Instant queries for panels that show one value per series (stat, bar gauge, table, pie chart).
    instant: bool = False
    fmt: str = "time_series"  # "heatmap" for bucket series, "table" for tables

    def to_json(self, ref: str) -> Json:
        out: Json = {
            "datasource": DATASOURCE,
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "refId": ref,
            "format": self.fmt,
            "instant": self.instant,
            "range": not self.instant,
        }
        return out


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    stack: bool = False
    # Bars instead of lines: counts per interval of low-rate events read better as bars.
    bars: bool = False
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    # (value, color) steps; the first value is ignored (Grafana's base step). Drawn as lines on time series.
    thresholds: tuple[tuple[float | None, str], ...] = ()
    # Minimum query interval: probes run every few minutes, shorter rate windows are mostly empty.
    interval: str | None = None
    # Value mappings, e.g. ((1, "delivered", "green"), (0, "failed", "red")).
    mappings: tuple[tuple[float, str, str], ...] = ()
    options: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)
    transformations: tuple[Json, ...] = ()


@dataclass(frozen=True)
class Row:
    title: str


def _thresholds(steps: tuple[tuple[float | None, str], ...]) -> Json:
    if not steps:
        steps = ((None, "green"),)
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": None if i == 0 else value} for i, (value, color) in enumerate(steps)],
    }


def _mappings(mappings: tuple[tuple[float, str, str], ...]) -> list[Json]:
    if not mappings:
        return []
    options = {
        _fmt_number(value): {"text": text, "color": color, "index": i}
        for i, (value, text, color) in enumerate(mappings)
    }
    return [{"type": "value", "options": options}]


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_REDUCE_LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def _options(p: Panel) -> Json:
    """Per-type options; the panel's own ``options`` override these defaults."""
    legend_table = {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["lastNotNull", "max"]}
    defaults: dict[str, Json] = {
        "timeseries": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "stat": {
            "reduceOptions": _REDUCE_LAST,
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
        "bargauge": {
            "reduceOptions": _REDUCE_LAST,
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "valueMode": "color",
        },
        "heatmap": {
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5, "fill": "dark-orange"},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": True, "show": True},
            "yAxis": {"axisPlacement": "left", "unit": p.unit, "reverse": False},
        },
        "table": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}},
        "piechart": {
            "reduceOptions": _REDUCE_LAST,
            "pieType": "pie",
            "legend": {**legend_table, "values": ["value", "percent"], "calcs": []},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        "state-timeline": {
            "showValue": "never",
            "mergeValues": True,
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    }
    return {**defaults.get(p.kind, {}), **p.options}


def _custom(p: Panel) -> Json:
    if p.kind != "timeseries":
        return dict(p.custom)
    custom: Json = {
        "drawStyle": "bars" if p.bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if p.bars else (25 if p.stack else 10),
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if p.stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if p.thresholds else "off"},
    }
    return {**custom, **p.custom}


def panel_json(p: Panel, pid: int, x: int, y: int) -> Json:
    defaults: Json = {
        "unit": p.unit,
        "thresholds": _thresholds(p.thresholds),
        "mappings": _mappings(p.mappings),
        "custom": _custom(p),
        "color": {"mode": "thresholds" if p.kind in ("stat", "bargauge") else "palette-classic"},
    }
    if p.min is not None:
        defaults["min"] = p.min
    if p.max is not None:
        defaults["max"] = p.max
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    out: Json = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": _options(p),
        "targets": [t.to_json(chr(ord("A") + i)) for i, t in enumerate(p.targets)],
    }
    if p.interval:
        out["interval"] = p.interval
    if p.transformations:
        out["transformations"] = list(p.transformations)
    return out


def _row_json(r: Row, pid: int, y: int) -> Json:
    return {
        "id": pid,
        "type": "row",
        "title": r.title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
        "panels": [],
    }


def layout(items: list[Panel | Row]) -> list[Json]:
    """Place panels left to right, wrapping at 24 columns; a row always starts a new line."""
    out: list[Json] = []
    x = y = line_height = 0
    for pid, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += line_height
            out.append(_row_json(item, pid, y))
            y += 1
            x = line_height = 0
            continue
        if x + item.width > GRID_WIDTH:
            y += line_height
            x = line_height = 0
        out.append(panel_json(item, pid, x, y))
        x += item.width
        line_height = max(line_height, item.height)
    return out


def _query_variable(name: str, label: str, query: str, description: str) -> Json:
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        # 2 = on time range change: new instances and probes appear without reloading the dashboard.
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "regex": "",
        "hide": 0,
        "options": [],
    }


def variables(*, probe: bool) -> list[Json]:
    out: list[Json] = [
        {
            "name": "datasource",
            "label": "Data source",
            "description": "The Prometheus that scrapes mailpulse.",
            "type": "datasource",
            "query": "prometheus",
            "current": {"selected": False, "text": f"${{{DS_INPUT}}}", "value": f"${{{DS_INPUT}}}"},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        },
        _query_variable(
            "job", "Job", "label_values(mailpulse_build_info, job)", "Prometheus job(s) scraping mailpulse."
        ),
        _query_variable(
            "instance",
            "Instance",
            'label_values(mailpulse_build_info{job=~"$job"}, instance)',
            "mailpulse instance(s), one per mail server.",
        ),
    ]
    if probe:
        out.append(
            _query_variable(
                "probe",
                "Probe",
                'label_values(mailpulse_probe_info{job=~"$job", instance=~"$instance"}, probe)',
                "End-to-end probes (route x target) from mailpulse's config.",
            )
        )
    return out


def inputs() -> list[Json]:
    """``__inputs``: what a manual import asks for (the Prometheus data source)."""
    return [{"name": DS_INPUT, "label": "Prometheus", "description": "The Prometheus that scrapes mailpulse.",
             "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}]  # fmt: skip


def requires(panels: list[Json]) -> list[Json]:
    """``__requires``: the Grafana version, data source and panel plugins the import checks for."""
    every = [*panels, *(child for p in panels for child in p.get("panels", ()))]  # a collapsed row holds its own
    types = sorted({p["type"] for p in every if p["type"] != "row"})
    return [
        {"type": "grafana", "id": "grafana", "name": "Grafana", "version": MIN_GRAFANA},
        {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        *({"type": "panel", "id": t, "name": PANEL_NAMES[t], "version": ""} for t in types),
    ]


def dashboard(uid: str, title: str, description: str, items: list[Panel | Row], *, probe: bool = False) -> Json:
    panels = layout(items)
    return {
        "__inputs": inputs(),
        "__elements": {},
        "__requires": requires(panels),
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": False,
        "graphTooltip": 1,
        "timezone": "",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        # Grafana fills an empty timepicker with these defaults; spelled out, the JSON meets its schema
        "timepicker": {
            "hidden": False,
            "refresh_intervals": list(REFRESH_INTERVALS),
            "time_options": list(TIME_OPTIONS),
        },
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "mailpulse dashboards",
                "type": "dashboards",
                "tags": [TAG],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": variables(probe=probe)},
        "panels": panels,
    }
