"""Typed capabilities: how one feature reads another's query API without importing it.

A feature that offers something to the others (the Postfix feature's message tracker) *provides* it in
:meth:`Feature.configure` under a :class:`Capability` key; a feature that uses it (the probes, for their
hop timelines) *gets* it by the same key when it needs it, typically later, at run time. The key names
the value's type, so ``get`` is typed without a cast, and neither feature imports the other: both import
only the module that declares the key (for the tracker, the public ``exporter.tracking.api``).

The kernel owns one :class:`Capabilities` per daemon and empties it at every (re)build, before the
features are configured, so a capability is available exactly while its provider is configured and
active: switch tracking off and reload, and the probes stop finding the tracker. A lookup returns None
when nobody provides the key (``mailpulse probe`` without the log features, a config without logs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Capability(Generic[T]):
    """A key: its name (for messages) and, through ``T``, the type of what is provided under it. Keys
    compare by identity: declare each once, at module level, in the module both sides import."""

    name: str


class Capabilities:
    """What the configured features provide to each other, by key. Written in ``configure`` (with the
    lock not held) and read by services; no lock needed: a dict assignment is atomic and values are
    objects that guard their own state."""

    def __init__(self) -> None:
        self._values: dict[Capability[Any], object] = {}

    def provide(self, key: Capability[T], value: T) -> None:
        self._values[key] = value

    def get(self, key: Capability[T]) -> T | None:
        return cast("T | None", self._values.get(key))

    def clear(self) -> None:
        """A (re)build starts: nothing is provided until the features say so again."""
        self._values.clear()

    def names(self) -> list[str]:
        return sorted(k.name for k in self._values)
