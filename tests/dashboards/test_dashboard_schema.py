"""Every shipped dashboard validates against Grafana's dashboard JSON schema (the grafana-foundation-sdk copy
in tests/dashboards/schema/), and a dashboard broken in any of several ways does not.

The vendored schema is used unmodified; where it rejects what Grafana itself writes and accepts, the test
widens it in memory, one named deviation at a time (``DEVIATIONS``), and a test checks each is still needed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from dashboards.build import OUT_DIR

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
SCHEMA_FILE = SCHEMA_DIR / "dashboard.jsonschema.json"
SCHEMA_SHA256 = "0324761f02bc6a8a528e07bc25a3d5d4a4052e21c3e3c775bdd7c3a260e966b8"  # as in schema/README.md
SHIPPED = sorted(OUT_DIR.glob("*.json"))
Json = dict[str, Any]


def _export_keys(schema: Json) -> None:
    """`__inputs`, `__elements`, `__requires`: the keys of Grafana's "export for sharing externally" format,
    which its import reads (the data source prompt) and strips; the schema describes the stored dashboard."""
    props = schema["definitions"]["Dashboard"]["properties"]
    props["__inputs"] = {"type": "array", "items": {"type": "object", "required": ["name", "type", "pluginId"]}}
    props["__elements"] = {"type": "object"}
    props["__requires"] = {"type": "array", "items": {"type": "object", "required": ["type", "id"]}}


def _null_base_threshold(schema: Json) -> None:
    """The first threshold step's value is null: Grafana writes -Infinity so (the schema's own description
    says "Nulls currently appear here when serializing -Infinity to JSON"), yet types it number."""
    schema["definitions"]["Threshold"]["properties"]["value"]["type"] = ["number", "null"]


def _variable_definition(schema: Json) -> None:
    """A query variable's `definition` (the query as the variable editor shows it): Grafana writes it on every
    query variable it saves; the schema's VariableModel lacks it."""
    schema["definitions"]["VariableModel"]["properties"]["definition"] = {"type": "string"}


DEVIATIONS: dict[str, Callable[[Json], None]] = {
    "export keys": _export_keys,
    "null base threshold": _null_base_threshold,
    "variable definition": _variable_definition,
}


def vendored() -> Json:
    data: Json = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def validator(skip: str | None = None) -> Draft7Validator:
    schema = vendored()
    for name, widen in DEVIATIONS.items():
        if name != skip:
            widen(schema)
    return Draft7Validator(schema)


def errors(dashboard: Json, skip: str | None = None) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator(skip).iter_errors(dashboard)]


def test_the_vendored_schema_is_the_recorded_copy() -> None:
    """The file is the copy README.md names (unedited) and a valid draft-07 schema with its licence beside it."""
    assert SCHEMA_SHA256 == hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    Draft7Validator.check_schema(vendored())
    assert "Apache License" in (SCHEMA_DIR / "LICENSE").read_text()
    assert SCHEMA_SHA256 in (SCHEMA_DIR / "README.md").read_text()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_dashboards_validate(path: Path) -> None:
    """Each dashboard in dashboards/json/ meets the schema (with the documented deviations only)."""
    assert [] == errors(json.loads(path.read_text()))


@pytest.mark.parametrize("name", DEVIATIONS)
def test_every_deviation_is_needed(name: str) -> None:
    """Without any one deviation, some shipped dashboard fails: none is a blanket allowance kept by habit."""
    failing = [p.name for p in SHIPPED if errors(json.loads(p.read_text()), skip=name)]
    assert failing, f"deviation {name!r} is no longer needed: remove it"


def _first_panel(d: Json) -> Json:
    panel: Json = next(p for p in d["panels"] if p["type"] != "row")
    return panel


BREAKAGES: dict[str, Callable[[Json], None]] = {
    "no templating": lambda d: d.pop("templating"),
    "panel wider than the grid": lambda d: _first_panel(d)["gridPos"].update(w=25),
    "panel without a type": lambda d: _first_panel(d).update(type=""),
    "unknown variable type": lambda d: d["templating"]["list"][1].update(type="bogus"),
    "refresh is true": lambda d: d.update(refresh=True),
    "threshold value is text": lambda d: _first_panel(d)["fieldConfig"]["defaults"]["thresholds"]["steps"].append(
        {"color": "red", "value": "80"}),
    "unknown top-level key": lambda d: d.update(pannels=[]),
    "__inputs is not a list": lambda d: d.update(__inputs="DS_PROMETHEUS"),
}  # fmt: skip


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_dashboard_fails(breakage: str) -> None:
    """A shipped dashboard broken in one way is rejected, naming where."""
    dashboard = json.loads(SHIPPED[0].read_text())
    broken = copy.deepcopy(dashboard)
    BREAKAGES[breakage](broken)
    assert [] == errors(dashboard)
    assert errors(broken), breakage
