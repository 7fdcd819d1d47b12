"""Following messages through the lab's logs (the driver's own plain-text matching, independent
of mailpulse's parsers): where a queue ID ended up, which MX queue ID it got, which folder."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class LogTail:
    """The part of one log file written since the driver started."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                return fh.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass(frozen=True)
class Delivery:
    """One `QID: to=<rcpt>, relay=..., status=...` line."""

    status: str  # sent | deferred | bounced | expired
    relay: str
    reply: str  # the parenthesised text after status=

    @property
    def next_queue_id(self) -> str | None:
        m = re.search(r"queued as ([0-9A-Za-z]+)", self.reply)
        return m.group(1) if m else None


def deliveries(postfix: str, qid: str) -> list[Delivery]:
    # Nov 24 16:40:53 mail postfix/smtp[9077]: 93C0120C471: to=<probe@remote.test>,
    #   relay=127.0.0.1[127.0.0.1]:20025, delay=0.3, delays=0.19/0.01/0.03/0.06, dsn=2.0.0,
    #   status=sent (250 2.0.0 Ok: queued as CB4F720C474)
    pattern = re.compile(
        rf" {qid}: to=<[^>]*>, (?:orig_to=<[^>]*>, )?relay=(\S+), .*?status=(\w[\w-]*) \((.*)\)$", re.M
    )
    return [Delivery(m.group(2), m.group(1), m.group(3)) for m in pattern.finditer(postfix)]


def ndr_queue_id(postfix: str, qid: str) -> str | None:
    # postfix/bounce[9101]: 5E2F320C47A: sender non-delivery notification: 6C1A520C47B
    m = re.search(rf" {qid}: sender non-delivery notification: ([0-9A-Za-z]+)$", postfix, re.M)
    return m.group(1) if m else None


def force_expired(postfix: str, qid: str) -> bool:
    # postfix/qmgr[9020]: 5E2F320C47A: from=<probe@example.test>, status=force-expired, returned to sender
    pattern = rf" {qid}: from=<[^>]*>, status=force-expired, returned to sender$"
    return re.search(pattern, postfix, re.M) is not None


def deleted(postfix: str, qid: str) -> bool:
    # postfix/postsuper[9120]: 5E2F320C47A: removed
    return re.search(rf" postfix/postsuper\[\d+\]: {qid}: removed$", postfix, re.M) is not None


def folder(dovecot: str, message_id: str) -> str | None:
    # lmtp(probe@remote.test)<9083><MJ9ACRa+BWt7IwAAg+zDdQ>: Info: sieve: msgid=<...>: fileinto action:
    #   stored mail into mailbox 'Junk'
    m = re.search(rf"msgid={re.escape(message_id)}: (?:fileinto action: )?stored mail into mailbox '([^']+)'", dovecot)
    return m.group(1) if m else None


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> bool:
    """Poll until `check()`; False (not an exception) on timeout, so the report can say what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
