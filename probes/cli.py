"""``mailpulse probe --once`` (placeholder until the probe work lands)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO


def run_probes_once(config: Any, only: Sequence[str], *, out: TextIO, timeout: float | None) -> int:
    out.write("probes are not implemented yet\n")
    return 2
