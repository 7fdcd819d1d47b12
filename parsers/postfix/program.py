"""Which Postfix program wrote a line: instance, service and daemon from the program tag.

``postfix/submission/smtpd`` is instance ``postfix``, service ``submission``, daemon ``smtpd``; the
daemon is always the last element (``postfix-out/relay/smtp`` → daemon ``smtp``). Missing this was the
single largest gap of older exporters (kumina left every ``submission/smtpd`` line unsupported).

The service becomes a label, so it is bounded here: an optional map renames raw services, an optional
allowlist turns the rest into ``other``, and a cap on distinct values stops a misconfigured host from
growing series without end.

Junk must not fill the cap for the life of the process (anyone can write ``postfix/x1/smtpd`` through
``logger``; a damaged line can carry any tag). So a service gets its own label, while fewer than
``max_services`` have one:

* at once if it is a Postfix daemon's name, a service of Debian's stock master.cf (:data:`STOCK_SERVICES`),
  or named in the config (``services.map`` values, ``services.allow``);
* at once for the first ``max_services // 2`` other names (first come, first served);
* beyond those, only once the name has been seen on :data:`ADMIT_AFTER` lines (its first lines are
  ``other``): real services pass that test within seconds, one-off junk (damaged lines, random tags)
  never does, so it can never take the second half of the cap.

A name refused because the cap was full stays ``other`` and is counted in :attr:`ProgramTable.refused`
(exported as ``mailpulse_postfix_service_names{state="refused"}``). The table is rebuilt on every config
reload, so a cap filled by junk empties on ``systemctl reload``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Every daemon and command of Postfix 3.x that writes log lines. Anything else is labelled "other".
KNOWN_DAEMONS = frozenset(
    [
        "anvil",
        "bounce",
        "cleanup",
        "discard",
        "dnsblog",
        "error",
        "flush",
        "lmtp",
        "local",
        "master",
        "nqmgr",
        "oqmgr",
        "pickup",
        "pipe",
        "postalias",
        "postcat",
        "postconf",
        "postdrop",
        "postfix",
        "postfix-script",
        "postkick",
        "postlock",
        "postlog",
        "postlogd",
        "postmap",
        "postmulti",
        "postqueue",
        "postscreen",
        "postsuper",
        "proxymap",
        "qmgr",
        "qmqpd",
        "retry",
        "scache",
        "sendmail",
        "showq",
        "smtp",
        "smtpd",
        "spawn",
        "tlsmgr",
        "tlsproxy",
        "trivial-rewrite",
        "verify",
        "virtual",
    ]
)

OTHER = "other"
ADMIT_AFTER = 5  # lines a service not known in advance must be seen on before it gets its own label
# Service names of Debian 12's stock master.cf (besides daemon names): real from the first line.
STOCK_SERVICES = frozenset(
    ["submission", "submissions", "smtps", "628", "rewrite", "defer", "trace", "proxywrite", "relay", "maildrop",
     "uucp", "ifmail", "bsmtp", "scalemail-backend", "mailman", "postlog", "postfix", "amavis", "dovecot"]
)  # fmt: skip
_MAX_CANDIDATES = 1024  # names still being counted towards ADMIT_AFTER; the table is cleared when full


@dataclass(frozen=True, slots=True)
class Program:
    """The parts of a program tag that mailpulse uses."""

    service: str  # bounded label value
    daemon: str  # a member of KNOWN_DAEMONS or "other"
    settled: bool = True  # False while the service is not yet admitted: the answer may change, do not cache


@dataclass
class ProgramTable:
    """Map program tag names to :class:`Program`, or None for another program's tag.

    ``instances`` are the accepted first elements (syslog_name), as exact names or shell patterns:
    ``postfix`` and ``postfix-*`` (multi-instance setups such as ``postfix-out`` or
    ``postfix-239.58.50.50``) by default.
    """

    instances: Iterable[str] = ("postfix", "postfix-*")
    service_map: Mapping[str, str] = field(default_factory=dict)
    service_allow: Iterable[str] | None = None
    max_services: int = 50
    admit_after: int = ADMIT_AFTER

    def __post_init__(self) -> None:
        patterns = list(self.instances)
        self._exact = frozenset(p for p in patterns if not any(c in p for c in "*?["))
        self._globs = tuple(p for p in patterns if any(c in p for c in "*?["))
        self._allow = None if self.service_allow is None else frozenset(self.service_allow)
        self._cache: dict[str, Program | None] = {}
        self._services: set[str] = set()
        self._known = KNOWN_DAEMONS | STOCK_SERVICES | frozenset(self.service_map.values()) | (self._allow or set())
        self._candidates: dict[str, int] = {}
        self._first_come = 0  # names not known in advance that got a label on their first line
        self._refused: set[str] = set()
        self.refused = 0  # distinct service names refused a label because the cap was full

    @property
    def labelled(self) -> int:
        """How many services have their own label value."""
        return len(self._services)

    def lookup(self, name: str) -> Program | None:
        """Return the program for a tag name (without ``[pid]``); cached, so cheap on the hot path."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        program = self._resolve(name)
        if program is not None and not program.settled:
            return program
        if len(self._cache) < 4096:  # tag names are few; a flood of odd ones must not grow memory
            self._cache[name] = program
        return program

    def is_instance(self, first: str) -> bool:
        return first in self._exact or any(fnmatch.fnmatchcase(first, g) for g in self._globs)

    def _resolve(self, name: str) -> Program | None:
        parts = name.split("/")
        first, daemon = parts[0], parts[-1]
        if len(parts) == 1:
            # "postfix[123]: ..." is the postfix(1) command itself
            if not self.is_instance(first):
                return None
            return Program(*self._bound(first, "postfix"))
        # "/postfix-script[123]": an empty syslog_name, seen on some distributions
        if first == "" and daemon in KNOWN_DAEMONS:
            first = "postfix"
        if not self.is_instance(first):
            return None
        middle = "/".join(parts[1:-1])
        raw_service = middle if middle else daemon
        if first != "postfix":
            raw_service = first if not middle else f"{first}/{middle}"
        known = daemon if daemon in KNOWN_DAEMONS else OTHER
        return Program(*self._bound(raw_service, known))

    def _bound(self, raw: str, daemon: str) -> tuple[str, str, bool]:
        """``(label, daemon, settled)`` for a raw service; settled is False while it is being counted."""
        service = self.service_map.get(raw, raw)
        if self._allow is not None and service not in self._allow:
            return OTHER, daemon, True
        if service in self._services:
            return service, daemon, True
        if len(self._services) >= self.max_services:
            if service not in self._refused and len(self._refused) < _MAX_CANDIDATES:
                self._refused.add(service)
                self.refused = len(self._refused)
            return OTHER, daemon, True
        if service not in self._known:
            if self._first_come < self.max_services // 2:
                self._first_come += 1
            else:
                seen = self._candidates.get(service, 0) + 1
                if seen < self.admit_after:
                    if len(self._candidates) >= _MAX_CANDIDATES:
                        self._candidates.clear()
                    self._candidates[service] = seen
                    return OTHER, daemon, False
                self._candidates.pop(service, None)
        self._services.add(service)
        return service, daemon, True
