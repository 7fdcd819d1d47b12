"""XOAUTH2 access tokens from a file or a command, registered with the log scrubber when read.

mailpulse does not run OAuth flows itself: refresh tokens, client secrets and consent screens differ by
provider and are better handled by a dedicated tool (oauth2l, msal scripts, a systemd timer). It only
needs a current *access token*:

* ``token_file``: read at every login (another tool rewrites it before expiry; atomic replace);
* ``token_command``: an argv run with a timeout; its stdout (stripped) is the token, reused for
  ``cache`` seconds.

docs/probe-providers.md shows both for Gmail and Microsoft 365.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mailpulse.exporter.logsetup import register_secret
from mailpulse.probes.config import OAuth2Source
from mailpulse.probes.errors import CredentialError


class TokenSource:
    def __init__(self, source: OAuth2Source, now: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._now = now
        self._token: str | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self.source.token_file is not None:
                token = await asyncio.to_thread(self._read_file, self.source.token_file)
            elif self._token is not None and self._now() - self._fetched < self.source.cache:
                token = self._token
            else:
                token = await self._run_command()
                self._token, self._fetched = token, self._now()
            register_secret(token)
            return token

    def invalidate(self) -> None:
        """Forget a cached token (after the server refused it)."""
        self._token = None

    @staticmethod
    def _read_file(path: str) -> str:
        try:
            with open(path, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise CredentialError(f"cannot read the token file {path}: {exc.strerror}") from None
        if not token:
            raise CredentialError(f"the token file {path} is empty")
        return token

    async def _run_command(self) -> str:
        argv = self.source.token_command
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        except OSError as exc:
            raise CredentialError(f"cannot run the token command {argv[0]}: {exc.strerror}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.source.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CredentialError(f"the token command {argv[0]} took longer than {self.source.timeout:g}s") from None
        token = out.decode(errors="replace").strip()
        if proc.returncode != 0 or not token:
            # stderr may be long or contain secrets of its own: keep only a short tail
            tail = err.decode(errors="replace").strip()[-200:]
            raise CredentialError(f"the token command {argv[0]} exited {proc.returncode}: {tail}")
        return token
