"""One report mailbox: wait for mail (IDLE, or polling), count the reports in each message, move it to the
processed folder (or, without a usable report, to the failed folder).

Built on the probes' IMAP session (``probes/imapconn.py``: implicit TLS or STARTTLS, LOGIN or XOAUTH2, every
wait bounded, server text escaped). Every message in the watched folder is work to do, because done ones
leave it: so a pass is ``UID SEARCH ALL``, no UID bookkeeping, and a restart simply goes on. Order per
message: fetch (``BODY.PEEK``, size checked first), count, save the de-duplication memory, then move; a crash
between the save and the move leaves the message in place, and re-reading it counts nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading

import structlog

from mailpulse.parsers.reports import Rejected
from mailpulse.probes.credentials import TokenSource
from mailpulse.probes.errors import ImapFolderError, ReceiveError
from mailpulse.probes.imapconn import ImapSession, imap_context, server_text
from mailpulse.probes.imapparse import Folder, find_named
from mailpulse.probes.reports.config import MailboxConfig
from mailpulse.probes.reports.ingest import Ingestor, Outcome
from mailpulse.probes.reports.metrics import ReportMetrics

log = structlog.get_logger(__name__)
CHUNK = 20  # messages per pass between moves: bounds memory (each up to max_input_bytes)
MAX_BACKOFF = 60.0


class ReportMailbox:
    def __init__(self, config: MailboxConfig, ingestor: Ingestor, metrics: ReportMetrics,
                 lock: threading.Lock) -> None:  # fmt: skip
        self.config = config
        # the session refuses literals over 4x max_fetch_bytes as not IMAP: let it take what may be counted
        self.imap = dataclasses.replace(config.imap, max_fetch_bytes=ingestor.limits.max_input_bytes)
        self.ingestor = ingestor
        self.metrics = metrics
        self.lock = lock
        self.tokens = TokenSource(config.imap.oauth2) if config.imap.oauth2 is not None else None
        self.up = False
        self.reason = "starting"
        self.passes = 0  # finished passes over the folder (tests wait on it)
        self._skip: set[int] = set()  # UIDs the server gave no body for, this session: not asked again

    def _state(self, up: bool, reason: str = "") -> None:
        if up != self.up or reason:
            with self.lock:
                if reason:
                    self.metrics.mailbox_error(self.config.name, reason)
                self.metrics.mailbox_state(self.config.name, up)
        self.up, self.reason = up, reason or "up"

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 1.0
        ctx = imap_context(self.imap)
        while not stop.is_set():
            session = ImapSession(self.imap, ctx, self.tokens)
            self._skip = set()
            try:
                await session.open()
                folder = await self._prepare(session)
                self._state(True)
                backoff = 1.0
                await self._watch(session, folder, stop)
            except ReceiveError as exc:
                if not stop.is_set():
                    if self.reason != exc.reason:
                        log.warning("report mailbox down", mailbox=self.config.name, reason=exc.reason, error=str(exc))
                    self._state(False, exc.reason)
            finally:
                await session.close()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        self.up = False

    async def _prepare(self, session: ImapSession) -> Folder:
        folders = await session.list_folders()
        folder = find_named(folders, self.config.folder)
        if folder is None:
            names = server_text(", ".join(f.display for f in folders), 300)
            raise ImapFolderError(f"mailbox {self.config.name}: no folder {self.config.folder!r} (have: {names})")
        for name in (self.config.processed_folder, self.config.failed_folder):
            if find_named(folders, name) is None:
                await session.create(name)
        await session.select(folder.name)
        return folder

    async def _watch(self, session: ImapSession, folder: Folder, stop: asyncio.Event) -> None:
        t = self.imap
        use_idle = t.watch == "idle" and "IDLE" in session.capabilities
        wake = asyncio.Event()
        while not stop.is_set():
            if await self._pass(session):
                continue  # mail that came meanwhile was announced in replies aioimaplib drops: look again
            self.passes += 1
            if use_idle:
                stopper = asyncio.ensure_future(_set_when(stop, wake))
                try:
                    await session.idle(t.idle_refresh, wake)
                finally:
                    stopper.cancel()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), t.poll_interval)
                await session.noop()

    async def _pass(self, session: ImapSession) -> bool:
        """Handle up to CHUNK messages of the folder; True if there were any."""
        uids = [u for u in await session.uid_search("ALL") if u not in self._skip][:CHUNK]
        if not uids:
            return False
        sizes = {i.uid: i.size for i in await session.uid_fetch(",".join(map(str, uids)), "(UID RFC822.SIZE)")}
        moves: dict[str, list[int]] = {"processed": [], "failed": []}
        limit = self.ingestor.limits.max_input_bytes
        for uid in uids:
            size = sizes.get(uid)
            if size is not None and size > limit:
                outcome = self._count_rejected("too_large")
            else:
                items = await session.uid_fetch(str(uid), "(UID BODY.PEEK[])")
                raw = items[0].section("BODY[]") if items else None
                if raw is None:  # gone meanwhile (another client moved it): never loop on it
                    self._skip.add(uid)
                    continue
                outcome = await asyncio.to_thread(self.ingestor.ingest_message, raw)
            moves["processed" if outcome.ok else "failed"].append(uid)
        await asyncio.to_thread(self.ingestor.save)
        for outcome_name, moved in moves.items():
            if moved:
                target = self.config.processed_folder if outcome_name == "processed" else self.config.failed_folder
                await session.delete(moved, target)  # MOVE (or COPY + \\Deleted + UID EXPUNGE)
                with self.lock:
                    for _ in moved:
                        self.metrics.mail_moved(self.config.name, outcome_name)
        return True

    def _count_rejected(self, reason: str) -> Outcome:
        with self.lock:
            self.metrics.count(Rejected("unknown", reason))
        return Outcome(rejected=1, reasons=(reason,))


async def _set_when(stop: asyncio.Event, wake: asyncio.Event) -> None:
    await stop.wait()
    wake.set()
