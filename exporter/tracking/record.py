"""One tracked message: a small slotted record, its timeline packed into ints.

Memory is the design constraint (100,000 messages in flight must fit with the rest of the daemon in
100 MB), so a record holds no per-step objects: each step of its timeline is one int, ``(milliseconds
since the record's first line) << 16 | code``, where ``code`` indexes a table of interned
``(service, step, status, reason, provider)`` tuples (:class:`StepCodes`, bounded: each field is a
bounded label value), packed in a ``bytes`` (8 bytes a step, native order). Counters are small ints
(CPython shares them) and strings are the parser's own objects (queue ID, host and service names are
shared between records).

Why ``bytes`` and not ``array('q')``: an array is a container the cyclic GC tracks (``gc.is_tracked`` on
CPython 3.11) and costs an object header plus a separate, over-allocated buffer; ``bytes`` is one
allocation the GC never sees, so each record in flight is one GC object instead of two (every full
collection walks them all), and about 55 bytes smaller (tracemalloc). Appending builds a new ``bytes``;
timelines are a few steps long, and that costs no more than ``array.append`` (measured).
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

# flags
REMOVED = 1  # qmgr "removed" (or postsuper -d): this queue file is gone
EXPIRED = 2
DELETED = 4
NOTICE = 8  # a bounce/delay notification Postfix generated: a message of its own, linked for queries
REJECTED = 16  # rejected after it had a queue ID (milter-reject, cleanup header/body reject)
DISCARDED = 32
DONE = 64  # its root's final outcome was counted (or it was evicted)
HANDOFF = 128  # it handed the message on (content filter, internal hop, forward): not a final delivery
TEMPFAIL = 256  # rejected with a 4xx after it had a queue ID (greylisting milter): the client sends it again

MAX_STEPS = 64  # a message deferred for days logs a line per retry; its timeline keeps the first and last ones
CODE_BITS = 16
CODE_MASK = (1 << CODE_BITS) - 1
STEP_BYTES = 8
pack_step = struct.Struct("=q").pack  # one step, as array('q') stores it (native order, 8 bytes)
_unpack_step = struct.Struct("=q").unpack_from


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a message's timeline, as the query API returns it."""

    ts: float  # epoch seconds
    host: str
    queue_id: str
    service: str
    step: str  # accepted | picked_up | cleanup | queued | delivery | reply | handoff | notice | expired | deleted
    #            | rejected | removed
    status: str  # delivery status (sent, deferred, bounced, ...) or ""
    reason: str  # bounded reply class, "" when none
    provider: str  # destination provider class, "" when none


class StepCodes:
    """Interned ``(service, step, status, reason, provider)`` tuples, by small int code."""

    def __init__(self) -> None:
        self.table: list[tuple[str, str, str, str, str]] = []
        self.index: dict[tuple[str, str, str, str, str], int] = {}  # the tracker looks codes up here inline

    def code(self, service: str, step: str, status: str = "", reason: str = "", provider: str = "") -> int:
        key = (service, step, status, reason, provider)
        found = self.index.get(key)
        if found is not None:
            return found
        if len(self.table) > CODE_MASK:  # cannot happen with bounded labels; stay bounded anyway
            return self.code("other", step) if service != "other" else 0
        found = self.index[key] = len(self.table)
        self.table.append(key)
        return found


class Msg:
    """A queue file on one host: ``(host, qid)``; linked to its parent (the message it continues) and
    children (re-injected copies, hops, forwards, notifications)."""

    __slots__ = (
        "attempts", "bounced", "children", "deferred", "delivered", "entry", "flags", "host", "mid", "parent",
        "pending", "provider", "qid", "steps", "t0",
    )  # fmt: skip

    def __init__(self, host: str, qid: str, t0: float, entry: str) -> None:
        self.host = host
        self.qid = qid
        self.t0 = t0
        self.entry = entry
        self.mid: str | None = None
        self.flags = 0
        self.delivered = 0
        self.bounced = 0
        self.deferred = 0
        self.attempts = 0
        self.parent: Msg | None = None
        self.children: list[Msg] | None = None
        self.pending = 1  # on a root: queue files of its journey not yet removed (itself included)
        self.provider = ""
        # packed steps (see the module's docstring): no int object per step, no GC object
        self.steps = b""

    def add_step(self, ts: float, code: int) -> None:
        steps = self.steps
        if len(steps) >= MAX_STEPS * STEP_BYTES:
            cut = MAX_STEPS // 2 * STEP_BYTES  # keep the first half and the latest
            steps = steps[:cut] + steps[cut + STEP_BYTES :]
        offset = int((ts - self.t0) * 1000)
        self.steps = steps + pack_step(offset << CODE_BITS | code if offset > 0 else code)

    def step_values(self) -> list[int]:
        """The packed steps as ints."""
        return array("q", self.steps).tolist()

    def first_code(self) -> int:
        """The step code of the first line (the caller checks that there is one)."""
        return int(_unpack_step(self.steps)[0]) & CODE_MASK

    def last(self) -> float:
        """Epoch of the last line seen for this queue file."""
        steps = self.steps
        if not steps:
            return self.t0
        return self.t0 + (int(_unpack_step(steps, len(steps) - STEP_BYTES)[0]) >> CODE_BITS) / 1000

    def root(self) -> Msg:
        node = self
        while node.parent is not None and not node.flags & NOTICE:
            node = node.parent
        return node

    def journey(self) -> list[Msg]:
        """This record and its descendants through hand-offs (not notifications), parents first."""
        out = [self]
        if self.children is None:
            return out  # most records: no hop, no notice
        i = 0
        while i < len(out):
            kids = out[i].children
            if kids:
                for kid in kids:
                    if not kid.flags & NOTICE:
                        out.append(kid)
            i += 1
        return out
