"""Write docs/metrics.md from the family declarations of the kernel and the features it is given
(``python -m mailpulse.docsgen [--check]`` passes every feature mailpulse ships).

The reference is generated, never edited by hand, so it cannot drift from the code; a test runs
``--check`` and fails when the committed file is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter.feature import AnyFeature
from exporter.metrics.catalog import sections
from exporter.metrics.family import Family, Kind

DOCS = Path(__file__).resolve().parent.parent / "docs"
TARGET = DOCS / "metrics.md"
ARCHITECTURE = DOCS / "architecture.md"
BEGIN = "<!-- generated: features (python -m mailpulse.docsgen) -->"
END = "<!-- end of generated features -->"

HEADER = """# Metrics reference

Generated from the code by `python -m mailpulse.docsgen`; do not edit by hand.

Every label value comes from the config (source, service, probe, route, target names, configured
domains and symbols) or from a fixed list below; a value outside its list becomes `other`. mailpulse
never labels by queue ID, message-id, e-mail address, SASL user, client IP or server reply text.
Families marked *kumina* keep the name and meaning of kumina/postfix_exporter's metric of that name,
so dashboards built for it (e.g. grafana.com 10013) keep working.

Counters are exported with the `_total` suffix; histograms as `_bucket`, `_sum` and `_count`.
"""


def render(features: Sequence[AnyFeature]) -> str:
    out = [HEADER]
    for title, families in sections(features):
        if not families:
            continue
        out.append(f"\n## {title}\n")
        out.append("| metric | type | labels | meaning |\n|---|---|---|---|\n")
        for fam in families:
            out.append(_row(fam))
    out.append("\n## Label values\n")
    for feature in features:
        for title, values in feature.label_values():
            out.append(f"\n**{title}:** " + ", ".join(f"`{v}`" for v in values) + "\n")
    return "".join(out)


def _row(fam: Family) -> str:
    kind = fam.kind.value
    if fam.kind is Kind.HISTOGRAM:
        kind += f" (buckets {', '.join(f'{b:g}' for b in fam.buckets)})"
    labels = ", ".join(f"`{label}`" for label in fam.labels) or "-"
    meaning = fam.help.replace("|", "\\|")
    if fam.compat:
        meaning += f" *{fam.compat}*"
    return f"| `{fam.name}` | {kind} | {labels} | {meaning} |\n"


def feature_table(features: Sequence[AnyFeature]) -> str:
    """The features table of docs/architecture.md: what each feature plugs into the kernel."""
    rows = [
        "| feature | config section | log formats | metric families | needs no log source | module |\n",
        "|---|---|---|---|---|---|\n",
    ]
    for f in features:
        section = "`" + ".".join(f.section) + "`" if f.section else "-"
        formats = ", ".join(f"`{n}`" for n in f.format_names) or "-"
        module = f"`{type(f).__module__}.{type(f).__name__}`"
        rows.append(f"| {f.title} | {section} | {formats} | {len(f.families)} | {'yes' if f.standalone else 'no'} "
                    f"| {module} |\n")  # fmt: skip
    return "".join(rows)


def _with_block(text: str, block: str) -> str:
    """``text`` with the part between the generated-block markers replaced by ``block``."""
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"{ARCHITECTURE} has no {BEGIN} ... {END} block")
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: Sequence[str] | None, features: Sequence[AnyFeature]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated doc is not up to date")
    args = parser.parse_args(argv)
    wanted = {
        TARGET: render(features),
        ARCHITECTURE: _with_block(ARCHITECTURE.read_text(), feature_table(features)),
    }
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            sys.stderr.write(f"{path} is stale: run python -m mailpulse.docsgen\n")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
    return 0
