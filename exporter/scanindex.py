"""rspamd's verdicts by Message-ID, as other features get them: the :data:`MESSAGE_SCANS` capability.

The rspamd-logs feature records a few facts of each verdict line (when, the Postfix queue ID rspamd saw as
a milter, the action, the score, the domains it DKIM-signed for) of the messages a reader asked for
(:meth:`ScanIndex.want`, by Message-ID prefix), in a bounded index (the most recent :data:`MAX_MESSAGES`
Message-IDs, at most :data:`MAX_SCANS` verdicts each), and provides it while configured. The probes put
"signed" and "scanned" on a run's hop timeline from it: the Postfix log does not say when a message was
DKIM-signed, rspamd's does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from mailpulse.exporter.capabilities import Capability
from mailpulse.parsers.rspamd.events import RspamdScan
from mailpulse.parsers.rspamd.symbols import signed_domains
from mailpulse.parsers.syslog import TimestampParser

MAX_MESSAGES = 4096
MAX_SCANS = 8  # a message is scanned at each of our hosts' milters: a few times


@dataclass(frozen=True)
class Scan:
    ts: float  # epoch; 0.0 when the stamp could not be read
    queue_id: str  # the Postfix queue ID of the host whose milter asked ("" when not a milter scan)
    action: str  # rspamd's action (no_action, add_header, ...)
    score: float
    signed: tuple[str, ...]  # DKIM signing domains, () when rspamd did not sign


class ScanIndex:
    """Written by the rspamd format's handler under the shared lock; read by :meth:`scans`, which takes it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # the kernel's shared lock once configured
        self._by_mid: dict[str, list[tuple[str, str, str, float, tuple[str, ...]]]] = {}
        self._stamps = TimestampParser()
        self._prefix = ""  # Message-IDs starting with this are recorded; "" (nobody asked): none
        self._head = ""  # "id: <" + the prefix, as the verdict line's head starts

    def want(self, prefix: str) -> None:
        """A reader asks for the verdicts of the messages whose Message-ID starts with ``prefix`` (the probes':
        ``mp.``), when its services start. Until someone asks, nothing is recorded: the verdict line is the
        rspamd format's hot path, and a slice compare is all it pays then."""
        self._prefix = prefix
        self._head = "id: <" + prefix

    def record(self, e: RspamdScan) -> None:
        head = self._head
        if not head or e.head[: len(head)] != head:
            return
        mid = e.message_id
        entries = self._by_mid.get(mid)
        if entries is None:
            if len(self._by_mid) >= MAX_MESSAGES:
                del self._by_mid[next(iter(self._by_mid))]  # the oldest first: dicts keep insertion order
            entries = self._by_mid[mid] = []
        if len(entries) < MAX_SCANS:
            signed = signed_domains(e.symbols) if "DKIM_SIGNED" in e.symbols else ()
            entries.append((e.ts, e.qid, e.action, e.score, signed))

    def scans(self, message_id: str) -> list[Scan]:
        with self.lock:
            entries = list(self._by_mid.get(message_id.strip("<>"), ()))
        return [Scan(self._stamps(ts) or 0.0, qid, action, score, signed) for ts, qid, action, score, signed in entries]


#: Provided by the rspamd-logs feature while it is configured.
MESSAGE_SCANS: Capability[ScanIndex] = Capability("rspamd.message_scans")
