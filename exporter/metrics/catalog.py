"""Every metric family mailpulse can emit: the kernel's own and each feature's, in the order of
docs/metrics.md (the source of the reference and of its tests)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mailpulse.exporter.feature import AnyFeature
from mailpulse.exporter.metrics.collector import SELF_FAMILIES, SELF_LABEL_SETS
from mailpulse.exporter.metrics.family import Family, LabelValues
from mailpulse.exporter.metrics.sources import FAMILIES as SOURCE_FAMILIES
from mailpulse.exporter.metrics.sources import LABEL_SETS as SOURCE_LABEL_SETS

KERNEL_SECTIONS = (("Log sources", SOURCE_FAMILIES), ("mailpulse itself", SELF_FAMILIES))


def sections(features: Sequence[AnyFeature]) -> Iterator[tuple[str, tuple[Family, ...]]]:
    for feature in features:
        yield feature.title, tuple(feature.families)
    yield from KERNEL_SECTIONS


def all_families(features: Sequence[AnyFeature]) -> list[Family]:
    return [family for _, families in sections(features) for family in families]


def all_label_sets(features: Sequence[AnyFeature]) -> dict[tuple[str, str], LabelValues]:
    """(family name, label) → declared values, for every family mailpulse can emit."""
    table = {**SOURCE_LABEL_SETS, **SELF_LABEL_SETS}
    for feature in features:
        table.update(feature.label_sets)
    return table
