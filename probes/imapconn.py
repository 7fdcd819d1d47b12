"""One IMAP session over aioimaplib: connect (implicit TLS or STARTTLS), log in, and bounded commands.

aioimaplib has no STARTTLS. For ``tls: starttls`` the session connects in plain text, checks that the
server offers STARTTLS (else the probe fails: no silent plain-text fallback), sends ``STARTTLS``
through aioimaplib's own command machinery, then upgrades the *same* transport with asyncio's
``loop.start_tls()`` and hands the TLS transport back to aioimaplib's protocol object. Capabilities
learnt before TLS are discarded and asked again (RFC 3501 6.2.1). This keeps aioimaplib's parser and
state machine and needs no second socket.

Every wait is bounded: aioimaplib's own per-command timeout, plus ``asyncio.wait_for`` around the
steps it leaves unbounded (IDLE start and stop, which hang on ``* BYE``: aioimaplib #110). Library
errors are translated into :class:`probes.errors.ReceiveError` with a bounded reason here, at the edge.

A server that sends something that is not IMAP (a greeting that is not ``* OK``/``PREAUTH``/``BYE``, a
line that is neither tagged, untagged nor a continuation, an unknown tag, bytes aioimaplib cannot
decode, a line without an end, an absurd literal) is ``imap_protocol``, found as soon as the bytes
arrive: :class:`_GuardedProtocol` checks them before aioimaplib does, closes the connection, and every
wait of the session ends at once (otherwise aioimaplib ignores such data, or fails in a task nobody
awaits, and the probe waited for ``imap_timeout``). Server bytes only ever reach a message or a log
capped and escaped (:func:`server_text`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from base64 import b64encode
from collections.abc import Callable
from typing import Any

from aioimaplib import aioimaplib

from mailpulse.exporter.logsetup import register_secret
from mailpulse.probes.config import TargetConfig
from mailpulse.probes.credentials import TokenSource
from mailpulse.probes.errors import CredentialError, ImapAuthError, ImapTimeout, ReceiveError
from mailpulse.probes.imapparse import FetchItem, Folder, parse_fetch, parse_list, quote
from mailpulse.probes.send import tls_context

MAX_LINE = 1 << 20  # bytes of one response line without its literals (a UID SEARCH of 100k messages fits)
SAMPLE = 80  # bytes of server data quoted in an error message
_GREETING = re.compile(rb"^\* (?:OK|PREAUTH|BYE)\b", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


def server_text(data: bytes | str, limit: int = SAMPLE) -> str:
    """Bytes a server sent, fit for a log line: at most ``limit`` of them, anything but printable ASCII
    escaped (no terminal escapes, no fake log lines), and how much more there was."""
    raw = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else bytes(data)
    head = raw[:limit]
    text = "".join(chr(b) if 32 <= b < 127 and b != 0x5C else f"\\x{b:02x}" for b in head)
    return text + (f"... ({len(raw)} bytes)" if len(raw) > limit else "")


class _NotImap(Exception):
    """The server sent something that is not IMAP; the message holds a capped, escaped sample."""


class _GuardedProtocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol with the server's bytes checked first (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: Callable[[Exception | None], None] | None,
                 max_literal: int) -> None:  # fmt: skip
        super().__init__(loop, conn_lost_cb)
        self.not_imap: str | None = None  # why the server's data was refused
        self._max_literal = max_literal
        self._greeted = False

    def data_received(self, d: bytes) -> None:
        if self.not_imap is not None:
            return
        try:
            if not self._greeted:
                self._check_greeting(self.incomplete_line + d)
            super().data_received(d)
            if len(self.incomplete_line) > MAX_LINE:
                raise _NotImap(f"a line longer than {MAX_LINE} bytes: {server_text(self.incomplete_line)}")
        except _NotImap as exc:
            self._refuse(str(exc))
        except Exception as exc:  # aioimaplib choking on it: Abort (unknown tag), UnicodeDecodeError, ...
            self._refuse(f"a response aioimaplib cannot parse ({type(exc).__name__}): {server_text(d)}")

    def _check_greeting(self, data: bytes) -> None:
        line, sep, _ = data.partition(b"\r\n")
        if not sep:  # a greeting starts with "*": anything else is refused before its line ends (if ever)
            if data and not data.startswith(b"*"):
                raise _NotImap(f"a greeting that is not IMAP: {server_text(data)}")
            return
        if not _GREETING.match(line):
            raise _NotImap(f"a greeting that is not IMAP: {server_text(line)}")
        self._greeted = True

    def _handle_line(self, line: bytes, current_cmd: Any) -> Any:
        literal = _LITERAL.search(line)
        if literal and int(literal.group(1)) > self._max_literal:
            raise _NotImap(f"a literal of {literal.group(1).decode()} bytes: {server_text(line)}")
        if (self._greeted and current_cmd is None and line and line[:1] not in (b"*", b"+")
                and not aioimaplib.tagged_status_response_re.match(line)):  # fmt: skip
            raise _NotImap(f"a line that is neither tagged, untagged nor a continuation: {server_text(line)}")
        return super()._handle_line(line, current_cmd)

    async def welcome(self, command: bytes) -> None:
        try:
            await super().welcome(command)
        except Exception as exc:  # runs in a task aioimaplib never awaits: the error would be lost
            self._refuse(f"no usable CAPABILITY after the greeting ({type(exc).__name__})")

    def _refuse(self, why: str) -> None:
        if self.not_imap is None:
            self.not_imap = why
        if self.transport is not None:
            self.transport.close()  # connection_lost follows: every wait of the session ends
        # welcome() holds aioimaplib's state lock while its CAPABILITY waits for an answer that will not
        # come: end it, or whoever waits for the state (wait_hello_from_server) can never be cancelled
        me = asyncio.current_task() if self.loop is not None and self.loop.is_running() else None
        for task in list(self.tasks):
            if task is not me:
                task.cancel()


class _GuardedIMAP4(aioimaplib.IMAP4):  # type: ignore[misc]
    def __init__(self, *args: Any, max_literal: int, **kwargs: Any) -> None:
        self._max_literal = max_literal
        super().__init__(*args, **kwargs)

    def create_client(self, host: str, port: int, loop: asyncio.AbstractEventLoop | None,
                      conn_lost_cb: Callable[[Exception | None], None] | None = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:  # fmt: skip
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _GuardedProtocol(local_loop, conn_lost_cb, self._max_literal)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


class ImapSession:
    def __init__(self, target: TargetConfig, ctx: ssl.SSLContext, tokens: TokenSource | None = None,
                 on_lost: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.target = target
        self.ctx = ctx
        self.tokens = tokens
        self.timeout = target.timeout
        self.lost = asyncio.Event()
        self._on_lost = on_lost
        self._client: Any = None
        self.tls_version: str | None = None

    # -- connecting ---------------------------------------------------------------------------------------
    async def open(self) -> None:
        t = self.target
        try:
            self._client = _GuardedIMAP4(
                host=t.host, port=t.port, timeout=self.timeout, conn_lost_cb=self._connection_lost,
                ssl_context=self.ctx if t.tls == "implicit" else None,
                max_literal=max(4 * t.max_fetch_bytes, 8 << 20),
            )  # fmt: skip
            await self._bounded("greeting", self._client.wait_hello_from_server(), self.timeout)
            if t.tls == "starttls":
                await self._starttls()
            self.tls_version = _ssl_version(self._client.protocol.transport)
        except ReceiveError:
            await self.close()
            raise
        except (OSError, ssl.SSLError, TimeoutError, aioimaplib.AioImapException) as exc:
            await self.close()
            raise _translate(exc, "connect") from exc
        await self._login()

    async def _starttls(self) -> None:
        protocol = self._client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ReceiveError(f"{self.target.host}:{self.target.port} does not offer STARTTLS", reason="imap_tls")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self._bounded("STARTTLS", protocol.execute(command), self.timeout)
        if response.result != "OK":
            raise ReceiveError(f"STARTTLS refused: {_text(response)}", reason="imap_tls")
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            protocol.transport, protocol, self.ctx, server_hostname=self.target.host,
            ssl_handshake_timeout=self.timeout,
        )  # fmt: skip
        if transport is None:
            raise ReceiveError("STARTTLS: no TLS transport", reason="imap_tls")
        protocol.transport = transport
        protocol.capabilities = set()
        await self._bounded("CAPABILITY", protocol.capability(), self.timeout)

    async def _login(self) -> None:
        t = self.target
        try:
            if t.oauth2 is not None and self.tokens is not None:
                token = await self.tokens.token()
                # aioimaplib logs the base64 SASL string at DEBUG: make the scrubber know it too
                register_secret(b64encode(f"user={t.username}\1auth=Bearer {token}\1\1".encode()).decode())
                response = await self._bounded("AUTHENTICATE", self._client.xoauth2(t.username, token))
            else:
                password = t.password.value if t.password is not None else ""
                response = await self._bounded("LOGIN", self._client.login(t.username, password))
        except CredentialError as exc:
            await self.close()
            raise ReceiveError(str(exc), reason="imap_credentials") from None
        except ReceiveError:
            await self.close()
            raise
        except TimeoutError as exc:
            await self.close()
            # a refused XOAUTH2 token gets a continuation that aioimaplib never answers: it times out
            raise ImapAuthError(f"no answer to the login of {t.username} within {self.timeout:g}s") from exc
        except (OSError, aioimaplib.AioImapException) as exc:
            await self.close()
            raise _translate(exc, "login") from exc
        if response.result != "OK":
            if self.tokens is not None:
                self.tokens.invalidate()
            await self.close()
            raise ImapAuthError(f"login of {t.username} refused: {_text(response)}")

    async def _bounded(self, what: str, coro: Any, timeout: float | None = None) -> Any:
        """Await ``coro``, but stop as soon as the connection is gone (closed by the server, or by the
        guard on data that is not IMAP): that is ``imap_protocol`` at once, not a timeout later.
        ``timeout`` None leaves timing to aioimaplib's own per-command timeout."""
        if self.lost.is_set():
            coro.close()
            raise self._lost_error(what)
        task = asyncio.ensure_future(coro)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)  # bounded: a library task may be slow to give up
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it (it may quote the server)
        if lost in done:
            raise self._lost_error(what)
        raise TimeoutError(f"{what}: no answer within {timeout:g}s")

    def _lost_error(self, what: str) -> ReceiveError:
        protocol = getattr(self._client, "protocol", None)
        why = getattr(protocol, "not_imap", None)
        if why:
            return ReceiveError(f"{what}: the server sent {why}", reason="imap_protocol")
        return ReceiveError(f"{what}: connection closed by the server", reason="imap_protocol")

    def _connection_lost(self, _exc: Exception | None) -> None:
        self.lost.set()
        if self._on_lost is not None:
            self._on_lost()

    @property
    def capabilities(self) -> set[str]:
        return set(self._client.protocol.capabilities) if self._client is not None else set()

    # -- commands -----------------------------------------------------------------------------------------
    async def _run(self, what: str, coro: Any) -> Any:
        try:
            response = await self._bounded(what, coro, self.timeout + 1)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise _translate(exc, what) from exc
        if response.result != "OK":
            raise ReceiveError(f"{what}: {response.result} {_text(response)}", reason="imap_protocol")
        return response

    async def list_folders(self) -> list[Folder]:
        response = await self._run("LIST", self._client.list('""', '"*"'))
        return parse_list(response.lines)

    async def select(self, folder: str) -> dict[str, int]:
        """SELECT (read-write: cleanup needs it; BODY.PEEK keeps \\Seen untouched). UIDVALIDITY, UIDNEXT, EXISTS."""
        response = await self._run(f"SELECT {folder}", self._client.select(quote(folder)))
        info: dict[str, int] = {}
        for line in response.lines:
            text = bytes(line).decode("ascii", "replace")
            for key in ("UIDVALIDITY", "UIDNEXT"):
                if f"[{key} " in text:
                    with contextlib.suppress(ValueError):
                        info[key] = int(text.split(f"[{key} ", 1)[1].split("]", 1)[0])
            if text.endswith(" EXISTS"):
                with contextlib.suppress(ValueError):
                    info["EXISTS"] = int(text.split()[0])
        return info

    async def create(self, folder: str) -> None:
        """CREATE a folder (the reports feature's processed and failed folders)."""
        await self._run(f"CREATE {folder}", self._client.create(quote(folder)))

    async def noop(self) -> None:
        await self._run("NOOP", self._client.noop())

    async def uid_search(self, *criteria: str) -> list[int]:
        # charset=None: aioimaplib's default "CHARSET utf-8" is refused by Exchange and Yahoo
        response = await self._run("UID SEARCH", self._client.uid_search(*criteria, charset=None))
        uids: list[int] = []
        for line in response.lines:
            text = bytes(line).decode("ascii", "replace")
            if text.startswith("SEARCH"):
                text = text[len("SEARCH") :]
            uids.extend(int(w) for w in text.split() if w.isdigit())
        return sorted(set(uids))

    async def uid_fetch(self, uid_set: str, items: str) -> list[FetchItem]:
        response = await self._run("UID FETCH", self._client.uid("fetch", uid_set, items))
        return [item for item in parse_fetch(response.lines) if item.uid is not None]

    async def delete(self, uids: list[int], trash: str | None) -> None:
        """Remove by UID only: MOVE to ``trash`` if given, else \\Deleted + UID EXPUNGE (UIDPLUS)."""
        uid_set = ",".join(str(u) for u in uids)
        caps = self.capabilities
        if trash is not None:
            if "MOVE" in caps:
                await self._run("UID MOVE", self._client.uid("move", uid_set, quote(trash)))
                return
            await self._run("UID COPY", self._client.uid("copy", uid_set, quote(trash)))
        await self._run("UID STORE", self._client.uid("store", uid_set, "+FLAGS.SILENT", "(\\Deleted)"))
        if "UIDPLUS" in caps:
            await self._run("UID EXPUNGE", self._client.uid("expunge", uid_set))
        # Without UIDPLUS a plain EXPUNGE would also remove other messages flagged \Deleted by someone
        # else: leave them flagged; the provider's own expunge (or the next client) removes them.

    async def idle(self, max_wait: float, wake: asyncio.Event) -> bool:
        """IDLE until the server pushes something, ``wake`` is set or ``max_wait`` passes.
        True if the server reported a change (EXISTS/RECENT/FETCH/EXPUNGE)."""
        client = self._client
        try:
            idle_task = await self._bounded("IDLE", client.idle_start(timeout=max_wait + 60), self.timeout)
        except (TimeoutError, aioimaplib.AioImapException) as exc:
            raise _translate(exc, "IDLE") from exc
        push = asyncio.ensure_future(client.wait_server_push(timeout=max_wait))
        waiters = {push, asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self.lost.wait())}
        try:
            await asyncio.wait(waiters, timeout=max_wait + 1, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        lines: list[bytes] = []
        if push.done() and not push.cancelled() and push.exception() is None:
            lines = [bytes(x) for x in push.result() if isinstance(x, bytes | bytearray)]
        if self.lost.is_set():
            raise self._lost_error("IDLE")
        if any(b"BYE" in line.upper()[:8] for line in lines):
            raise ReceiveError("the server closed the connection during IDLE", reason="imap_protocol")
        try:
            client.idle_done()
            await self._bounded("DONE", idle_task, self.timeout)
        except (TimeoutError, OSError, aioimaplib.AioImapException) as exc:
            raise _translate(exc, "DONE") from exc
        queue = client.protocol.idle_queue
        while not queue.empty():  # pushes that came after we stopped listening: the next scan sees them anyway
            queue.get_nowait()
        return any(w in line for line in lines for w in (b"EXISTS", b"RECENT", b"FETCH", b"EXPUNGE"))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        protocol = client.protocol
        if protocol is not None and protocol.state in ("AUTH", "SELECTED") and not self.lost.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), 5)
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.close()
        task = getattr(client, "_client_task", None)
        if task is not None and not task.done():
            task.cancel()
        for pending in list(getattr(client, "tasks", ())) + list(getattr(protocol, "tasks", ())):
            pending.cancel()


def imap_context(target: TargetConfig) -> ssl.SSLContext:
    try:
        return tls_context(target.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ReceiveError(f"cannot load {target.ca_file}: {exc}", reason="imap_tls") from exc


def _translate(exc: BaseException, what: str) -> ReceiveError:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10 and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = f"{what}: {server_text(str(exc), 200) if str(exc) else type(exc).__name__}"  # may quote the server
    if any(isinstance(e, TimeoutError | aioimaplib.CommandTimeout) for e in chain):
        return ImapTimeout(f"{what}: no answer in time")
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain):
        return ReceiveError(text, reason="imap_tls")
    if any(isinstance(e, socket.gaierror) for e in chain):
        return ReceiveError(text, reason="imap_dns")
    if what == "connect" and any(isinstance(e, OSError) for e in chain):
        return ReceiveError(text, reason="imap_connect")
    return ReceiveError(text, reason="imap_protocol")


def _text(response: Any) -> str:
    """The last line of a NO/BAD reply, as a server wrote it: capped and escaped."""
    lines = [bytes(x) for x in response.lines if isinstance(x, bytes | bytearray)]
    return server_text(lines[-1] if lines else b"", 200)


def _ssl_version(transport: Any) -> str | None:
    obj = transport.get_extra_info("ssl_object") if transport is not None else None
    return str(obj.version()) if obj is not None else None
