"""Which reports were already counted: (kind, reporter, report id) keys with an expiry, bounded, saved in
``state_dir`` so a restart, a re-sent mail or a re-read folder counts nothing twice.

Keys are SHA-256 digests (the file holds no reporter names or report ids). The file is JSON, written
atomically (temporary file + rename, :func:`exporter.sources.position.write_atomic`); a missing file is an
empty memory, a corrupt one is reported by the caller and replaced at the next save.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable

from mailpulse.exporter.sources.position import write_atomic

VERSION = 1


def report_key(kind: str, reporter: str, report_id: str) -> str:
    text = f"{kind}\0{reporter.strip().lower()}\0{report_id.strip()}"
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


class SeenReports:
    def __init__(self, ttl: float, max_entries: int, path: str | None = None,
                 now: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.ttl = ttl
        self.max_entries = max_entries
        self.path = path
        self._now = now
        self._expiry: dict[str, float] = {}  # insertion order = age order (re-seen keys are not refreshed)
        self.dirty = False

    def __len__(self) -> int:
        return len(self._expiry)

    def load(self) -> str | None:
        """Read the saved memory; the problem as text when the file exists but cannot be used."""
        if self.path is None or not os.path.exists(self.path):
            return None
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                return "unknown format"
            now = self._now()
            entries = sorted(((str(k), float(v)) for k, v in data.get("entries", {}).items()), key=lambda kv: kv[1])
            self._expiry = {k: v for k, v in entries[-self.max_entries :] if v > now}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        return None

    def seen(self, key: str) -> bool:
        expiry = self._expiry.get(key)
        return expiry is not None and expiry > self._now()

    def add(self, key: str) -> None:
        expiry = self._expiry
        expiry.pop(key, None)
        while len(expiry) >= self.max_entries:
            del expiry[next(iter(expiry))]
        expiry[key] = self._now() + self.ttl
        self.dirty = True

    def prune(self) -> None:
        now = self._now()
        stale = [k for k, v in self._expiry.items() if v <= now]
        for k in stale:
            del self._expiry[k]
        self.dirty = self.dirty or bool(stale)

    def snapshot(self) -> dict[str, float] | None:
        """A copy to save (taken under the caller's lock), or None when nothing changed; marks it saved."""
        if self.path is None or not self.dirty:
            return None
        self.prune()
        self.dirty = False
        return dict(self._expiry)

    def write(self, entries: dict[str, float]) -> None:
        """Write a snapshot (outside the lock); raises OSError (the caller counts it and keeps going)."""
        if self.path is not None:
            write_atomic(self.path, json.dumps({"version": VERSION, "entries": entries}, separators=(",", ":")))

    def save(self) -> None:
        entries = self.snapshot()
        if entries is not None:
            try:
                self.write(entries)
            except OSError:
                self.dirty = True
                raise
