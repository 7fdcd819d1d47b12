"""A probe run's hop timeline, built from the message tracker's journey of its message (pure, no I/O).

The journey is a chain of queue files (the route's host, the next host, the MX before and after its
content filter, the SRS forwarder, ...). The probe run adds what the logs cannot know: when the route
accepted the message (our clock, to the millisecond) and when it was seen over IMAP. The timeline is
the chain's events in time order; the **hops** cut the run's latency into consecutive intervals:

- the message is *at* a queue file from the moment it entered it (its first log line; for the first
  file, the route's acceptance) to the moment the next queue file took it (that file's first line);
- a queue file whose successor is on the *same host* (a content filter re-injecting it; not a local
  alias copy) is split at its last ``queued`` line (qmgr picked it up for the filter): before that is
  the host's queue, after it ``content_filter``;
- the last queue file is ``delivery`` (its queue and the final delivery, to the mailbox over LMTP or to
  a remote host), and from its final delivery line to the arrival is ``imap_seen`` (our own mailbox)
  or ``remote`` (delivered to another provider, which then took this long to show it).

Boundaries are made monotonic (a log stamp with whole seconds can lie up to a second before the
acceptance we measured): so the hops add up to the measured latency, unless the logs put the final
delivery after the arrival (clock skew between the hosts and the prober); ``log_offset`` says how far
the entry host's first line was from the acceptance.

The hop names are a fixed enum (:data:`HOPS`); a host's hop comes from its role (``submit``, ``relay``,
``mx``, ``srs``): configured per log host name, else inferred from where it sits in the journey.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mailpulse.exporter.scanindex import Scan
from mailpulse.exporter.tracking.api import Journey, QueueFile, Step

ROLES = ("submit", "relay", "mx", "srs")
ROLE_HOPS = {"submit": "submit_queue", "relay": "relay", "mx": "mx_queue", "srs": "srs"}
#: Every hop name, in the order a message meets them.
HOPS = ("submit_queue", "relay", "mx_queue", "content_filter", "srs", "delivery", "imap_seen", "remote")
UNCORRELATED = ("no_queue_id", "not_in_logs", "incomplete")
FINAL = ("sent", "bounced", "expired")
_ENTRY_STEPS = ("accepted", "picked_up", "cleanup", "notice")
_NOT_A_HOST = ("", "none", "other", "internal", "local", "mixed")


@dataclass(frozen=True)
class Event:
    """One line of the timeline: a log step (host and queue ID set) or the probe's own (host "")."""

    ts: float
    host: str
    queue_id: str
    what: str  # accepted | queued | handoff | deferred | reply | sent | bounced | expired | removed | seen ...
    detail: str = ""

    def as_json(self, start: float) -> dict[str, object]:
        return {"t": round(self.ts - start, 3), "host": self.host, "queue_id": self.queue_id, "event": self.what,
                "detail": self.detail}  # fmt: skip


@dataclass(frozen=True)
class Hop:
    hop: str  # one of HOPS
    host: str  # the log host it was at ("" for imap_seen / remote)
    start: float
    seconds: float


@dataclass(frozen=True)
class Held:
    """Where a lost (or late) run's message was when the deadline passed, and the log's reason."""

    host: str
    queue_id: str
    status: str  # deferred | bounced | expired | queued | delivered (by our last host, not seen in time)
    reason: str  # a delivery reason class, or "none"
    provider: str  # destination provider class, "" when none

    @property
    def text(self) -> str:
        if self.status == "delivered":
            where = (
                "to the mailbox"
                if self.provider == "local"
                else (f"to {self.provider}" if self.provider not in _NOT_A_HOST else "onwards")
            )
            return f"delivered at {self.host} {where}, not seen by the deadline"
        out = f"{self.status} at {self.host}"
        if self.reason != "none":
            out += f": {self.reason}"
        if self.provider not in _NOT_A_HOST:
            out += f" by {self.provider}"
        elif self.status == "queued":
            out += " (no delivery attempt logged yet)"
        return out


@dataclass
class Timeline:
    start: float  # the route's acceptance (or the entry line)
    events: list[Event] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)
    held: Held | None = None
    uncorrelated: str | None = None  # one of UNCORRELATED
    complete: bool = False  # the final delivery is in the logs
    log_offset: float | None = None  # the entry host's first line minus the route's acceptance
    precise: bool = False  # hops from Postfix's delays= (10 ms), not from the whole-second log stamps

    @property
    def hop_sum(self) -> float:
        return sum(h.seconds for h in self.hops)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "hops": [{"hop": h.hop, "host": h.host, "seconds": round(h.seconds, 3)} for h in self.hops],
            "events": [e.as_json(self.start) for e in self.events],
        }
        if self.held is not None:
            out["held"] = self.held.text
        if self.uncorrelated is not None:
            out["uncorrelated"] = self.uncorrelated
        if self.log_offset is not None:
            out["log_offset_seconds"] = round(self.log_offset, 3)
        out["hops_from"] = "postfix_delays" if self.precise else "log_stamps"
        return out


def chain(journey: Journey) -> list[QueueFile]:
    """The path of queue files the message took: from the root through hand-offs, at each step the child
    whose subtree was active last (a probe has one recipient: one path); then on through the journeys the
    query stitched on (hand-offs the tracker could not link)."""
    heads = [journey.root]
    heads += [f for f in (journey.get(h, q) for h, q in journey.stitched) if f is not None]
    path: list[QueueFile] = []
    seen: set[tuple[str, str]] = set()
    for head in heads:
        if (head.host, head.queue_id) in seen:
            continue
        path.append(head)
        seen.add((head.host, head.queue_id))
        while True:
            kids = [journey.get(h, q) for h, q, kind in path[-1].children if kind != "notice"]
            files = [k for k in kids if k is not None and (k.host, k.queue_id) not in seen]
            if not files:
                break
            nxt = max(files, key=lambda f: f.steps[-1].ts if f.steps else 0.0)
            seen.add((nxt.host, nxt.queue_id))
            path.append(nxt)
    return path


def _entered(f: QueueFile) -> float | None:
    return next((s.ts for s in f.steps if s.step in _ENTRY_STEPS), f.steps[0].ts if f.steps else None)


def final_delivery(f: QueueFile) -> Step | None:
    return next((s for s in f.steps if s.step == "delivery" and s.status in FINAL), None)


def _handoff(f: QueueFile) -> Step | None:
    return next((s for s in f.steps if s.step == "handoff"), None)


def roles(path: list[QueueFile], configured: Mapping[str, str], entry_role: str) -> list[str]:
    """Each queue file's host role: configured by log host name, else inferred: the route's entry host is
    ``submit`` (SASL), ``relay`` (client certificate) or ``mx`` (no authentication); a later host that
    delivers to a mailbox or filters is an ``mx``; one that passes the message on is a ``srs`` forwarder
    after an MX, a ``relay`` otherwise; a queue file on the same host as its parent shares its role."""
    out: list[str] = []
    for i, f in enumerate(path):
        role = configured.get(f.host)
        if role is None:
            if i == 0:
                role = entry_role
            elif f.host == path[i - 1].host:
                role = out[-1]
            else:
                final = final_delivery(f)
                filters = i + 1 < len(path) and path[i + 1].host == f.host
                if filters or (final is not None and final.provider == "local") or i + 1 == len(path):
                    role = "mx"
                else:
                    role = "srs" if out[-1] in ("mx", "srs") else "relay"
        out.append(role)
    return out


def _events(path: list[QueueFile]) -> list[Event]:
    events: list[Event] = []
    for f in path:
        for s in f.steps:
            what = s.step
            if s.step == "delivery":
                what = s.status or "delivery"
            elif s.step in ("cleanup", "removed"):
                continue  # in every journey, says nothing about where it is
            detail = s.service
            if s.reason:
                detail += f": {s.reason}"
            if s.provider and s.provider not in ("", "none"):
                detail += f" ({s.provider})"
            events.append(Event(s.ts, f.host, f.queue_id, what, detail))
    events.sort(key=lambda e: e.ts)
    return events


def _scan_events(path: list[QueueFile], scans: Sequence[Scan]) -> list[Event]:
    """rspamd's verdicts on this message at our hosts' milters (matched by queue ID): ``signed`` where it
    DKIM-signed, ``scanned`` elsewhere."""
    where = {f.queue_id: f.host for f in path}
    events = []
    for scan in scans:
        host = where.get(scan.queue_id)
        if host is None or not scan.ts:
            continue
        detail = f"rspamd {scan.action}, score {scan.score:g}"
        if scan.signed:
            detail += ", d=" + ",".join(scan.signed)
        events.append(Event(scan.ts, host, scan.queue_id, "signed" if scan.signed else "scanned", detail))
    return events


def build(journey: Journey, *, accepted_at: float | None, arrived_at: float | None,
          configured_roles: Mapping[str, str], entry_role: str, scans: Sequence[Scan] = ()) -> Timeline:  # fmt: skip
    """The timeline of one run: ``arrived_at`` is None for a run whose message was not found (lost)."""
    path = chain(journey)
    first = _entered(path[0])
    start = accepted_at if accepted_at is not None else (first or 0.0)
    tl = Timeline(start, sorted(_events(path) + _scan_events(path, scans), key=lambda e: e.ts))
    if accepted_at is not None and first is not None:
        tl.log_offset = first - accepted_at
    tl.events.insert(0, Event(start, "", path[0].queue_id, "probe_accepted", "the route's 250 to DATA"))
    host_roles = roles(path, configured_roles, entry_role)
    bounds: list[tuple[str, str, float]] = []  # (hop, host, start)
    last = start
    for i, f in enumerate(path):
        begin = start if i == 0 else max(last, _entered(f) or last)
        last = begin
        hop = ROLE_HOPS.get(host_roles[i], "relay")
        if i + 1 == len(path):
            bounds.append(("delivery", f.host, begin))
            break
        nxt = path[i + 1]
        handoff = _handoff(f)
        bounds.append((hop, f.host, begin))
        if nxt.host == f.host and (handoff is None or handoff.service != "local"):
            # a content filter: from qmgr's last pick-up of this file to the re-injected copy's first line
            picked = [s.ts for s in f.steps if s.step == "queued"]
            cut = min(max(picked[-1] if picked else begin, begin), max(begin, _entered(nxt) or begin))
            bounds.append(("content_filter", f.host, cut))
            last = cut
    final = final_delivery(path[-1])
    tl.complete = final is not None and final.status == "sent"
    if tl.complete and arrived_at is not None and accepted_at is not None and final is not None and all(
            f.delays is not None for f in path):  # fmt: skip
        _precise_hops(tl, path, host_roles, accepted_at, arrived_at, final.provider)
        return tl
    ends = [b[2] for b in bounds[1:]]
    if final is not None:
        end = max(last, final.ts)
        ends.append(end)
        if arrived_at is not None:
            tail = "imap_seen" if final.provider == "local" else "remote"
            bounds.append((tail, "", end))
            ends.append(max(end, arrived_at))
    elif arrived_at is not None:
        ends.append(max(last, arrived_at))  # found, but the final delivery is not in the logs: the rest is one hop
    else:  # lost: held, so far, until the last line about it
        ends.append(max(last, path[-1].steps[-1].ts if path[-1].steps else last))
    for (hop, host, begin), end in zip(bounds, ends, strict=False):
        tl.hops.append(Hop(hop, host, begin, max(0.0, end - begin)))
    if arrived_at is None or not tl.complete:
        tl.held = held(path)
    if arrived_at is None and tl.complete and final is not None:
        # our last host delivered it: the mailbox (or the remote provider) did not show it in time
        tl.held = Held(path[-1].host, path[-1].queue_id, "delivered", "none", final.provider)
    return tl


def _precise_hops(tl: Timeline, path: list[QueueFile], host_roles: list[str], accepted_at: float, arrived_at: float,
                  provider: str) -> None:  # fmt: skip
    """Hops from Postfix's own ``delays=a/b/c/d`` (10 ms) of each queue file's hand-off or final delivery: a
    queue file's hop is ``b + c + d``, its time from being queued (received, cleaned up, picked up by qmgr)
    to having handed the message on; its reception ``a`` overlaps the previous file's transmission (or, for
    the first, lies before the route's 250). A content filter's parent splits into ``b`` (its queue) and
    ``c + d`` (connection, scan and re-injection: the filter answers after re-injecting). The arrival hop
    is the rest of the measured latency, so the hops still add up to it (or exceed it slightly: ``delays``
    are rounded up)."""
    tl.hops = []
    t = accepted_at
    for i, f in enumerate(path):
        assert f.delays is not None
        _, b, c, d = f.delays
        hop = "delivery" if i + 1 == len(path) else ROLE_HOPS.get(host_roles[i], "relay")
        nxt = path[i + 1] if i + 1 < len(path) else None
        handoff = _handoff(f)
        parts = [(hop, b + c + d)]
        if nxt is not None and nxt.host == f.host and (handoff is None or handoff.service != "local"):
            parts = [(hop, b), ("content_filter", c + d)]
        for name, seconds in parts:
            tl.hops.append(Hop(name, f.host, t, seconds))
            t += seconds
    tail = "imap_seen" if provider == "local" else "remote"
    tl.hops.append(Hop(tail, "", t, max(0.0, arrived_at - t)))
    tl.precise = True


def held(path: list[QueueFile]) -> Held | None:
    """Where the message is (the last queue file on its path that has not handed it on or delivered it
    finally) and the latest reason the log gave there."""
    for f in reversed(path):
        if _handoff(f) is not None:
            return None  # it left our hosts' logs from here on (an unlinked hop): nothing held
        attempts = [s for s in f.steps if s.step in ("delivery", "reply", "expired")]
        final = final_delivery(f)
        if final is not None and final.status == "sent":
            return None
        if not attempts:
            return Held(f.host, f.queue_id, "queued", "none", "")
        s = attempts[-1]
        status = s.status if s.step == "delivery" and s.status else ("expired" if s.step == "expired" else "deferred")
        return Held(f.host, f.queue_id, status, s.reason or "none", s.provider)
    return None
