"""The kernel's one contract with what plugs into it: a :class:`Feature`.

A feature (Postfix logs, rspamd logs, the Postfix queue, the probes, and later tracking, posture,
reports) declares in one class everything the kernel needs to know about it:

- its config section (a key path such as ``("postfix", "queue")``) and a typed reader for it,
- its metric families (the source of docs/metrics.md),
- the log formats it reads (sources name them in ``format:``),
- the runtime services (async tasks) it runs, rebuilt on every (re)load,
- what it contributes to ``/health``, to the status page at ``/`` and which CLI subcommands it adds.

The kernel (exporter/) never names a feature: the application shell (the ``mailpulse`` package) hands
it the list. One instance of each feature lives as long as the process, so the numbers a feature holds
(counters) survive config reloads.

The reload rule, the same for every feature: :meth:`Feature.configure` is called with the new section
on every load; counters survive; series of things that left the config (a source, a probe, a target)
disappear from /metrics; services are stopped and started again from the new config.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TextIO, TypeVar

from mailpulse.exporter.capabilities import Capabilities
from mailpulse.exporter.configtools import Node
from mailpulse.exporter.metrics.collector import Part
from mailpulse.exporter.metrics.family import Family, LabelSets
from mailpulse.exporter.metrics.sources import SourcesAggregator
from mailpulse.exporter.pipeline import Format
from mailpulse.exporter.status import StatusSection

if TYPE_CHECKING:
    from mailpulse.exporter.config import Config

C = TypeVar("C")


class Service(Protocol):
    """A long-running part of the daemon (a log source, the queue collector, the probe scheduler)."""

    async def run(self, stop: asyncio.Event) -> None: ...


ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    """A ``check-config`` finding about the machine: an error (cannot run) or a warning (runs, but
    something will not work until the machine changes)."""

    level: str  # error | warning
    where: str  # the config key the finding is about
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass(frozen=True)
class Health:
    """What a feature tells ``/health``: ``ok`` is False when the feature is degraded."""

    ok: bool
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What the kernel gives a feature when it (re)builds: the shared lock every part's numbers are
    read and written under (scrapes read under it too), the state directory, and the capabilities the
    features provide to each other (:mod:`exporter.capabilities`: provide yours in ``configure``, look
    others' up when you need them, never keep them past the next ``configure``)."""

    lock: threading.Lock
    state_dir: str
    capabilities: Capabilities = field(default_factory=Capabilities)


class Summary(Protocol):
    """A human report over scanned logs (``mailpulse scan --summary``), fed the same events as the metrics."""

    def handler(self, fmt: str) -> Callable[[object], None]: ...

    def event_types(self, fmt: str) -> Iterable[type]: ...

    def report(self, sources: SourcesAggregator) -> str: ...


@dataclass(frozen=True)
class CommandIO:
    """What a CLI command gets besides its arguments: the streams, the config loader (which prints the
    problems of a bad file and returns None) and ``follow``: ``async with io.follow(config, feature.name) as
    capabilities`` follows the config's logs from their end with the log features, for the time of the
    block, and yields the capabilities they provide (:mod:`exporter.follow`)."""

    out: TextIO
    err: TextIO
    load: Callable[[str], Config | None]
    follow: Callable[[Config, str], AbstractAsyncContextManager[Capabilities]] | None = None


CommandRunner = Callable[[argparse.Namespace, CommandIO], int]


class Feature(ABC, Generic[C]):
    """One capability of mailpulse. Subclasses set the class attributes and override what they use."""

    #: Unique, label-safe name (``postfix``, ``queue``, ``probes``); also the key of its config.
    name: str = ""
    #: Section title in docs/metrics.md and docs/config.md.
    title: str = ""
    #: The config key path the feature owns (``()``: none). A missing section reads as ``{}``.
    section: tuple[str, ...] = ()
    #: Every metric family the feature can emit.
    families: tuple[Family, ...] = ()
    #: Names of the log formats it parses (what ``sources[].format`` may name).
    format_names: tuple[str, ...] = ()
    #: True when the feature alone gives the daemon something to do (no log source needed).
    standalone: bool = False
    #: What each key of its section means, by key path with list items as ``[]`` (``probes.routes[].host``),
    #: in the order docs/config.md lists them. A test holds it to the keys the section's reader reads.
    key_docs: Mapping[str, str] = MappingProxyType({})
    #: Where each label of its families takes its values from, by (family name, label): an enum, config
    #: names or a capped open set (:func:`exporter.metrics.family.label_sets` checks every label has one).
    label_sets: LabelSets = MappingProxyType({})
    #: Inputs other than logs that ``mailpulse scan`` reads for this feature, by flag name (``reports`` gives
    #: ``scan --reports PATH...``) with the flag's help; :meth:`scan_paths` reads them.
    scan_inputs: Mapping[str, str] = MappingProxyType({})

    @abstractmethod
    def parse_config(self, node: Node) -> C:
        """Read the section, which is present in the file. Report problems on the node."""

    @abstractmethod
    def absent(self) -> C:
        """The section's value when the file does not have it."""

    def check_config(self, config: C) -> list[str]:
        """Problems that need the parsed section as a whole (cross-key checks); empty when fine."""
        return []

    def active(self, config: C) -> bool:
        """Whether the feature has something to do with this config (an inactive feature emits nothing)."""
        return True

    def formats(self, config: C) -> Sequence[Format]:
        """Log formats this feature parses and counts, rebuilt on every load."""
        return ()

    def configure(self, config: C, context: Context) -> Sequence[Service]:
        """Apply a (re)loaded section; return the services to run until the next reload or stop.

        Called with the kernel's lock not held. Keep counters; drop series of removed names."""
        return ()

    def parts(self) -> Sequence[Part]:
        """The parts to collect at scrape time (only while active)."""
        return ()

    def health(self) -> Health | None:
        """This feature's contribution to /health, or None when it has none."""
        return None

    def status(self) -> StatusSection | None:
        """This feature's section of the status page at ``/``, or None when it has none (only while active).

        Called with the shared lock held, like :meth:`parts`' collect: read your numbers, do not take the
        lock again, do no I/O. Return plain data (:mod:`exporter.status`); the kernel renders and escapes it."""
        return None

    def preflight(self, config: C) -> list[Finding]:
        """``check-config``'s checks of what the section needs from this machine, as the calling user."""
        return []

    def summary(self) -> Summary | None:
        """A fresh report for ``scan --summary``, or None (the first feature that has one reports)."""
        return None

    def scan_paths(self, config: C, flag: str, paths: Sequence[str], err: TextIO) -> int:
        """Read ``paths`` given to ``scan --<flag>`` into this feature's parts (as the daemon would count them);
        the exit status (0: read, 1: a path could not be read, said on ``err``)."""
        return 0

    def commands(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Mapping[str, CommandRunner]:
        """Add CLI subcommands; return their runners by name."""
        return {}


AnyFeature = Feature[Any]

__all__ = [
    "ERROR", "WARNING", "AnyFeature", "CommandIO", "CommandRunner", "Context", "Feature", "Finding", "Health",
    "Part", "Service", "StatusSection", "Summary",
]  # fmt: skip


def check_names(features: Sequence[AnyFeature]) -> None:
    """Feature names and sections must be unique: a programming error, not a config problem."""
    names = [f.name for f in features]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"feature names must be unique and non-empty: {names}")
    sections = [f.section for f in features if f.section]
    if len(set(sections)) != len(sections):
        raise ValueError(f"feature config sections must be unique: {sections}")
