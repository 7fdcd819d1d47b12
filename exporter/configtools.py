"""Tools for reading the YAML config into typed objects with errors that name the key path.

Every reader method records a problem instead of raising, so one run of ``mailpulse check-config``
reports all problems at once::

    sources[1].path: required key is missing
    probes.routes[0].tls: must be one of implicit, starttls (got 'opportunistic')

Secrets (passwords, keys, tokens) come from ``<key>_file`` or ``<key>_env`` (or, discouraged, ``<key>``)
and are held in :class:`Secret`, whose repr never shows the value.

The readers are typed by their default (``string(key) -> str``, ``string(key, None) -> str | None``), so
no ``Any`` reaches the config dataclasses. Given a :class:`Schema`, a node records every key it and its
children read (type, default, constraints); docs/config.md is generated from that record.
"""

from __future__ import annotations

import enum
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TypeVar, cast, overload

T = TypeVar("T")


class _Missing(enum.Enum):
    """The type of "no default given": the key is required."""

    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING
_EMPTY_MAP: Mapping[str, str] = MappingProxyType({})
_INDEX_RE = re.compile(r"\[\d+\]")
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


@dataclass
class KeySpec:
    """What the readers know about one key: how it is read and what it defaults to.

    ``path`` names list items ``[]`` (``probes.routes[].host``). A key read in several places (every
    item of a list) is one entry; ``defaults`` keeps each distinct default, because some are computed
    from a sibling (a target's ``port`` is 993 or 143 by its ``tls``)."""

    path: str
    kind: str
    required: bool
    defaults: list[object] = field(default_factory=list)
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None


class Schema:
    """Collects a :class:`KeySpec` for every key a :class:`Node` (and its children) reads.

    Given to the root node only when the schema is wanted (docs/config.md is generated from it);
    without one, a read costs one ``is None`` test."""

    def __init__(self) -> None:
        self.keys: dict[str, KeySpec] = {}

    def record(self, path: str, kind: str, default: object, *, choices: Iterable[str] | None = None,
               pattern: re.Pattern[str] | None = None, minimum: float | None = None,
               maximum: float | None = None) -> None:  # fmt: skip
        required = isinstance(default, _Missing)
        spec = self.keys.get(path)
        if spec is None:
            spec = self.keys[path] = KeySpec(path, kind, required)
            spec.choices = tuple(choices) if choices is not None else None
            spec.pattern = pattern.pattern if pattern is not None else None
            spec.minimum, spec.maximum = minimum, maximum
        elif spec.kind != kind:
            # one key, two readers: the docs could only show one of them, so this is a bug in a reader
            raise ValueError(f"{path} is read as {spec.kind} and as {kind}")
        spec.required = spec.required and required
        if not required and default not in spec.defaults:
            spec.defaults.append(default)


class Node:
    """A YAML mapping at a key path. Read keys with the typed methods, then call :meth:`finish`.

    Each reader returns the type its default says (``string(key) -> str``, ``string(key, None) ->
    str | None``), so nothing untyped reaches the config dataclasses. With a :class:`Schema`, every
    read is also recorded (docs/config.md is generated from that record)."""

    def __init__(self, data: object, path: str, problems: list[str], *, insecure_files_ok: bool = False,
                 schema: Schema | None = None) -> None:  # fmt: skip
        self.path = path
        self.problems = problems
        self.insecure_files_ok = insecure_files_ok
        self.schema = schema
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem(f"must be a mapping (got {_kind(data)})")
            data = {}
        self.data: dict[str, object] = {str(k): v for k, v in data.items()}
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

    def _raw(self, key: str, default: object = _MISSING) -> object:
        self.seen.add(key)
        if key not in self.data:
            if isinstance(default, _Missing):
                self.problem("required key is missing", key)
                return None
            return default
        return self.data[key]

    def _record(self, key: str, kind: str, default: object, *, choices: Iterable[str] | None = None,
                pattern: re.Pattern[str] | None = None, minimum: float | None = None,
                maximum: float | None = None) -> None:  # fmt: skip
        if self.schema is not None:
            path = _INDEX_RE.sub("[]", self.key(key))
            self.schema.record(path, kind, default, choices=choices, pattern=pattern, minimum=minimum, maximum=maximum)

    def _node(self, data: object, path: str) -> Node:
        return Node(data, path, self.problems, insecure_files_ok=self.insecure_files_ok, schema=self.schema)

    def child(self, key: str, required: bool = False) -> Node:
        if self.schema is not None:
            self._record(key, "mapping", _MISSING if required else None)
        return self._node(self._raw(key, _MISSING if required else None), self.key(key))

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
    @overload
    def string(self, key: str, default: str | _Missing = _MISSING, *, choices: Iterable[str] | None = None,
               pattern: re.Pattern[str] | None = None) -> str: ...  # fmt: skip
    @overload
    def string(self, key: str, default: None, *, choices: Iterable[str] | None = None,
               pattern: re.Pattern[str] | None = None) -> str | None: ...  # fmt: skip
    def string(self, key: str, default: str | _Missing | None = _MISSING, *, choices: Iterable[str] | None = None,
               pattern: re.Pattern[str] | None = None) -> str | None:  # fmt: skip
        if self.schema is not None:
            choices = tuple(choices) if choices is not None else None
            self._record(key, "string", default, choices=choices, pattern=pattern)
        return self._string(key, default, choices, pattern)

    def _string(self, key: str, default: str | _Missing | None, choices: Iterable[str] | None,
                pattern: re.Pattern[str] | None) -> str | None:  # fmt: skip
        if key not in self.data and not isinstance(default, _Missing):
            self.seen.add(key)
            return default
        value = self._raw(key, default)
        fallback = "" if isinstance(default, _Missing) else default
        if value is None:
            return fallback
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(f"must be a string (got {_kind(value)})", key)
            return fallback
        text = str(value)
        if choices is not None:
            options = list(choices)
            if text not in options:
                self.problem(f"must be one of {', '.join(options)} (got {text!r})", key)
        if pattern is not None and not pattern.match(text):
            self.problem(f"{text!r} does not match {pattern.pattern}", key)
        return text

    def integer(self, key: str, default: int | _Missing = _MISSING, *, minimum: int | None = None,
                maximum: int | None = None) -> int:  # fmt: skip
        if self.schema is not None:
            self._record(key, "integer", default, minimum=minimum, maximum=maximum)
        if key not in self.data and not isinstance(default, _Missing):
            self.seen.add(key)
            return default
        value = self._raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(f"must be an integer (got {_kind(value)})", key)
            return 0 if isinstance(default, _Missing) else default
        if minimum is not None and value < minimum:
            self.problem(f"must be at least {minimum} (got {value})", key)
        if maximum is not None and value > maximum:
            self.problem(f"must be at most {maximum} (got {value})", key)
        return value

    def boolean(self, key: str, default: bool | _Missing = _MISSING) -> bool:
        if self.schema is not None:
            self._record(key, "boolean", default)
        value = self._raw(key, default)
        if not isinstance(value, bool):
            self.problem(f"must be true or false (got {_kind(value)})", key)
            return False if isinstance(default, _Missing) else default
        return value

    def duration(self, key: str, default: float | _Missing = _MISSING, *, minimum: float = 0.0) -> float:
        if self.schema is not None:
            self._record(key, "duration", default, minimum=minimum or None)
        if key not in self.data and not isinstance(default, _Missing):
            self.seen.add(key)
            return float(default)
        value = self._raw(key, default)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.problem(f"{exc} (got {value!r})", key)
            return 0.0
        if seconds < minimum:
            self.problem(f"must be at least {minimum:g}s (got {value!r})", key)
        return seconds

    @overload
    def str_list(self, key: str, default: Sequence[str] = (), *, choices: Iterable[str] | None = None,
                 pattern: re.Pattern[str] | None = None) -> list[str]: ...  # fmt: skip
    @overload
    def str_list(self, key: str, default: None, *, choices: Iterable[str] | None = None,
                 pattern: re.Pattern[str] | None = None) -> list[str] | None: ...  # fmt: skip
    def str_list(self, key: str, default: Sequence[str] | None = (), *, choices: Iterable[str] | None = None,
                 pattern: re.Pattern[str] | None = None) -> list[str] | None:  # fmt: skip
        """A list of strings; one string is a list of one (``format: rspamd``)."""
        options = tuple(choices) if choices is not None else None
        if self.schema is not None:
            self._record(key, "list of strings", None if default is None else list(default), choices=options,
                         pattern=pattern)  # fmt: skip
        if default is None and key not in self.data:
            self.seen.add(key)
            return None
        fallback = list(default or ())
        value = self._raw(key, fallback)
        single = isinstance(value, str)
        if not single and not isinstance(value, list):
            self.problem(f"must be a list of strings (got {_kind(value)})", key)
            return fallback
        items: list[object] = [value] if single else cast(list[object], value)
        out = []
        for i, item in enumerate(items):
            where = key if single else f"{key}[{i}]"
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.problem(f"must be a string (got {_kind(item)})", where)
                continue
            text = str(item)
            if options is not None and text not in options:
                self.problem(f"must be one of {', '.join(options)} (got {text!r})", where)
            if pattern is not None and not pattern.match(text):
                self.problem(f"{item!r} does not match {pattern.pattern}", where)
            out.append(text)
        return out

    def str_map(self, key: str, default: Mapping[str, str] = _EMPTY_MAP) -> dict[str, str]:
        if self.schema is not None:
            self._record(key, "mapping of strings", dict(default))
        value = self._raw(key, default)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(f"must be a mapping of strings (got {_kind(value)})", key)
            return dict(default)
        return {str(k): str(v) for k, v in cast(Mapping[object, object], value).items()}

    def list_of(self, key: str, parse: Callable[[Node], T], *, required: bool = False) -> list[T]:
        """Parse a list of mappings; each item is a Node at ``key[i]``."""
        if self.schema is not None:
            self._record(key, "list of mappings", _MISSING if required else [])
        value = self._raw(key, _MISSING if required else [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"must be a list (got {_kind(value)})", key)
            return []
        out = []
        for i, item in enumerate(cast(list[object], value)):
            node = self._node(item, f"{self.key(key)}[{i}]")
            out.append(parse(node))
            node.finish()
        return out

    def regex(self, key: str) -> str:
        if self.schema is not None:
            self._record(key, "regular expression", _MISSING)
        value = self._string(key, _MISSING, None, None) or ""
        try:
            re.compile(value)
        except re.error as exc:
            self.problem(f"not a valid regular expression: {exc}", key)
        return value

    @overload
    def path_str(self, key: str, default: str | _Missing = _MISSING, *, must_exist: bool = False) -> str: ...
    @overload
    def path_str(self, key: str, default: None, *, must_exist: bool = False) -> str | None: ...
    def path_str(self, key: str, default: str | _Missing | None = _MISSING, *, must_exist: bool = False) -> str | None:
        if self.schema is not None:
            self._record(key, "path", default)
        value = self._string(key, default, None, None)
        if value and must_exist and not os.path.exists(value):
            self.problem(f"{value}: no such file or directory", key)
        return value

    def secret_given(self, key: str) -> bool:
        """Whether ``<key>_file``, ``<key>_env`` or ``<key>`` is set at all (even if it could not be read):
        a caller must not report a secret as missing when :meth:`secret` already said why it is unusable."""
        return any(k in self.data for k in (f"{key}_file", f"{key}_env", key))

    def secret(self, key: str, *, required: bool = True) -> Secret | None:
        """Read ``<key>_file``, ``<key>_env`` or ``<key>`` (exactly one)."""
        if self.schema is not None:
            self._record(key, "secret", _MISSING if required else None)
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
