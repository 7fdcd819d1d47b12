"""The posture lab's TCP servers, in a thread with its own event loop: minimal SMTP servers (STARTTLS
offered or not; they speak only greeting, EHLO, STARTTLS and QUIT — what a posture check needs) and an
HTTPS server for MTA-STS policies (by Host header). Each listens on its own loopback address."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path


def server_context(pki: Path, name: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / f"{name}.crt", pki / f"{name}.key")
    return context


class Servers:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="posture-lab", daemon=True)
        self._servers: list[asyncio.Server] = []
        self._thread.start()

    def smtp(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(b"220 posture-lab ESMTP\r\n")
                while line := await reader.readline():
                    verb = line.decode(errors="replace").strip().upper().split(" ")[0]
                    if verb in ("EHLO", "HELO"):
                        writer.write(
                            b"250-posture-lab\r\n" + (b"250-STARTTLS\r\n" if tls else b"") + b"250 8BITMIME\r\n"
                        )
                    elif verb == "STARTTLS" and tls is not None:
                        writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                        await writer.drain()
                        await writer.start_tls(tls)
                    elif verb == "QUIT":
                        writer.write(b"221 2.0.0 Bye\r\n")
                        break
                    else:
                        writer.write(b"502 5.5.2 not here\r\n")
                    await writer.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                writer.close()

        self._start(asyncio.start_server(handle, host, port))

    def https(self, host: str, port: int, tls: ssl.SSLContext, policies: Mapping[str, str | None]) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode(errors="replace").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
                hostname = next((ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("host:")), "")
                body = policies.get(hostname) if path == "/.well-known/mta-sts.txt" else None
                if body is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                else:
                    data = body.encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                                 + str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n" + data)  # fmt: skip
                await writer.drain()
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            finally:
                writer.close()

        self._start(asyncio.start_server(handle, host, port, ssl=tls))

    def _start(self, coro: object) -> None:
        async def start() -> asyncio.Server:
            return await coro  # type: ignore[misc, no-any-return]

        self._servers.append(asyncio.run_coroutine_threadsafe(start(), self.loop).result(10))

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
