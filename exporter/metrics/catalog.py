"""Every metric family mailpulse can emit, by part: the source of docs/metrics.md and of its tests."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import cast

from exporter.metrics.family import Family

# (section title, module holding a FAMILIES tuple), in the order of the reference.
PARTS = (
    ("Postfix logs", "exporter.metrics.postfix"),
    ("Postfix queue", "exporter.queue"),
    ("rspamd logs", "exporter.metrics.rspamd"),
    ("End-to-end probes", "probes.metrics"),
    ("Log sources", "exporter.metrics.sources"),
    ("mailpulse itself", "exporter.metrics.collector"),
)


def sections() -> Iterator[tuple[str, tuple[Family, ...]]]:
    for title, module in PARTS:
        mod = importlib.import_module(module)
        families = getattr(mod, "FAMILIES", None) or getattr(mod, "SELF_FAMILIES", ())
        yield title, tuple(cast(tuple[Family, ...], families))


def all_families() -> list[Family]:
    return [family for _, families in sections() for family in families]
