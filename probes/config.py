"""The ``probes:`` section of the config (placeholder until the probe work lands)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exporter.configtools import Node


@dataclass(frozen=True)
class ProbesConfig:
    raw: dict[str, Any] = field(default_factory=dict)


def parse_probes(node: Node) -> ProbesConfig:
    for key in node.data:
        node.raw(key)
    return ProbesConfig(dict(node.data))
