"""The generated parts of docs/dashboards.md: the panels of every dashboard and the list of alerts.

They sit between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` markers; the prose around them is
written by hand. ``python -m dashboards.build`` rewrites them, ``--check`` fails when they are stale, so the
page always lists what the JSON and the rule files really contain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dashboards.grafana import Json

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "dashboards.md"
ALERTS_DIR = REPO / "alerts"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def panels_section(dashboards: list[Json]) -> str:
    out: list[str] = []
    for d in dashboards:
        out += [f"### {d['title']} (`{d['uid']}`)", "", _cell(d["description"]), ""]
        out += ["| panel | unit | shows |", "|---|---|---|"]
        for p in d["panels"]:
            if p["type"] == "row":
                out.append(f"| **{_cell(p['title'])}** | | |")
            else:
                unit = p["fieldConfig"]["defaults"]["unit"]
                out.append(f"| {_cell(p['title'])} ({p['type']}) | `{unit}` | {_cell(p['description'])} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _rule_files() -> list[Path]:
    return sorted(ALERTS_DIR.glob("*.yml"))


def alerts_section() -> str:
    out = ["| alert | severity | for | file | summary |", "|---|---|---|---|---|"]
    for path in _rule_files():
        groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
        for group in groups:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                out.append(
                    f"| [{name}](runbooks/{name}.md) | {rule['labels']['severity']} | {rule.get('for', '-')} "
                    f"| `{path.name}` | {_cell(rule['annotations']['summary'])} |"
                )
    return "\n".join(out) + "\n"


def recording_section() -> str:
    out = ["| recording rule | expression |", "|---|---|"]
    for path in _rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    out.append(f"| `{rule['record']}` | `{_cell(rule['expr'])}` |")
    return "\n".join(out) + "\n"


def _replacer(body: str) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        return m[1] + body + m[2]

    return replace


def render(text: str, dashboards: list[Json]) -> str:
    """``text`` with every generated section replaced by its current content."""
    sections = {"panels": panels_section(dashboards), "alerts": alerts_section(), "recording": recording_section()}
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"{DOC.name}: markers for the generated section {name!r} are missing")
        # A function, not a replacement string: the tables contain backslashes re.sub would interpret.
        text = pattern.sub(_replacer(body), text)
    return text
