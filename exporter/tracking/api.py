"""The message tracker's public query API, as other features get it: the :data:`MESSAGE_TRACKING`
capability (:mod:`exporter.capabilities`) and the plain, immutable records it returns.

The Postfix-logs feature provides it while tracking is on; a reader (the probes' hop timelines) looks it
up through the kernel's capabilities, never by importing the feature or the tracker's internals. Every
call takes the shared lock for the time of one lookup and returns copies, so a caller holds nothing of
the tracker's between calls (the tracker's records are reused and trimmed under the lock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailpulse.exporter.capabilities import Capability
from mailpulse.exporter.tracking.record import Step
from mailpulse.parsers.postfix.providers import PROVIDERS
from mailpulse.parsers.postfix.vocab import DELIVERY_REASONS

if TYPE_CHECKING:
    from mailpulse.exporter.tracking.record import Msg
    from mailpulse.exporter.tracking.tracker import Tracker

__all__ = ["DELIVERY_REASONS", "MESSAGE_TRACKING", "PROVIDERS", "Journey", "MessageTracking", "QueueFile", "Step"]

#: The capability the Postfix-logs feature provides while message tracking is on.
MESSAGE_TRACKING: Capability[MessageTracking] = Capability("postfix.message_tracking")
MAX_FILES = 32  # queue files returned for one journey (a probe crosses five at most in the lab)


@dataclass(frozen=True)
class QueueFile:
    """One queue file of a journey: where it was, what it continues, what continues it, its steps."""

    host: str
    queue_id: str
    message_id: str | None
    parent: tuple[str, str] | None  # (host, queue ID)
    children: tuple[tuple[str, str, str], ...]  # (host, queue ID, kind: handoff | notice)
    steps: tuple[Step, ...]  # in time order


@dataclass(frozen=True)
class Journey:
    """A message's queue files, the root (where it entered) first, every parent before its children;
    notifications (bounces) are not part of it. ``outcome`` is set once the journey ended and was counted."""

    files: tuple[QueueFile, ...]
    finished: bool
    outcome: str | None

    @property
    def root(self) -> QueueFile:
        return self.files[0]

    def get(self, host: str, queue_id: str) -> QueueFile | None:
        return next((f for f in self.files if f.host == host and f.queue_id == queue_id), None)

    def has_queue_id(self, queue_id: str) -> bool:
        return any(f.queue_id == queue_id for f in self.files)


class MessageTracking:
    """Queries on the live tracker, each under the shared lock."""

    def __init__(self, tracker: Tracker, lock: threading.Lock) -> None:
        self._tracker = tracker
        self._lock = lock

    def journey(self, queue_id: str | None = None, message_id: str | None = None, host: str = "") -> Journey | None:
        """The journey of the message whose queue file ``queue_id`` (on ``host``, or any host) or whose
        Message-ID is given. With both, the Message-ID is looked up first and the journey kept only if it
        holds that queue ID (short queue IDs repeat across hosts); else the queue ID alone decides."""
        with self._lock:
            t = self._tracker
            candidates = []
            if message_id:
                found = t.find_message_id(message_id)
                if found is not None:
                    candidates.append(found)
            if queue_id:
                found = t.find(host, queue_id)
                if found is not None:
                    candidates.append(found)
            for msg in candidates:
                journey = self._journey(msg)
                if queue_id is None or journey.has_queue_id(queue_id) or msg is candidates[-1]:
                    return journey
            return None

    def _journey(self, msg: Msg) -> Journey:
        # through the records' own links: a queue file already removed (its journey waiting out the link
        # grace) is no longer found by queue ID, but its children still point to it
        t = self._tracker
        root = msg.root()
        steps = t.timeline(root)
        by_file: dict[tuple[str, str], list[Step]] = {}
        for step in steps:
            by_file.setdefault((step.host, step.queue_id), []).append(step)
        files = []
        for m in root.journey()[:MAX_FILES]:
            v = t.view(m)
            files.append(QueueFile(v.host, v.queue_id, v.message_id, v.parent, v.children,
                                   tuple(by_file.get((v.host, v.queue_id), ()))))  # fmt: skip
        view = t.view(root)
        return Journey(tuple(files), view.finished, view.outcome)
