"""An IMAP server that sends garbage: the probe fails with imap_protocol at once, not imap_timeout after the
command timeout, and the server's bytes reach error messages and logs only capped and escaped.

The server here is a small loopback TCP server that plays a script. A fake is the only way to test this:
a real Dovecot cannot be made to send garbage (it answers every input with well-formed IMAP). The silent
server is the control: a server that sends nothing is still imap_timeout.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mailpulse.exporter.configtools import Secret
from mailpulse.probes.config import TargetConfig
from mailpulse.probes.errors import ReceiveError
from mailpulse.probes.imapconn import SAMPLE, ImapSession, server_text

TIMEOUT = 3.0  # the target's per-command timeout; garbage must be recognised well before it
MARK = b"GARBAGE\x1b[31m\x00\r"  # a terminal escape, a NUL and a bare CR in every repetition

Step = bytes | Callable[[bytes], bytes]  # bytes: sent as is; a function: answer to the client's next line
GREETING = b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"


def caps(line: bytes) -> bytes:
    """A correct answer to the client's CAPABILITY line (its tag is the first word)."""
    tag = line.split(b" ", 1)[0]
    return b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK CAPABILITY completed\r\n"


SCRIPTS: dict[str, tuple[str, list[Step]]] = {
    "http-greeting": ("starttls", [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"]),
    "binary-without-line-end": ("starttls", [MARK * 5000]),
    "garbage-capability": ("starttls", [GREETING, lambda line: MARK * 20 + b"\r\n"]),
    "unknown-tag": ("starttls", [GREETING, lambda line: b"* CAPABILITY IMAP4rev1\r\nZZZ9 OK done\r\n"]),
    "non-utf8-untagged": ("starttls", [GREETING, lambda line: b"* \xff\xfe\x9f EXISTS\r\n"]),
    "garbage-after-login": ("implicit", [GREETING, caps, lambda line: b"\x00\x01" + MARK * 50 + b"\r\n"]),
    "endless-line": ("implicit", [GREETING, caps, lambda line: b"* " + b"A" * (2 << 20)]),
    "absurd-literal": ("implicit", [GREETING, caps, lambda line: b"* 1 FETCH (BODY[] {99999999999}\r\n"]),
}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the implicit-TLS scripts need a TLS server)."""
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    return crt, key


async def serve(script: list[Step], tls: ssl.SSLContext | None) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for step in script:
                data = step(await reader.readline()) if callable(step) else step
                writer.write(data)
                await writer.drain()
            await reader.read()  # keep the connection open until the client closes it
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    async with server:
        yield server.sockets[0].getsockname()[1]


def target(port: int, tls: str, ca_file: str | None) -> TargetConfig:
    return TargetConfig(name="t", kind="imap", address="probe@example.test", host="127.0.0.1", port=port, tls=tls,
                        username="probe", password=Secret("pw", "test"), ca_file=ca_file, timeout=TIMEOUT)  # fmt: skip


async def open_session(name: str, cert: tuple[Path, Path]) -> tuple[ReceiveError, float]:
    mode, script = SCRIPTS[name]
    server_tls = None
    if mode == "implicit":
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(*cert)
    async for port in serve(script, server_tls):
        t = target(port, mode, str(cert[0]))
        ctx = ssl.create_default_context(cafile=str(cert[0]))
        session = ImapSession(t, ctx)
        started = time.monotonic()
        try:
            await session.open()
        except ReceiveError as exc:
            return exc, time.monotonic() - started
        finally:
            await session.close()
    raise AssertionError("the session opened")


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_garbage_is_imap_protocol_at_once(name: str, cert: tuple[Path, Path],
                                                caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Whatever the garbage and whenever it comes, the error is imap_protocol, well before the timeout, and
    its message quotes at most SAMPLE bytes of it, escaped (no escape sequence, NUL or line break)."""
    caplog.set_level(logging.WARNING)  # what the daemon lets through for aioimaplib and asyncio
    exc, took = await open_session(name, cert)
    message = str(exc)
    assert "imap_protocol" == exc.reason, message
    assert took < TIMEOUT / 2, (took, message)
    assert len(message) < 2 * SAMPLE + 200, message
    for bad in ("\x1b", "\x00", "\r", "\n"):
        assert bad not in message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged.count("GARBAGE") <= 10  # no full dump of the server's bytes anywhere in the logs
    assert "\x1b" not in logged


async def test_a_silent_server_is_still_a_timeout(cert: tuple[Path, Path]) -> None:
    """The control: a server that accepts and says nothing is imap_timeout, after the timeout."""
    async for port in serve([], None):
        session = ImapSession(target(port, "starttls", None), ssl.create_default_context())
        started = time.monotonic()
        with pytest.raises(ReceiveError) as info:
            await session.open()
        await session.close()
        assert "imap_timeout" == info.value.reason
        assert time.monotonic() - started >= TIMEOUT * 0.9


def test_server_text_caps_and_escapes() -> None:
    """server_text keeps printable ASCII, escapes everything else (and backslashes), says how much was cut."""
    assert "ok \\x1b[31m\\x00\\x5cx" == server_text(b"ok \x1b[31m\x00\\x")
    long = server_text(b"A" * 1000, 10)
    assert "AAAAAAAAAA... (1000 bytes)" == long
    assert "\\xc3\\xbc" == server_text("ü")
