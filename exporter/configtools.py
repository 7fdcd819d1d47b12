"""Tools for reading the YAML config into typed objects with errors that name the key path.

Every reader method records a problem instead of raising, so one run of ``mailpulse check-config``
reports all problems at once::

    sources[1].path: required key is missing
    probes.routes[0].tls: must be one of implicit, starttls (got 'opportunistic')

Secrets (passwords, keys, tokens) come from ``<key>_file`` or ``<key>_env`` (or, discouraged, ``<key>``)
and are held in :class:`Secret`, whose repr never shows the value.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING: Any = object()
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class ConfigError(Exception):
    """The config is not usable; ``problems`` lists ``key.path: what is wrong`` lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Secret:
    """A secret value with a redacted repr; ``source`` says where it came from (never the value)."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"Secret(<redacted>, from {self.source})"

    __str__ = __repr__


def parse_duration(value: object) -> float:
    """``30``, ``"30s"``, ``"5m"``, ``"1.5h"``, ``"2d"``, ``"250ms"`` → seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return float(m[1]) * _UNITS[m[2]]
    raise ValueError("not a duration (use e.g. 30s, 5m, 1h, 2d or a number of seconds)")


class Node:
    """A YAML mapping at a key path. Read keys with the typed methods, then call :meth:`finish`."""

    def __init__(self, data: object, path: str, problems: list[str], *, insecure_files_ok: bool = False) -> None:
        self.path = path
        self.problems = problems
        self.insecure_files_ok = insecure_files_ok
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem(f"must be a mapping (got {_kind(data)})")
            data = {}
        self.data: dict[str, Any] = {str(k): v for k, v in data.items()}
        self.seen: set[str] = set()
        self._finished = False

    # -- plumbing ---------------------------------------------------------------------------------------
    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, message: str, key: str | None = None) -> None:
        where = self.key(key) if key is not None else (self.path or "(top level)")
        self.problems.append(f"{where}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                self.problem("required key is missing", key)
                return None
            return default
        return self.data[key]

    def child(self, key: str, required: bool = False) -> Node:
        value = self.raw(key, _MISSING if required else None)
        return Node(value, self.key(key), self.problems, insecure_files_ok=self.insecure_files_ok)

    def finish(self) -> None:
        """Report keys nobody read: usually typos. Idempotent: a parser and its caller (``list_of``)
        may both finish a node, and each unknown key must be reported once."""
        if self._finished:
            return
        self._finished = True
        for key in sorted(set(self.data) - self.seen):
            known = ", ".join(sorted(self.seen)) or "none"
            self.problem(f"unknown key (known keys here: {known})", key)

    # -- typed readers ----------------------------------------------------------------------------------
    def string(self, key: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None,
            pattern: re.Pattern[str] | None = None) -> Any:  # fmt: skip
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if value is None:
            return default if default is not _MISSING else ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(f"must be a string (got {_kind(value)})", key)
            return default if default is not _MISSING else ""
        value = str(value)
        if choices is not None:
            options = list(choices)
            if value not in options:
                self.problem(f"must be one of {', '.join(options)} (got {value!r})", key)
        if pattern is not None and not pattern.match(value):
            self.problem(f"{value!r} does not match {pattern.pattern}", key)
        return value

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int | None = None,
            maximum: int | None = None) -> Any:  # fmt: skip
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(f"must be an integer (got {_kind(value)})", key)
            return default if default is not _MISSING else 0
        if minimum is not None and value < minimum:
            self.problem(f"must be at least {minimum} (got {value})", key)
        if maximum is not None and value > maximum:
            self.problem(f"must be at most {maximum} (got {value})", key)
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.problem(f"must be true or false (got {_kind(value)})", key)
            return bool(default) if default is not _MISSING else False
        return value

    def duration(self, key: str, default: Any = _MISSING, *, minimum: float = 0.0) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value if value is None else parse_duration(value)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.problem(f"{exc} (got {value!r})", key)
            return 0.0
        if seconds < minimum:
            self.problem(f"must be at least {minimum:g}s (got {value!r})", key)
        return seconds

    def str_list(self, key: str, default: Sequence[str] = (), *, pattern: re.Pattern[str] | None = None) -> list[str]:
        value = self.raw(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.problem(f"must be a list of strings (got {_kind(value)})", key)
            return list(default)
        out = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.problem(f"must be a string (got {_kind(item)})", f"{key}[{i}]")
                continue
            if pattern is not None and not pattern.match(str(item)):
                self.problem(f"{item!r} does not match {pattern.pattern}", f"{key}[{i}]")
            out.append(str(item))
        return out

    def str_map(self, key: str) -> dict[str, str]:
        value = self.raw(key, {})
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(f"must be a mapping of strings (got {_kind(value)})", key)
            return {}
        return {str(k): str(v) for k, v in value.items()}

    def list_of(self, key: str, parse: Callable[[Node], T], *, required: bool = False) -> list[T]:
        """Parse a list of mappings; each item is a Node at ``key[i]``."""
        value = self.raw(key, _MISSING if required else [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"must be a list (got {_kind(value)})", key)
            return []
        out = []
        for i, item in enumerate(value):
            node = Node(item, f"{self.key(key)}[{i}]", self.problems, insecure_files_ok=self.insecure_files_ok)
            out.append(parse(node))
            node.finish()
        return out

    def regex(self, key: str) -> str:
        value = self.string(key)
        try:
            re.compile(value)
        except re.error as exc:
            self.problem(f"not a valid regular expression: {exc}", key)
        return str(value)

    def path_str(self, key: str, default: Any = _MISSING, *, must_exist: bool = False) -> Any:
        value = self.string(key, default)
        if value and must_exist and not os.path.exists(value):
            self.problem(f"{value}: no such file or directory", key)
        return value

    def secret_given(self, key: str) -> bool:
        """Whether ``<key>_file``, ``<key>_env`` or ``<key>`` is set at all (even if it could not be read):
        a caller must not report a secret as missing when :meth:`secret` already said why it is unusable."""
        return any(k in self.data for k in (f"{key}_file", f"{key}_env", key))

    def secret(self, key: str, *, required: bool = True) -> Secret | None:
        """Read ``<key>_file``, ``<key>_env`` or ``<key>`` (exactly one)."""
        given = [k for k in (f"{key}_file", f"{key}_env", key) if k in self.data]
        for k in (f"{key}_file", f"{key}_env", key):
            self.seen.add(k)
        if not given:
            if required:
                self.problem(f"required: set {key}_file or {key}_env", key)
            return None
        if len(given) > 1:
            self.problem(f"set only one of {', '.join(given)}", key)
            return None
        which = given[0]
        raw = self.data[which]
        if not isinstance(raw, str) or not raw:
            self.problem("must be a non-empty string", which)
            return None
        if which.endswith("_file"):
            return self._secret_file(which, raw)
        if which.endswith("_env"):
            value = os.environ.get(raw)
            if not value:
                self.problem(f"environment variable {raw} is not set or empty", which)
                return None
            return Secret(value, f"${raw}")
        return Secret(raw, f"{self.key(key)} (inline)")

    def _secret_file(self, which: str, path: str) -> Secret | None:
        try:
            st = os.stat(path)
            with open(path, encoding="utf-8") as fh:
                value = fh.read().strip("\r\n")
        except OSError as exc:
            self.problem(f"cannot read {path}: {exc.strerror}", which)
            return None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and not self.insecure_files_ok:
            self.problem(f"{path} is readable by group or others (chmod 600 it, or set "
                         "allow_insecure_secret_files: true)", which)  # fmt: skip
            return None
        if not value:
            self.problem(f"{path} is empty", which)
            return None
        return Secret(value, path)


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"


def parse_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:9947``, ``[::1]:9947``, ``:9947`` (all addresses) → (host, port). Raises ValueError."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not port_s.isdigit():
        raise ValueError("must be host:port, e.g. 127.0.0.1:9947 or [::1]:9947")
    port = int(port_s)
    if not 0 < port < 65536:
        raise ValueError("port must be between 1 and 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port
