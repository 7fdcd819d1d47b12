"""Which Postfix program wrote a line: instance, service and daemon from the program tag.

``postfix/submission/smtpd`` is instance ``postfix``, service ``submission``, daemon ``smtpd``; the
daemon is always the last element (``postfix-out/relay/smtp`` → daemon ``smtp``). Missing this was the
single largest gap of older exporters (kumina left every ``submission/smtpd`` line unsupported).

The service becomes a label, so it is bounded here: an optional map renames raw services, an optional
allowlist turns the rest into ``other``, and a cap on distinct values stops a misconfigured host from
growing series without end.
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


@dataclass(frozen=True, slots=True)
class Program:
    """The parts of a program tag that mailpulse uses."""

    service: str  # bounded label value
    daemon: str  # a member of KNOWN_DAEMONS or "other"


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

    def __post_init__(self) -> None:
        patterns = list(self.instances)
        self._exact = frozenset(p for p in patterns if not any(c in p for c in "*?["))
        self._globs = tuple(p for p in patterns if any(c in p for c in "*?["))
        self._allow = None if self.service_allow is None else frozenset(self.service_allow)
        self._cache: dict[str, Program | None] = {}
        self._services: set[str] = set()

    def lookup(self, name: str) -> Program | None:
        """Return the program for a tag name (without ``[pid]``); cached, so cheap on the hot path."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        program = self._resolve(name)
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
            return Program(self._bound(first, "postfix"), "postfix")
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
        return Program(self._bound(raw_service, known), known)

    def _bound(self, raw: str, daemon: str) -> str:
        service = self.service_map.get(raw, raw)
        if self._allow is not None and service not in self._allow:
            return OTHER
        if service in self._services:
            return service
        if len(self._services) >= self.max_services:
            return OTHER
        self._services.add(service)
        return service
