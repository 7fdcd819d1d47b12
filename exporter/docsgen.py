"""Write docs/metrics.md from the family declarations of the kernel and the features it is given, and
the key tables of docs/config.md from the config readers (``python -m mailpulse.docsgen [--check]``
passes every feature mailpulse ships).

The config tables come from what the readers record (:class:`exporter.configtools.Schema`) while they
read docs/config.example.yaml, and from the descriptions next to them (``exporter.config.KEY_DOCS`` and
each feature's ``key_docs``); a key read without a description, or a description of a key nobody reads,
fails the run.

The references are generated, never edited by hand, so they cannot drift from the code; a test runs
``--check`` and fails when a committed file is stale.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from mailpulse.exporter.config import KEY_DOCS, parse_config
from mailpulse.exporter.configtools import ConfigError, KeySpec, Schema
from mailpulse.exporter.feature import AnyFeature
from mailpulse.exporter.metrics.catalog import all_label_sets, sections
from mailpulse.exporter.metrics.family import Family, Kind, LabelValues

DOCS = Path(__file__).resolve().parent.parent / "docs"
TARGET = DOCS / "metrics.md"
ARCHITECTURE = DOCS / "architecture.md"
BEGIN = "<!-- generated: features (python -m mailpulse.docsgen) -->"
END = "<!-- end of generated features -->"
CONFIG = DOCS / "config.md"
EXAMPLE = DOCS / "config.example.yaml"
CONFIG_BEGIN = "<!-- generated: config keys (python -m mailpulse.docsgen) -->"
CONFIG_END = "<!-- end of generated config keys -->"
KERNEL_TITLE = "Top level: logging, HTTP, state, sources"

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
    declared = all_label_sets(features)
    for title, families in sections(features):
        if not families:
            continue
        out.append(f"\n## {title}\n")
        out.append("| metric | type | labels | meaning |\n|---|---|---|---|\n")
        for fam in families:
            out.append(_row(fam))
        out.append(_label_table(families, declared))
    return "".join(out)


def _label_table(families: Sequence[Family], declared: Mapping[tuple[str, str], LabelValues]) -> str:
    """Every label of the section's families with its values; labels with the same values are one row."""
    rows: dict[tuple[str, LabelValues], list[str]] = {}
    for fam in families:
        for label in fam.labels:
            rows.setdefault((label, declared[(fam.name, label)]), []).append(fam.name)
    if not rows:
        return ""
    out = ["\n| label | values | of |\n|---|---|---|\n"]
    for (label, values), names in rows.items():
        where = (
            "all" if len(names) == sum(1 for f in families if label in f.labels) else ", ".join(f"`{n}`" for n in names)
        )
        text = values.describe().replace("|", "\\|")
        out.append(f"| `{label}` | {text} | {where} |\n")
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


def _with_block(text: str, block: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with the part between the generated-block markers replaced by ``block``."""
    head, found, rest = text.partition(begin)
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        raise ValueError(f"no {begin} ... {end} block")
    return f"{head}{begin}\n{block}{end}{tail}"


# -- docs/config.md -----------------------------------------------------------------------------------


def config_schema(features: Sequence[AnyFeature], example: Path = EXAMPLE) -> Schema:
    """Every key the readers read while they read the example config with these features."""
    schema = Schema()
    data = yaml.safe_load(example.read_text())
    # The example names secret and certificate files that exist only where its test creates them; the
    # keys read do not depend on that, and the test holds the example valid.
    with contextlib.suppress(ConfigError):
        parse_config(data, features, str(example), schema=schema)
    return schema


def _owner(path: str, features: Sequence[AnyFeature]) -> AnyFeature | None:
    """The feature whose section holds ``path`` (the deepest: ``postfix.queue`` before ``postfix``);
    None for the kernel's keys."""
    best: AnyFeature | None = None
    for f in features:
        prefix = ".".join(f.section)
        inside = f.section and (path == prefix or path.startswith((f"{prefix}.", f"{prefix}[")))
        if inside and (best is None or len(f.section) > len(best.section)):
            best = f
    return best


def _groups(features: Sequence[AnyFeature]) -> list[tuple[AnyFeature | None, str, Mapping[str, str]]]:
    """(owner, title, descriptions): the kernel first, then each feature with a section."""
    groups: list[tuple[AnyFeature | None, str, Mapping[str, str]]] = [(None, KERNEL_TITLE, KEY_DOCS)]
    for f in features:
        if f.section:
            groups.append((f, f"{f.title} (`{'.'.join(f.section)}`)", f.key_docs))
    return groups


def _docs_name(owner: AnyFeature | None) -> str:
    if owner is None:
        return "exporter.config.KEY_DOCS"
    return f"{type(owner).__module__}.{type(owner).__name__}.key_docs"


def config_problems(schema: Schema, features: Sequence[AnyFeature]) -> list[str]:
    """Keys read without a description, and descriptions of keys nobody reads (or of another section)."""
    problems = []
    groups = _groups(features)
    docs = {id(owner): descriptions for owner, _, descriptions in groups}
    for path in schema.keys:
        owner = _owner(path, features)
        if path not in docs[id(owner)]:
            problems.append(f"{path}: read by the config readers, but {_docs_name(owner)} does not describe it")
    for owner, _, descriptions in groups:
        for path in descriptions:
            if path not in schema.keys:
                problems.append(f"{path}: described in {_docs_name(owner)}, but no reader read it (a typo, a "
                                f"removed key, or a branch docs/{EXAMPLE.name} misses)")  # fmt: skip
            elif _owner(path, features) is not owner:
                problems.append(f"{path}: described in {_docs_name(owner)}, but it belongs to another section")
    return problems


def config_doc(schema: Schema, features: Sequence[AnyFeature]) -> str:
    """docs/config.md as it should be: its hand-written prose around freshly generated tables."""
    return _with_block(CONFIG.read_text(), config_tables(schema, features), CONFIG_BEGIN, CONFIG_END)


def config_tables(schema: Schema, features: Sequence[AnyFeature]) -> str:
    """The generated part of docs/config.md: one table per section, rows in description order."""
    out = []
    for owner, title, descriptions in _groups(features):
        paths = [p for p in descriptions if p in schema.keys and _owner(p, features) is owner]
        paths += [p for p in schema.keys if _owner(p, features) is owner and p not in descriptions]
        out.append(f"## {title}\n\n| key | type | default | meaning |\n|---|---|---|---|\n")
        for path in paths:
            meaning = descriptions.get(path, "**undocumented**")
            out.append(_config_row(schema.keys[path], meaning))
        out.append("\n")
    return "".join(out)


def _config_row(spec: KeySpec, meaning: str) -> str:
    default = "required" if spec.required else " or ".join(_show(value, spec.kind) for value in spec.defaults)
    cells = (f"`{spec.path}`", _type_text(spec), default, meaning)
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |\n"


def _type_text(spec: KeySpec) -> str:
    if spec.kind == "secret":
        name = spec.path.rpartition(".")[2]
        return f"secret: `{name}_file`, `{name}_env` or `{name}`"
    each = "each " if spec.kind == "list of strings" else ""
    parts = [spec.kind]
    if spec.choices is not None:
        parts.append(f"{each}one of " + ", ".join(f"`{c}`" for c in spec.choices))
    if spec.pattern is not None:
        parts.append(f"{each}matching `{spec.pattern}`")
    low, high = spec.minimum, spec.maximum
    if spec.kind == "duration" and low is not None:
        parts.append(f"at least {format_duration(low)}")
    elif low is not None and high is not None:
        parts.append(f"{low:g} to {high:g}")
    elif low is not None:
        parts.append(f"at least {low:g}")
    elif high is not None:
        parts.append(f"at most {high:g}")
    return ", ".join(parts)


def _show(value: object, kind: str) -> str:
    """A default as the YAML a user would write."""
    if value is None:
        return "-" if kind == "mapping" else "none"
    if kind == "duration" and isinstance(value, int | float):
        return f"`{format_duration(value)}`"
    return f"`{_yaml(value)}`"


def _yaml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_yaml(k)}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_duration(seconds: float) -> str:
    """Seconds as the config writes them: ``30s``, ``5m``, ``1h``, ``250ms``."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    millis = round(seconds * 1000, 6)
    if millis.is_integer():
        return f"{millis:g}ms"
    return f"{seconds:g}s"


def main(argv: Sequence[str] | None, features: Sequence[AnyFeature]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated doc is not up to date")
    args = parser.parse_args(argv)
    schema = config_schema(features)
    problems = config_problems(schema, features)
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    wanted = {
        TARGET: render(features),
        ARCHITECTURE: _with_block(ARCHITECTURE.read_text(), feature_table(features)),
        CONFIG: config_doc(schema, features),
    }
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            sys.stderr.write(f"{path} is stale: run python -m mailpulse.docsgen\n")
        return 1 if stale or problems else 0
    for path in stale:
        path.write_text(wanted[path])
    return 1 if problems else 0
