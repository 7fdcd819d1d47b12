"""Every metric family mailpulse can emit: the kernel's own and each feature's, in the order of
docs/metrics.md (the source of the reference and of its tests)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mailpulse.exporter.feature import AnyFeature
from mailpulse.exporter.metrics.collector import SELF_FAMILIES
from mailpulse.exporter.metrics.family import Family
from mailpulse.exporter.metrics.sources import FAMILIES as SOURCE_FAMILIES

KERNEL_SECTIONS = (("Log sources", SOURCE_FAMILIES), ("mailpulse itself", SELF_FAMILIES))


def sections(features: Sequence[AnyFeature]) -> Iterator[tuple[str, tuple[Family, ...]]]:
    for feature in features:
        yield feature.title, tuple(feature.families)
    yield from KERNEL_SECTIONS


def all_families(features: Sequence[AnyFeature]) -> list[Family]:
    return [family for _, families in sections(features) for family in families]
