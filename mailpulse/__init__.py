"""mailpulse: the application shell. It names the features and hands them to the kernel (exporter).

This is the one place that knows every feature; adding a capability means writing a
:class:`exporter.feature.Feature` and adding it to :func:`features`. Everything is imported lazily, so
importing a subpackage (``mailpulse.parsers``) does not load the daemon.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from mailpulse.exporter import __version__  # light: importlib.metadata only

if TYPE_CHECKING:
    from mailpulse.exporter.config import Config
    from mailpulse.exporter.feature import AnyFeature


__all__ = ["__version__", "console_main", "features", "load_config", "main", "parse_config"]


def features() -> list[AnyFeature]:
    """Fresh instances of every feature, in the order of docs/metrics.md and docs/config.md."""
    from mailpulse.exporter.features import PostfixLogs, PostfixQueue, RspamdLogs  # noqa: PLC0415
    from mailpulse.exporter.features.posture.feature import Posture  # noqa: PLC0415
    from mailpulse.probes.feature import Probes  # noqa: PLC0415
    from mailpulse.probes.reports.feature import Reports  # noqa: PLC0415

    return [PostfixLogs(), PostfixQueue(), RspamdLogs(), Probes(), Posture(), Reports()]


def load_config(path: str, with_features: Sequence[AnyFeature] | None = None) -> Config:
    from mailpulse.exporter.config import load_config as kernel_load  # noqa: PLC0415

    return kernel_load(path, with_features if with_features is not None else features())


def parse_config(data: object, path: str = "<config>", with_features: Sequence[AnyFeature] | None = None) -> Config:
    from mailpulse.exporter.config import parse_config as kernel_parse  # noqa: PLC0415

    return kernel_parse(data, with_features if with_features is not None else features(), path)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The ``mailpulse`` command with every feature (what tests call; the script calls :func:`console_main`)."""
    from mailpulse.exporter.cli import main as kernel_main  # noqa: PLC0415

    return kernel_main(argv, features=features(), out=out, err=err)


def console_main() -> None:
    sys.exit(main())
