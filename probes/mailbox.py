"""One long-lived watcher per mailbox: find probe messages as they arrive, hand them over, clean up.

Each watched folder (INBOX, the \\Junk folder, ...) gets its own IMAP connection, because IDLE only
watches the selected folder; with one connection per folder both INBOX and Junk arrivals are seen at
once, not at the next poll. A folder loop:

1. connects, logs in, resolves its folder (SPECIAL-USE attribute first, then the usual names),
   SELECTs it and, the first time or after a UIDVALIDITY change, scans the recent days (catch-up
   after a restart or an outage);
2. fetches ``UID n+1:*`` headers with ``BODY.PEEK`` (never sets \\Seen), matches tokens on the client
   side (server-side header search is unreliable across providers), fetches the whole message only
   for a match, resolves the waiting run and deletes the message by UID;
3. waits in IDLE (or polls with NOOP every ``poll_interval``), re-entering IDLE every ``idle_refresh``;
4. every ``sweep_interval`` removes our own probe messages (HMAC-checked) older than the late window.

"Our own" means signed with our key *and* sent from our location (``probes.location``): probers in
several places that share a mailbox (and a key) never count or sweep each other's messages.

Any error closes the connection and reconnects with backoff; the probe runs see the mailbox as down
with the error's reason. Cleanup never moves anything into INBOX: a Junk→Inbox move would train the
provider's filter that probes are wanted mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import structlog

from mailpulse.probes.config import JUNK, TargetConfig
from mailpulse.probes.credentials import TokenSource
from mailpulse.probes.errors import ImapFolderError, ImapTimeout, ReceiveError
from mailpulse.probes.imapconn import ImapSession, imap_context, server_text
from mailpulse.probes.imapparse import FetchItem, Folder, find_named, find_special
from mailpulse.probes.message import DEFAULT_LOCATION, TAG_HEADER, TOKEN_RE, parse_tag, tokens_in
from mailpulse.probes.registry import Found, Registry
from mailpulse.probes.verdicts import parse_headers

log = structlog.get_logger(__name__)

HEADER_ITEMS = "(UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])"
CHUNK = 50  # UIDs per FETCH: bounds the memory of one response
MAX_BACKOFF = 30.0
REPORT_BYTES = 65536  # how much of an unmatched message's text is searched for a quoted probe


class WatchEvents(Protocol):
    def mailbox_state(self, mailbox: str, up: bool) -> None: ...
    def mailbox_error(self, mailbox: str, reason: str) -> None: ...
    def cleaned(self, mailbox: str, why: str, count: int) -> None: ...
    def cleanup_failed(self, mailbox: str) -> None: ...


class _FolderState:
    def __init__(self, spec: str) -> None:
        self.spec = spec  # as configured: "INBOX", "\\Junk", "Archive"
        self.up = False
        self.attempts = 0  # finished connection attempts (or losses): wait_ready waits for a fresh one
        self.error: ReceiveError | None = None
        self.wake = asyncio.Event()
        self.retry = asyncio.Event()
        self.uidvalidity: int | None = None
        self.last_uid: int | None = None
        self.next_sweep = 0.0


class MailboxWatcher:
    def __init__(self, name: str, target: TargetConfig, key: bytes, registry: Registry, events: WatchEvents, *,
                 late_window: float, sweep_interval: float = 3600.0, tokens: TokenSource | None = None,
                 location: str = DEFAULT_LOCATION, now: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.name = name
        self.location = location
        self.target = target
        self.key = key
        self.registry = registry
        self.events = events
        self.late_window = late_window
        self.sweep_interval = sweep_interval
        self.tokens = tokens
        self._now = now
        self._folders = [_FolderState(spec) for spec in dict.fromkeys(target.folders)]
        self._changed = asyncio.Event()
        self._reported: bool | None = None

    # -- state seen by the probe runs ---------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return all(f.up for f in self._folders)

    @property
    def error(self) -> ReceiveError | None:
        return next((f.error for f in self._folders if not f.up and f.error is not None), None)

    async def wait_ready(self, timeout: float) -> None:
        """Return when every folder is connected. A folder that is down gets a fresh attempt right away
        (its reconnect backoff is cut short); if that attempt fails too, its error is raised."""
        marks = {id(f): f.attempts for f in self._folders}
        for f in self._folders:
            if not f.up:
                f.retry.set()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self.up:
                        return
                    down = [f for f in self._folders if not f.up]
                    if all(f.attempts > marks[id(f)] for f in down):
                        error = next((f.error for f in down if f.error is not None), None)
                        raise error or ReceiveError(f"mailbox {self.name} is down", reason="imap_protocol")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise ImapTimeout(f"mailbox {self.name} not ready within {timeout:g}s") from None

    def _set(self, f: _FolderState, up: bool, error: ReceiveError | None) -> None:
        f.up, f.error = up, error
        f.attempts += 1
        self._changed.set()
        if error is not None:
            self.events.mailbox_error(self.name, error.reason)  # every failed attempt, not just changes
        if self.up != self._reported:
            self._reported = self.up
            self.events.mailbox_state(self.name, self.up)

    # -- running ------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        async def waker() -> None:
            await stop.wait()
            for f in self._folders:
                f.wake.set()
                f.retry.set()

        tasks = [asyncio.create_task(self._folder_loop(f, stop)) for f in self._folders]
        wake_task = asyncio.create_task(waker())
        try:
            await asyncio.gather(*tasks)
        finally:
            wake_task.cancel()
            for t in tasks:
                t.cancel()

    async def _folder_loop(self, f: _FolderState, stop: asyncio.Event) -> None:
        backoff = 1.0
        ctx = imap_context(self.target)
        while not stop.is_set():
            f.retry.clear()  # a retry asked for from here on makes the backoff below end at once
            session = ImapSession(self.target, ctx, self.tokens)
            try:
                await session.open()
                folder, trash = await self._resolve(session, f.spec)
                await self._enter(session, f, folder, trash)
                self._set(f, True, None)
                backoff = 1.0
                await self._watch(session, f, folder, trash, stop)
            except ReceiveError as exc:
                if not stop.is_set():
                    self._log_error(f, exc)
                    self._set(f, False, exc)
            finally:
                await session.close()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(f.retry.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _log_error(self, f: _FolderState, exc: ReceiveError) -> None:
        if f.error is None or f.error.reason != exc.reason:
            log.warning("mailbox watcher lost its folder", mailbox=self.name, folder=f.spec, reason=exc.reason,
                        error=str(exc))  # fmt: skip

    async def _resolve(self, session: ImapSession, spec: str) -> tuple[Folder, Folder | None]:
        folders = await session.list_folders()
        folder = find_special(folders, spec) if spec.startswith("\\") else find_named(folders, spec)
        if folder is None:
            names = server_text(", ".join(x.display for x in folders), 300)  # the server's names: capped, escaped
            raise ImapFolderError(f"mailbox {self.name}: no folder {spec!r} (have: {names})")
        trash = None
        if self.target.cleanup == "trash":
            trash = find_special(folders, "\\Trash")
            if trash is None:
                raise ImapFolderError(f"mailbox {self.name}: cleanup: trash needs a \\Trash folder")
        if trash is not None and trash.name == folder.name:
            trash = None  # watching Trash itself: delete there
        return folder, trash

    @staticmethod
    def _kind(spec: str, folder: Folder) -> str:
        if folder.name.upper() == "INBOX":
            return "inbox"
        return "junk" if spec.lower() == JUNK.lower() or "\\junk" in folder.flags else "other"

    async def _enter(self, session: ImapSession, f: _FolderState, folder: Folder, trash: Folder | None) -> None:
        info = await session.select(folder.name)
        validity = info.get("UIDVALIDITY")
        if validity != f.uidvalidity:
            f.uidvalidity, f.last_uid = validity, None
        if f.last_uid is None:
            # First connect (or the folder was recreated): look at the last days once, for probes
            # that arrived while mailpulse was down and for stale ones to sweep.
            since = datetime.fromtimestamp(self._now() - self.late_window - 86400, UTC).strftime("%d-%b-%Y")
            uids = await session.uid_search("SINCE", since)
            f.last_uid = max(uids, default=max(info.get("UIDNEXT", 1) - 1, 0))
            await self._scan(session, f, folder, trash, uids, "scan")

    async def _watch(self, session: ImapSession, f: _FolderState, folder: Folder, trash: Folder | None,
                     stop: asyncio.Event) -> None:  # fmt: skip
        t = self.target
        use_idle = t.watch == "idle" and "IDLE" in session.capabilities
        mode = "idle" if use_idle else "poll"
        while not stop.is_set():
            if await self._scan_new(session, f, folder, trash, mode):
                # Mail that arrived while we fetched and deleted was announced (EXISTS) in the replies to
                # those commands, which aioimaplib drops; IDLE would not announce it again. So only an
                # empty scan, as the last command before IDLE, makes it safe to wait.
                continue
            if self._now() >= f.next_sweep:
                await self._sweep(session, f, folder, trash)
                f.next_sweep = self._now() + self.sweep_interval
                continue
            f.wake.clear()
            if use_idle:
                await session.idle(min(t.idle_refresh, max(f.next_sweep - self._now(), 1.0)), f.wake)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(f.wake.wait(), t.poll_interval)
                await session.noop()  # Gmail (and others) report new mail only after a command

    async def _scan_new(self, session: ImapSession, f: _FolderState, folder: Folder, trash: Folder | None,
                        mode: str) -> bool:  # fmt: skip
        """Fetch and handle messages above the last UID seen; True if there were any."""
        start = (f.last_uid or 0) + 1
        items = await session.uid_fetch(f"{start}:*", HEADER_ITEMS)
        # "n:*" always returns the newest message, even when its UID is below n
        fresh = [i for i in items if i.uid is not None and i.uid >= start]
        if fresh:
            f.last_uid = max(i.uid for i in fresh if i.uid is not None)
            await self._handle(session, f, folder, trash, fresh, mode)
        return bool(fresh)

    async def _scan(self, session: ImapSession, f: _FolderState, folder: Folder, trash: Folder | None,
                    uids: list[int], mode: str) -> None:  # fmt: skip
        for i in range(0, len(uids), CHUNK):
            chunk = ",".join(str(u) for u in uids[i : i + CHUNK])
            items = await session.uid_fetch(chunk, HEADER_ITEMS)
            await self._handle(session, f, folder, trash, items, mode)

    async def _handle(self, session: ImapSession, f: _FolderState, folder: Folder, trash: Folder | None,
                      items: list[FetchItem], mode: str) -> None:  # fmt: skip
        detected = self._now()
        delete: dict[str, list[int]] = {}
        for item in items:
            headers = item.section("BODY[HEADER]") or b""
            token, ours, sent = self._identify(headers)
            if token is None and self.registry.waiting(self.name, "autoresponder") and item.uid is not None:
                token = await self._token_in_text(session, item.uid)
                ours = ours or token is not None
            pending = self.registry.get(token) if token else None
            if pending is not None and item.uid is not None:
                raw = await self._whole(session, item)
                found = Found(token or "", folder.name, self._kind(f.spec, folder), item.uid, item.internaldate,
                              detected, headers, raw, mode)  # fmt: skip
                late = pending.late
                self.registry.resolve(found)
                delete.setdefault("late" if late else "found", []).append(item.uid)
            elif ours and item.uid is not None and self._stale(item, sent):
                delete.setdefault("stale", []).append(item.uid)
        for why, uids in delete.items():
            await self._delete(session, trash, uids, why)

    def _identify(self, headers: bytes) -> tuple[str | None, bool, float | None]:
        """(token, HMAC-verified as ours, send time) of a message from its headers."""
        msg = parse_headers(headers)
        tag_value = msg.get(TAG_HEADER)
        tag = parse_tag(str(tag_value), self.key) if tag_value is not None else None
        if tag is not None:
            # another location's probe: its token is in no run of ours, and it is not ours to sweep
            return tag.token, tag.location == self.location, float(tag.sent)
        quoted = " ".join(str(msg.get(h, "")) for h in ("Message-ID", "In-Reply-To", "References"))
        tokens = tokens_in(quoted, self.key, self.location)
        if tokens:
            return tokens[0], True, None
        # a reply that kept only our Subject: the bare token counts only while a run waits for it
        for token in TOKEN_RE.findall(str(msg.get("Subject", ""))):
            if self.registry.get(token) is not None:
                return token, False, None
        return None, False, None

    async def _token_in_text(self, session: ImapSession, uid: int) -> str | None:
        items = await session.uid_fetch(str(uid), f"(UID BODY.PEEK[TEXT]<0.{REPORT_BYTES}>)")
        text = (items[0].section("BODY[TEXT]") if items else None) or b""
        decoded = text.decode("utf-8", "replace")
        for token in tokens_in(decoded, self.key, self.location):
            return token
        for p in self.registry.waiting(self.name, "autoresponder"):
            if p.token in decoded:
                return p.token
        return None

    async def _whole(self, session: ImapSession, item: FetchItem) -> bytes | None:
        if item.uid is None or (item.size or 0) > self.target.max_fetch_bytes:
            return None
        items = await session.uid_fetch(str(item.uid), "(UID BODY.PEEK[])")
        return items[0].section("BODY[]") if items else None

    def _stale(self, item: FetchItem, sent: float | None) -> bool:
        born = item.internaldate or sent
        return born is not None and self._now() - born > self.late_window

    async def _delete(self, session: ImapSession, trash: Folder | None, uids: list[int], why: str) -> None:
        if self.target.cleanup == "keep" or not uids:
            return
        if trash is not None and trash.name.upper() == "INBOX":  # never: it would train the filter
            raise ImapFolderError("refusing to move probes into INBOX")
        try:
            await session.delete(uids, trash.name if trash is not None else None)
        except ReceiveError as exc:
            self.events.cleanup_failed(self.name)
            log.warning("probe cleanup failed", mailbox=self.name, uids=len(uids), error=str(exc))
            if session.lost.is_set() or isinstance(exc, ImapTimeout):
                raise
            return
        self.events.cleaned(self.name, why, len(uids))

    async def _sweep(self, session: ImapSession, f: _FolderState, folder: Folder, trash: Folder | None) -> None:
        """Our own stale probes (and replies to them) anywhere in the folder, whatever their age."""
        uids = set(await session.uid_search("SUBJECT", '"mailpulse probe"'))
        with contextlib.suppress(ReceiveError):  # some servers refuse HEADER search on custom fields
            uids |= set(await session.uid_search("HEADER", TAG_HEADER, '"v=1"'))
        if session.lost.is_set():
            raise ReceiveError("connection lost during the sweep", reason="imap_protocol")
        await self._scan(session, f, folder, trash, sorted(uids), "sweep")
