"""Probe scheduler service (placeholder until the probe work lands)."""

from __future__ import annotations

import threading
from typing import Any


def make_probe_service(config: Any, lock: threading.Lock) -> Any:
    raise NotImplementedError("probes are not implemented yet")
