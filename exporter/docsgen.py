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

TARGET = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"

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


def main(argv: Sequence[str] | None, features: Sequence[AnyFeature]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/metrics.md is not up to date")
    args = parser.parse_args(argv)
    text = render(features)
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            sys.stderr.write(f"{TARGET} is stale: run python -m mailpulse.docsgen\n")
            return 1
        return 0
    TARGET.write_text(text)
    return 0
