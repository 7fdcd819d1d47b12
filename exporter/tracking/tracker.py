"""Join a message's Postfix lines by queue ID, across content-filter re-injection, hops and hosts.

What one message is: the queue file it entered by (smtpd ``QID: client=`` or pickup) and every queue
file that continues it, linked parent -> child when a sent delivery says where the message went next:

* ``queued as NEWID`` from an internal relay (loopback, private network, unix socket, or a host named in
  ``postfix.tracking.internal_relays``): a content filter re-injecting it, or another of our hosts;
* local's ``forwarded as NEWID`` (an alias or .forward).

Bounce and delay notifications (``sender non-delivery notification: NEWID``) are messages of their own
(Postfix generated them); they are linked to the message they report on, for queries, and counted as
their own messages with the entry service of the bounce daemon.

A message's final outcome is counted when every queue file of its journey was removed (qmgr ``removed``,
``postsuper -d``, a reject or discard after the queue ID was assigned), after a short grace in log time
(``link_grace``) during which a late ``queued as`` line can still attach it to its parent: the lines of a
re-injected copy can be logged before the line that names it.

Keys are ``(host, queue ID)``: several hosts' logs can share a file (central syslog) or come from several
files, and short queue IDs repeat, so a queue ID seen again after its ``removed`` is a new message.

Bounds: at most ``max_messages`` queue files in flight (the oldest are evicted, in chunks, when full); a
queue file older than ``ttl`` (in log time; longer than Postfix's ``maximal_queue_lifetime``) is evicted;
finished messages are kept for queries for ``keep_finished_for`` seconds, at most ``keep_finished``.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from mailpulse.exporter.tracking.metrics import TrackingMetrics
from mailpulse.exporter.tracking.record import (
    CODE_BITS,
    CODE_MASK,
    DELETED,
    DISCARDED,
    DONE,
    EXPIRED,
    HANDOFF,
    MAX_STEPS,
    NOTICE,
    REJECTED,
    REMOVED,
    STEP_BYTES,
    TEMPFAIL,
    Msg,
    Step,
    StepCodes,
    pack_step,
)
from mailpulse.parsers.postfix import events as ev
from mailpulse.parsers.postfix.providers import INTERNAL, MIXED, NONE
from mailpulse.parsers.postfix.vocab import REJECT_ACTIONS
from mailpulse.parsers.syslog import TimestampParser

# relays whose "queued as" is one of ours (the parser extracts next_queue_id for these only)
_INTERNAL_RELAY_CLASSES = frozenset({"loopback", "private", "socket"})
_PENDING_LINKS_MAX = 10_000
_FINAL = frozenset({"sent", "bounced"})  # delivery statuses that end a recipient's attempts
_TTL_CHECK_EVERY = 60.0  # seconds of log time between TTL sweeps
_MAX_STEP_BYTES = MAX_STEPS * STEP_BYTES
_CUT = MAX_STEPS // 2 * STEP_BYTES
_ENDINGS = EXPIRED | DELETED | REJECTED | DISCARDED  # flags that make an outcome other than delivered


class HostSource(Protocol):
    """The parser: the host and program tag (with pid) of the line it parsed last (read in the event's handler)."""

    host: str
    tag: str


@dataclass(frozen=True)
class TrackerLimits:
    max_messages: int = 200_000
    ttl: float = 6 * 86400.0  # maximal_queue_lifetime (5 d) + a day
    keep_finished: int = 10_000
    keep_finished_for: float = 3600.0
    link_grace: float = 5.0


@dataclass(frozen=True)
class MessageView:
    """One queue file of a message, as the query API returns it."""

    host: str
    queue_id: str
    message_id: str | None
    entry: str
    parent: tuple[str, str] | None  # (host, queue ID)
    children: tuple[tuple[str, str, str], ...]  # (host, queue ID, kind: handoff | notice)
    finished: bool
    outcome: str | None  # on a finished root: its final outcome


class Tracker:
    """The in-memory map ``host -> queue ID -> Msg`` and the joins. Not thread-safe: the pipeline holds the
    shared lock while it calls the handlers, as the scrape does while it reads."""

    def __init__(self, metrics: TrackingMetrics, source: HostSource, limits: TrackerLimits | None = None,
                 now: float | None = None) -> None:  # fmt: skip
        self.metrics = metrics
        self.source = source
        self.limits = limits or TrackerLimits()
        self.codes = StepCodes()
        self._code_index = self.codes.index  # the table's dict, looked up inline on every tracked line
        self.hosts: dict[str, dict[str, Msg]] = {}
        self.count = 0  # queue files in flight
        self.by_mid: dict[str, Msg] = {}
        self.pending_links: dict[tuple[str, str], tuple[Msg, str]] = {}  # (host or "", qid) -> (parent, kind)
        # (log-time deadline, monotonic deadline, root): journeys that ended, waiting out link_grace
        self.settling: deque[tuple[float, float, Msg]] = deque()
        # roots whose queue files are all removed, not yet counted (within link_grace): a hop's receiving side
        # read before the line that names it (another host's file) must still be found by that line
        self.closed: dict[tuple[str, str], Msg] = {}
        self.finished: deque[tuple[float, Msg]] = deque()  # (when, root)
        self.finished_keys: dict[tuple[str, str], Msg] = {}
        self.outcomes: dict[int, str] = {}  # id(root) -> outcome, for finished roots (queries)
        self.timestamps = TimestampParser(now)
        self._minutes: dict[str, float] = {}  # "Nov 24 10:00" -> epoch of that minute
        self._ts_cache: dict[str, float] = {}  # timestamps as logged -> epoch (lines of one second share one)
        self._multi_host = False  # more than one host seen: a miss is looked up on the others
        self.now = 0.0  # the latest log time seen
        self._next_ttl_check = 0.0
        self.on_finish: Callable[[Msg, str, str], None] | None = None  # (root, outcome, provider): scan --summary
        # smtpd processes ((host, tag)) that logged "NOQUEUE: discard" -> its time: the queue file the same process
        # opens next is dropped by cleanup without another line (see _accepted)
        self._discarding: dict[tuple[str, str], float] = {}

    # -- wiring ---------------------------------------------------------------------------------------
    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            ev.SmtpdAccepted: self._accepted,
            ev.Pickup: self._pickup,
            ev.CleanupMessage: self._cleanup,
            ev.QueueActive: self._active,
            ev.Delivery: self._delivery,
            ev.RemoteReply: self._reply,
            ev.BounceNotice: self._notice,
            ev.QueueExpired: self._expired,
            ev.QueueRemoved: self._removed,
            ev.QueueDeleted: self._deleted,
            ev.AccessAction: self._access,
        }

    def _epoch(self, ts: str) -> float:
        epoch = self._ts_cache.get(ts)
        if epoch is None:
            epoch = self._parse_ts(ts)
            if epoch is None:
                return self.now
            if len(self._ts_cache) >= 4096:
                self._ts_cache.clear()
            self._ts_cache[ts] = epoch
        self.now = max(self.now, epoch)
        return epoch

    def _step(self, msg: Msg, ts: str, service: str, step: str, status: str = "", reason: str = "",
              provider: str = "") -> float:  # fmt: skip
        """Append one step to ``msg``'s timeline; return the line's epoch. The per-line cost of tracking: one
        call instead of :meth:`_epoch`, :meth:`StepCodes.code` and :meth:`Msg.add_step` (each a frame and
        a tuple in CPython), the same result."""
        epoch = self._ts_cache.get(ts)
        if epoch is None:
            epoch = self._epoch(ts)
        elif epoch > self.now:
            self.now = epoch
        key = (service, step, status, reason, provider)
        code = self._code_index.get(key)
        if code is None:
            code = self.codes.code(service, step, status, reason, provider)
        steps = msg.steps
        if len(steps) >= _MAX_STEP_BYTES:
            steps = steps[:_CUT] + steps[_CUT + STEP_BYTES :]  # keep the first half and the latest (as Msg.add_step)
        offset = int((epoch - msg.t0) * 1000)
        msg.steps = steps + pack_step(offset << CODE_BITS | code if offset > 0 else code)
        return epoch

    def _parse_ts(self, ts: str) -> float | None:
        # "Nov 24 10:00:03": the minute's epoch is parsed once, the seconds added; any other stamp (RFC 3339)
        # goes through the full parser
        if len(ts) == 15 and ts[12] == ":" and ts[13:15].isdigit() and ts[13:15].isascii():
            base = self._minutes.get(ts[:12])
            if base is None:
                base = self.timestamps(ts[:12] + ":00")
                if base is None:
                    return None
                if len(self._minutes) > 4096:
                    self._minutes.clear()
                self._minutes[ts[:12]] = base
            return base + int(ts[13:15])
        return self.timestamps(ts)

    def note_hosts(self) -> None:
        """The host maps changed wholesale (a restored state)."""
        self._multi_host = len(self.hosts) > 1

    # -- lookups --------------------------------------------------------------------------------------
    def _lookup(self, qid: str) -> Msg | None:
        """The queue file ``qid`` of this line's host; else of another host. Postfix writing its own log
        (``maillog_file``) puts each process's ``myhostname`` there, so one Postfix can log a message's smtpd
        line under ``mx`` and its cleanup line under ``mail``; hosts are few and misses rare."""
        hosts = self.hosts
        d = hosts.get(self.source.host)
        msg = d.get(qid) if d is not None else None
        if msg is None and self._multi_host:
            for other in hosts.values():
                if other is not d:
                    msg = other.get(qid)
                    if msg is not None:
                        break
        return msg

    def _get(self, qid: str) -> Msg | None:
        d = self.hosts.get(self.source.host)  # the common case inline: one frame less per line
        if d is not None:
            msg = d.get(qid)
            if msg is not None:
                return msg
        msg = self._lookup(qid) if self._multi_host else None
        if msg is None:
            self.metrics.orphans[()] = self.metrics.orphans.get((), 0) + 1
        return msg

    def _open(self, qid: str, ts: str, service: str, step: str) -> Msg | None:
        # the record keeps one shared host string, not the one sliced from this line (52 bytes a message)
        host = sys.intern(self.source.host)
        d = self.hosts.get(host)
        if d is None:
            d = self.hosts[host] = {}
            self._multi_host = len(self.hosts) > 1
        epoch = self._epoch(ts)
        old = d.get(qid)
        if old is not None:
            if old.t0 == epoch and old.steps and self.codes.table[old.first_code()][1] == step:
                return None  # the same line again (a batch read twice after kill -9)
            self._evict_journey(old.root(), "reused")
        else:
            done = self.finished_keys.get((host, qid))
            if done is not None and done.t0 <= epoch <= done.last():
                return None  # a finished message's line read again
        if self.count >= self.limits.max_messages:
            self._evict_oldest()
        msg = Msg(host, qid, epoch, service)
        d[qid] = msg
        self.count += 1
        self._step(msg, ts, service, step)
        if self.pending_links:
            link = self.pending_links.pop((host, qid), None) or self.pending_links.pop(("", qid), None)
            if link is not None:
                self._attach(link[0], msg, link[1])
        return msg

    # -- handlers -------------------------------------------------------------------------------------
    def _accepted(self, e: ev.SmtpdAccepted) -> None:
        msg = self._open(e.queue_id, e.ts, e.service, "accepted")
        if self._discarding and msg is not None:
            since = self._discarding.pop((msg.host, self.source.tag), None)
            if since is not None and msg.t0 - since <= 1.0:
                # a DISCARD at RCPT (access map, before the queue file existed) is logged as "NOQUEUE: discard";
                # smtpd then opens the queue file ("client=") and cleanup drops it silently: no removed line
                self._close(e.queue_id, e.ts, e.service, "discarded", DISCARDED)

    def _pickup(self, e: ev.Pickup) -> None:
        self._open(e.queue_id, e.ts, e.service, "picked_up")

    def _cleanup(self, e: ev.CleanupMessage) -> None:
        msg = self._lookup(e.queue_id)
        if msg is None:
            # no client=/pickup line: a notification Postfix generated, or a message that entered before
            msg = self._open(e.queue_id, e.ts, e.service, "cleanup")
            if msg is None:
                return
        else:
            self._step(msg, e.ts, e.service, "cleanup")
        if msg.mid is None:
            msg.mid = e.message_id
            self.by_mid[e.message_id] = msg

    def _active(self, e: ev.QueueActive) -> None:
        msg = self._get(e.queue_id)
        if msg is not None:
            self._step(msg, e.ts, e.service, "queued")

    def _delivery(self, e: ev.Delivery) -> None:
        msg = self._get(e.queue_id)
        if msg is None:
            return
        status = e.status
        nxt = e.next_queue_id
        if nxt and status == "sent" and (e.forwarded or e.relay_class in _INTERNAL_RELAY_CLASSES or
                                         e.provider == INTERNAL):  # fmt: skip
            msg.flags |= HANDOFF
            self._step(msg, e.ts, e.service, "handoff", status, "", e.provider)
            if not msg.delivered and not msg.bounced:
                msg.provider = ""  # a deferral before the hand-off is not where the message ended
            self._link(msg, nxt, "forward" if e.forwarded else "handoff")
            return
        self._step(msg, e.ts, e.service, "delivery", status, e.reason, e.provider)
        msg.attempts += 1
        if status in _FINAL and not msg.delivered and not msg.bounced:
            msg.provider = ""  # the first final attempt: deferrals before it do not name the destination
        if status == "sent":
            msg.delivered += 1
        elif status == "bounced":
            msg.bounced += 1
        elif status == "deferred":
            msg.deferred += 1
        elif status == "expired":
            msg.flags |= EXPIRED
        provider = e.provider
        if provider and provider != msg.provider:
            msg.provider = provider if not msg.provider or msg.provider == NONE else MIXED

    def _reply(self, e: ev.RemoteReply) -> None:
        msg = self._lookup(e.queue_id)
        if msg is not None:
            self._step(msg, e.ts, e.service, "reply", "", e.reason, e.provider)

    def _notice(self, e: ev.BounceNotice) -> None:
        parent = self._get(e.queue_id)
        if parent is None or not e.notice_id:
            return
        self._step(parent, e.ts, e.service, "notice", e.kind)
        d = self.hosts[parent.host]
        child = d.get(e.notice_id)
        if child is None:
            child = self._open(e.notice_id, e.ts, e.service, "notice")
            if child is None:
                return
        child.flags |= NOTICE
        child.entry = e.service
        if child.parent is None:
            child.parent = parent
            (parent.children if parent.children is not None else _set_children(parent)).append(child)
            self.metrics.link("notice")

    def _expired(self, e: ev.QueueExpired) -> None:
        msg = self._get(e.queue_id)
        if msg is not None:
            msg.flags |= EXPIRED
            self._step(msg, e.ts, e.service, "expired")

    def _removed(self, e: ev.QueueRemoved) -> None:
        self._close(e.queue_id, e.ts, e.service, "removed", 0)

    def _deleted(self, e: ev.QueueDeleted) -> None:
        self._close(e.queue_id, e.ts, e.service, "deleted", DELETED)

    def _access(self, e: ev.AccessAction) -> None:
        if not e.queue_id:
            if e.action == "discard" and e.daemon == "smtpd":
                if len(self._discarding) >= 1024:  # bounded: an entry is normally taken by the next line
                    self._discarding.clear()
                self._discarding[(self.source.host, self.source.tag)] = self._epoch(e.ts)
            return
        if e.action in REJECT_ACTIONS:
            temporary = TEMPFAIL if e.code[:1] == "4" else 0
            self._close(e.queue_id, e.ts, e.service, "rejected", REJECTED | temporary, e.reason)
        elif e.action in {"discard", "milter-discard"}:
            self._close(e.queue_id, e.ts, e.service, "discarded", DISCARDED)

    def _close(self, qid: str, ts: str, service: str, step: str, flag: int, reason: str = "") -> None:
        msg = self._lookup(qid)
        if msg is None:
            return
        del self.hosts[msg.host][qid]
        self.count -= 1
        msg.flags |= REMOVED | flag
        self._step(msg, ts, service, step, "", reason)
        root = msg.root()
        root.pending -= 1
        if msg.parent is None:
            self.closed[(msg.host, qid)] = msg
        if root.pending <= 0:
            grace = self.limits.link_grace
            self.settling.append((self.now + grace, time.monotonic() + grace, root))

    # -- links ----------------------------------------------------------------------------------------
    def _link(self, parent: Msg, qid: str, kind: str) -> None:
        d = self.hosts.get(parent.host)
        child = d.get(qid) if d is not None else None
        if child is None:
            for host, other in self.hosts.items():  # another host (few): the hop's receiving side
                if host != parent.host:
                    child = other.get(qid)
                    if child is not None:
                        break
        if child is None and self.closed:
            child = self._closed_root(parent.host, qid)
        if child is None:
            # its lines come later (another file read behind this one): link when it opens
            if len(self.pending_links) >= _PENDING_LINKS_MAX:
                del self.pending_links[next(iter(self.pending_links))]
            self.pending_links[("", qid)] = (parent, kind)
            return
        self._attach(parent, child, kind)

    def _closed_root(self, host: str, qid: str) -> Msg | None:
        """A removed, not yet counted root ``qid``: on ``host``, else on another host."""
        closed = self.closed
        found = closed.get((host, qid))
        if found is None:
            for other in self.hosts:
                found = closed.get((other, qid))
                if found is not None:
                    break
        return found

    def _unclose(self, root: Msg) -> None:
        key = (root.host, root.qid)
        if self.closed.get(key) is root:  # not a later queue file that reused the ID
            del self.closed[key]

    def _attach(self, parent: Msg, child: Msg, kind: str) -> None:
        if child.parent is not None or child.flags & DONE or child is parent.root():
            return
        if parent.flags & DONE:
            # the parent's journey was counted: a hand-off to a host whose log is not read leaves its link
            # waiting, and a later queue file with that ID (any host) is a message of its own, not a lost hop
            return
        if self.closed:
            self._unclose(child)
        root = parent.root()
        child.parent = parent
        (parent.children if parent.children is not None else _set_children(parent)).append(child)
        # the child's journey (itself and anything linked to it) now belongs to this root
        root.pending += child.pending
        child.pending = 0
        self.metrics.link(kind)

    # -- finishing ------------------------------------------------------------------------------------
    def end_batch(self) -> None:
        """Count the messages whose grace ran out; sweep TTL and the finished window. Under the lock."""
        now = self.now
        settling = self.settling
        while settling and settling[0][0] <= now:
            self._settle(settling.popleft()[2])
        if now >= self._next_ttl_check:
            self._next_ttl_check = now + _TTL_CHECK_EVERY
            self._sweep_ttl(now)
        self._trim_finished(now)
        self.metrics.inflight = self.count
        self.metrics.finished = len(self.finished)

    def tick(self) -> None:
        """The daemon, every few seconds: a journey whose grace ran out in wall-clock time is counted even when
        no line has come since (log time stands still while the log is quiet). Under the lock."""
        mono = time.monotonic()
        settling = self.settling
        while settling and settling[0][1] <= mono:
            self._settle(settling.popleft()[2])
        self.metrics.inflight = self.count
        self.metrics.finished = len(self.finished)

    def flush(self) -> None:
        """The end of a scan: count every message whose journey has ended, without waiting for the grace."""
        while self.settling:
            self._settle(self.settling.popleft()[2])
        self.metrics.inflight = self.count
        self.metrics.finished = len(self.finished)

    def _settle(self, root: Msg) -> None:
        if root.flags & DONE or root.pending > 0 or (root.parent is not None and not root.flags & NOTICE):
            return  # counted already, reopened by a late link, or attached to a parent meanwhile
        if self.closed:
            self._unclose(root)
        delivered = bounced = deferred = attempts = flags = 0
        provider = ""
        last = root.t0
        finished_keys = self.finished_keys
        for m in root.journey():
            delivered += m.delivered
            bounced += m.bounced
            deferred += m.deferred
            attempts += m.attempts
            flags |= m.flags
            if m.provider and m.provider != provider:
                provider = m.provider if not provider or provider == NONE else MIXED
            t = m.last()
            last = max(last, t)
            m.flags |= DONE
            finished_keys[(m.host, m.qid)] = m
        if not flags & _ENDINGS and not bounced:
            outcome = "delivered" if delivered else "unknown"  # most messages: no need for the general case
        else:
            outcome = _outcome(delivered, bounced, flags)
            if outcome == "rejected" and flags & TEMPFAIL:
                # a temporary reject (greylisting): not accepted, the client sends it again as a new queue file
                self._forget(root)
                return
        provider = provider or NONE
        self.metrics.finish(outcome, root.entry, provider, last - root.t0, attempts, deferred, root.qid)
        self.outcomes[id(root)] = outcome
        self.finished.append((self.now, root))
        if self.on_finish is not None:
            self.on_finish(root, outcome, provider)
        if len(self.finished) > self.limits.keep_finished:
            self._forget(self.finished.popleft()[1])

    def _trim_finished(self, now: float) -> None:
        finished = self.finished
        horizon = now - self.limits.keep_finished_for
        while finished and (finished[0][0] < horizon or len(finished) > self.limits.keep_finished):
            self._forget(finished.popleft()[1])

    def _forget(self, root: Msg) -> None:
        self.outcomes.pop(id(root), None)
        for m in root.journey():
            if self.finished_keys.get((m.host, m.qid)) is m:
                del self.finished_keys[(m.host, m.qid)]
            if m.mid is not None and self.by_mid.get(m.mid) is m:
                del self.by_mid[m.mid]
            m.parent = None  # let a notice child that is still in the window stand alone

    # -- eviction -------------------------------------------------------------------------------------
    def _evict_journey(self, root: Msg, reason: str) -> None:
        if root.flags & DONE:
            return
        if self.closed:
            self._unclose(root)
        for m in root.journey():
            m.flags |= DONE
            d = self.hosts.get(m.host)
            if d is not None and d.get(m.qid) is m:
                del d[m.qid]
                self.count -= 1
            if m.mid is not None and self.by_mid.get(m.mid) is m:
                del self.by_mid[m.mid]
        self.metrics.evict(reason)

    def _evict_oldest(self) -> None:
        """The cap is reached: evict the oldest 1 % (at least one), in one pass over the hosts' maps."""
        chunk = max(1, self.limits.max_messages // 100)
        candidates: list[Msg] = []
        for d in self.hosts.values():
            candidates.extend(islice(d.values(), chunk))
        candidates.sort(key=lambda m: m.t0)
        for m in candidates[:chunk]:
            if not m.flags & DONE:
                self._evict_journey(m.root(), "capacity")

    def _sweep_ttl(self, now: float) -> None:
        horizon = now - self.limits.ttl
        for d in list(self.hosts.values()):
            old = []
            for m in d.values():  # insertion order: oldest first
                if m.t0 >= horizon:
                    break
                old.append(m)
            for m in old:
                if not m.flags & DONE:
                    self._evict_journey(m.root(), "ttl")

    def reconcile(self, queued: set[str], hosts: Iterable[str]) -> int:
        """Drop the messages of ``hosts`` that are no longer in the queue (``postqueue -j``): they left it while
        mailpulse was down, so their final lines were never read. Returns how many were dropped."""
        dropped = 0
        for host in hosts:
            d = self.hosts.get(host)
            if not d:
                continue
            for m in [m for qid, m in d.items() if qid not in queued]:
                if not m.flags & DONE:
                    self._evict_journey(m.root(), "restart")
                    dropped += 1
        self.metrics.inflight = self.count
        return dropped

    # -- the query API (probe <-> log correlation) ------------------------------------------------------
    def find(self, host: str, qid: str) -> Msg | None:
        """The queue file ``qid`` on ``host``, in flight or finished within the window. ``host`` may be
        ``""``: any host (the first match)."""
        if host:
            d = self.hosts.get(host)
            msg = d.get(qid) if d is not None else None
            return msg or self.finished_keys.get((host, qid))
        for h, d in self.hosts.items():
            msg = d.get(qid) or self.finished_keys.get((h, qid))
            if msg is not None:
                return msg
        return None

    def find_message_id(self, message_id: str) -> Msg | None:
        """The latest queue file that logged this Message-ID (without the angle brackets)."""
        return self.by_mid.get(message_id.strip("<>"))

    def view(self, msg: Msg) -> MessageView:
        kids = tuple((c.host, c.qid, "notice" if c.flags & NOTICE else "handoff") for c in msg.children or ())
        parent = (msg.parent.host, msg.parent.qid) if msg.parent is not None else None
        root = msg.root()
        return MessageView(msg.host, msg.qid, msg.mid, root.entry, parent, kids, bool(msg.flags & DONE),
                           self.outcomes.get(id(msg)))  # fmt: skip

    def timeline(self, msg: Msg, *, notices: bool = False) -> list[Step]:
        """The ordered steps of the whole journey ``msg`` belongs to (from its root through every hop), by
        time; with ``notices`` the notifications it caused too."""
        root = msg.root()
        records = root.journey()
        if notices:
            records += [c for m in records for c in (m.children or ()) if c.flags & NOTICE]
        steps: list[Step] = []
        table = self.codes.table
        for m in records:
            for packed in m.step_values():
                service, step, status, reason, provider = table[packed & CODE_MASK]
                steps.append(Step(m.t0 + (packed >> CODE_BITS) / 1000, m.host, m.qid, service, step, status,
                                  reason, provider))  # fmt: skip
        steps.sort(key=lambda s: s.ts)
        return steps

    def inflight(self) -> Iterator[Msg]:
        for d in self.hosts.values():
            yield from d.values()


def _outcome(delivered: int, bounced: int, flags: int) -> str:
    outcome = ""
    for kind, hit in (("delivered", delivered), ("bounced", bounced), ("expired", flags & EXPIRED),
                      ("deleted", flags & DELETED), ("rejected", flags & REJECTED),
                      ("discarded", flags & DISCARDED)):  # fmt: skip
        if hit:
            outcome = kind if not outcome else "mixed"
    if outcome == "mixed" and not delivered and flags & EXPIRED and not flags & (DELETED | REJECTED | DISCARDED):
        outcome = "expired"  # an expired message's recipients bounce: it expired
    return outcome or "unknown"


def _set_children(msg: Msg) -> list[Msg]:
    msg.children = []
    return msg.children
