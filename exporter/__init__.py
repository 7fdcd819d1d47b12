"""mailpulse exporter: daemon, config, CLI, log sources, metrics and HTTP endpoint."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mailpulse")
except PackageNotFoundError:  # running from a checkout that was not installed
    __version__ = "0.0.0+unknown"
