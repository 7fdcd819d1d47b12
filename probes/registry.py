"""Probes in flight: the token a run waits for, and what a mailbox watcher found for it.

A run registers its token *before* sending (a fast server can deliver before ``send()`` returns), then
waits on the future. A watcher that sees a tagged message calls :meth:`Registry.resolve`. After the
deadline the run gives up, but the entry stays (``late``) until the late window ends, so a late arrival
is still recognised, counted and cleaned up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Found:
    """A probe message (or an autoresponder's reply to one) seen in a mailbox."""

    token: str
    folder: str  # the server's name for it
    folder_kind: str  # inbox | junk | other
    uid: int
    internaldate: float | None  # the server's arrival time, 1 s resolution
    detected_at: float  # wall clock when mailpulse had the headers in hand
    headers: bytes
    raw: bytes | None  # the whole message, unless larger than max_fetch_bytes
    watch_mode: str = "idle"  # how it was seen: idle | poll | scan (catch-up after a (re)connect)


@dataclass
class Pending:
    token: str
    probe: str
    mailbox: str  # the watcher that should see it
    kind: str  # imap | autoresponder
    registered_at: float
    late_window: float
    future: asyncio.Future[Found] = field(repr=False)
    accepted_at: float | None = None
    late: bool = False

    @property
    def forget_at(self) -> float:
        return (self.accepted_at or self.registered_at) + self.late_window


class Registry:
    def __init__(self, on_late: Callable[[Pending, Found], None] | None = None,
                 now: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._pending: dict[str, Pending] = {}
        self.on_late = on_late
        self._now = now

    def expect(self, token: str, probe: str, mailbox: str, kind: str, late_window: float) -> Pending:
        future: asyncio.Future[Found] = asyncio.get_running_loop().create_future()
        pending = Pending(token, probe, mailbox, kind, self._now(), late_window, future)
        self._pending[token] = pending
        return pending

    def get(self, token: str) -> Pending | None:
        return self._pending.get(token)

    def resolve(self, found: Found) -> Pending | None:
        """Hand ``found`` to whoever waits for it; None if nobody does (unknown or expired token)."""
        pending = self._pending.get(found.token)
        if pending is None:
            return None
        if not pending.late and not pending.future.done():
            pending.future.set_result(found)
        else:
            del self._pending[found.token]
            if pending.late and self.on_late is not None:
                self.on_late(pending, found)
        return pending

    def done(self, token: str) -> None:
        """The run consumed its result (or failed before sending): forget the token."""
        self._pending.pop(token, None)

    def mark_late(self, token: str) -> None:
        pending = self._pending.get(token)
        if pending is not None:
            pending.late = True
            if not pending.future.done():
                pending.future.cancel()

    def expire(self) -> list[Pending]:
        now = self._now()
        gone = [p for p in self._pending.values() if p.late and now >= p.forget_at]
        for p in gone:
            del self._pending[p.token]
        return gone

    def waiting(self, mailbox: str, kind: str | None = None) -> list[Pending]:
        return [p for p in self._pending.values() if p.mailbox == mailbox and (kind is None or p.kind == kind)]

    def restore(self, token: str, probe: str, mailbox: str, kind: str, accepted_at: float, late_window: float) -> None:
        """A probe in flight when mailpulse stopped: only a late arrival (and its cleanup) is left for it."""
        future: asyncio.Future[Found] = asyncio.get_running_loop().create_future()
        future.cancel()
        self._pending[token] = Pending(token, probe, mailbox, kind, accepted_at, late_window, future, accepted_at,
                                       late=True)  # fmt: skip

    def snapshot(self) -> list[Pending]:
        return list(self._pending.values())
