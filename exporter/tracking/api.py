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
from mailpulse.exporter.tracking.record import HANDOFF, NOTICE, Step
from mailpulse.parsers.postfix import events as ev
from mailpulse.parsers.postfix.providers import PROVIDERS
from mailpulse.parsers.postfix.vocab import DELIVERY_REASONS

if TYPE_CHECKING:
    from mailpulse.exporter.tracking.record import Msg
    from mailpulse.exporter.tracking.tracker import HostSource, Tracker

__all__ = [
    "DELIVERY_REASONS", "MESSAGE_TRACKING", "PROVIDERS", "DelayIndex", "Journey", "MessageTracking", "QueueFile",
    "Step",
]  # fmt: skip

#: The capability the Postfix-logs feature provides while message tracking is on.
MESSAGE_TRACKING: Capability[MessageTracking] = Capability("postfix.message_tracking")
MAX_FILES = 32  # queue files returned for one journey (a probe crosses five at most in the lab)
MAX_SEGMENTS = 8  # unlinked hand-offs followed
MAX_DELAYS = 20_000  # queue files whose delays= are kept


@dataclass(frozen=True)
class QueueFile:
    """One queue file of a journey: where it was, what it continues, what continues it, its steps."""

    host: str
    queue_id: str
    message_id: str | None
    parent: tuple[str, str] | None  # (host, queue ID)
    children: tuple[tuple[str, str, str], ...]  # (host, queue ID, kind: handoff | notice)
    steps: tuple[Step, ...]  # in time order
    #: Postfix's ``delays=a/b/c/d`` of its hand-off or final delivery (before the queue manager, in it,
    #: connection setup, transmission; 10 ms precision), when :meth:`DelayIndex.want` was asked; else None
    delays: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Journey:
    """A message's queue files, the root (where it entered) first, every parent before its children;
    notifications (bounces) are not part of it. ``outcome`` is set once the journey ended and was counted."""

    files: tuple[QueueFile, ...]
    finished: bool
    outcome: str | None
    #: (host, queue ID) of each further journey a hand-off named but the tracker could not link, in order
    stitched: tuple[tuple[str, str], ...] = ()

    @property
    def root(self) -> QueueFile:
        return self.files[0]

    def get(self, host: str, queue_id: str) -> QueueFile | None:
        return next((f for f in self.files if f.host == host and f.queue_id == queue_id), None)

    def has_queue_id(self, queue_id: str) -> bool:
        return any(f.queue_id == queue_id for f in self.files)


class DelayIndex:
    """Postfix's ``delays=`` of the sent deliveries (hand-offs and final ones) by (host, queue ID): the log
    stamps have whole seconds, the delays 10 ms. Recorded only once a reader asked (:meth:`want`): a
    ``postfix`` format handler, so until then one attribute test per delivery line is all it costs.
    Bounded: the latest :data:`MAX_DELAYS` queue files."""

    def __init__(self) -> None:
        self.wanted = False
        self.source: HostSource | None = None  # the parser: the host of the line it parsed last
        self._delays: dict[tuple[str, str], tuple[float, float, float, float]] = {}

    def want(self) -> None:
        self.wanted = True

    def record(self, e: ev.Delivery) -> None:
        if not self.wanted or e.status != "sent" or e.delays is None or self.source is None:
            return
        d = self._delays
        if len(d) >= MAX_DELAYS:
            del d[next(iter(d))]
        d[(self.source.host, e.queue_id)] = e.delays

    def get(self, host: str, queue_id: str) -> tuple[float, float, float, float] | None:
        return self._delays.get((host, queue_id))


class MessageTracking:
    """Queries on the live tracker, each under the shared lock."""

    def __init__(self, tracker: Tracker, lock: threading.Lock, delays: DelayIndex | None = None) -> None:
        self._tracker = tracker
        self._lock = lock
        self._delays = delays

    def want_delays(self) -> None:
        """Ask for Postfix's ``delays=`` on the queue files (:attr:`QueueFile.delays`) from now on."""
        if self._delays is not None:
            self._delays.want()

    def journey(self, queue_id: str | None = None, message_id: str | None = None, host: str = "",
                since: float | None = None) -> Journey | None:  # fmt: skip
        """The journey of the message whose queue file ``queue_id`` (on ``host``, or any host) or whose
        Message-ID is given, with the queue ID deciding when both are (short queue IDs repeat across hosts).

        ``since`` (epoch): also look for ``queue_id`` among the queue files already removed whose journey
        has not ended yet (not found by queue ID until it is counted), from messages entered since then.
        A hand-off whose ``queued as`` the tracker could not link (the next host's copy was removed before the
        line naming it was read) is followed here, and the next journey appended (``stitched``)."""
        mid = message_id.strip("<>") if message_id else None
        with self._lock:
            t = self._tracker
            by_mid = t.find_message_id(mid) if mid else None
            by_qid = None
            if by_mid is not None and (not queue_id or any(
                    m.qid == queue_id and (not host or m.host == host) for m in by_mid.root().journey())):  # fmt: skip
                by_qid = by_mid  # the Message-ID's journey holds the queue ID: that is the one
            elif queue_id:
                # short queue IDs repeat across hosts: the one whose Message-ID is ours (or not logged yet)
                hosts = [host] if host else list(t.hosts)
                found = (t.find(h, queue_id) for h in hosts)
                by_qid = next((m for m in found if m is not None and m.mid in (None, mid)), None)
                if by_qid is None and since is not None:
                    by_qid = self._find_recent(queue_id, host, since, mid)
            base = by_qid or by_mid
            if base is None:
                return None
            root = base.root()
            records = root.journey()
            heads: list[Msg] = []
            while len(heads) < MAX_SEGMENTS:
                nxt = self._unlinked_next(records, mid, since)
                if nxt is None:
                    break
                head = nxt.root()
                heads.append(head)
                records = records + [m for m in head.journey() if m not in records]
            return self._journey(root, records, heads)

    def _unlinked_next(self, records: list[Msg], mid: str | None, since: float | None) -> Msg | None:
        """The queue file a hand-off of ``records`` named (``queued as NEXTID``) that the tracker could not link:
        with per-host logs read one after another, the next host's copy can be delivered and removed before the
        line naming it is read. The tracker keeps such a hand-off as a pending link; find its queue file."""
        t = self._tracker
        open_ends = {id(m) for m in records if m.flags & HANDOFF and not any(
            not c.flags & NOTICE for c in m.children or ())}  # fmt: skip
        if not open_ends or not t.pending_links:
            return None
        for (_, qid), (parent, _) in list(t.pending_links.items()):
            if id(parent) not in open_ends:
                continue
            found = (t.find(h, qid) for h in list(t.hosts))
            child = next((m for m in found if m is not None and m.mid in (None, mid)), None)
            if child is None and since is not None:
                child = self._find_recent(qid, "", since, mid)
            if child is not None and child not in records:
                return child
        return None

    def _find_recent(self, queue_id: str, host: str, since: float, mid: str | None) -> Msg | None:
        """A removed queue file of a journey still in flight or waiting out its grace (newest first, back to
        ``since``); never the whole map: a walk back through each host's newest entries."""
        t = self._tracker
        roots: list[Msg] = [entry[2] for entry in t.settling]
        for h, files in t.hosts.items():
            if host and h != host:
                continue
            for m in reversed(files.values()):
                if m.t0 < since:
                    break
                roots.append(m.root())
        for root in roots:
            for m in root.journey():
                if m.qid == queue_id and (not host or m.host == host) and m.mid in (None, mid):
                    return m
        return None

    def _journey(self, root: Msg, records: list[Msg], heads: list[Msg]) -> Journey:
        t = self._tracker
        by_file: dict[tuple[str, str], list[Step]] = {}
        for head in (root, *heads):
            for step in t.timeline(head):
                by_file.setdefault((step.host, step.queue_id), []).append(step)
        files = []
        for m in records[:MAX_FILES]:
            v = t.view(m)
            delays = self._delays.get(v.host, v.queue_id) if self._delays is not None else None
            files.append(QueueFile(v.host, v.queue_id, v.message_id, v.parent, v.children,
                                   tuple(by_file.get((v.host, v.queue_id), ())), delays))  # fmt: skip
        view = t.view(root)
        return Journey(tuple(files), view.finished, view.outcome, tuple((h.host, h.qid) for h in heads))
