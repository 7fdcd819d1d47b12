"""``STATE_DIR/probes.json``: what must survive a restart so alerts and cleanup keep working.

* per probe: the success gauge, last run and last success times, consecutive failures, so
  ``mailpulse_probe_success`` does not flap to 0 and timestamps do not jump to 0 after a restart;
* probes in flight: their tokens, so a message that arrives after the restart is recognised (counted
  as a late arrival) and deleted, rather than left for the sweep.

Written atomically (temp file + rename, 0600) after every outcome; a missing or corrupt file is
ignored with a warning (the metrics start from zero, as on a first start).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import structlog

from mailpulse.probes.registry import Pending

log = structlog.get_logger(__name__)
VERSION = 1


def load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring the unreadable probe state file", path=path, error=str(exc))
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    return data


def save(path: str, probes: dict[str, dict[str, float]], pending: list[Pending]) -> None:
    data = {
        "version": VERSION,
        "probes": probes,
        "pending": [
            {"token": p.token, "probe": p.probe, "mailbox": p.mailbox, "kind": p.kind,
             "accepted_at": p.accepted_at, "late_window": p.late_window}
            for p in pending if p.accepted_at is not None
        ],
    }  # fmt: skip
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probes-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the probe state file", path=path, error=str(exc))


def pending_entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for entry in data.get("pending") or []:
        if isinstance(entry, dict) and isinstance(entry.get("token"), str) and isinstance(
                entry.get("accepted_at"), int | float):  # fmt: skip
            out.append(entry)
    return out
