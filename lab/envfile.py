"""DIR/lab.env: what a running lab offers (endpoints, credentials, log paths), KEY=VALUE, shell-quoted.

The keys listed in docs/CONTRACTS.md are always present; a few extras are documented in docs/lab.md.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REQUIRED_KEYS = (
    "LAB_DIR",
    "LAB_PORT_BASE",
    "LAB_HOST",
    "LAB_CA_FILE",
    "LAB_MX_PORT",
    "LAB_SUBMISSION_PORT",
    "LAB_SMTPS_PORT",
    "LAB_RELAY_PORT",
    "LAB_RELAY_CLIENT_CERT",
    "LAB_RELAY_CLIENT_KEY",
    "LAB_FAKE_REMOTE_PORT",
    "LAB_IMAP_PORT",
    "LAB_IMAPS_PORT",
    "LAB_DNS_PORT",
    "LAB_REDIS_PORT",
    "LAB_RSPAMD_CONTROLLER_PORT",
    "LAB_SENDER",
    "LAB_PASSWORD",
    "LAB_PASSWORD_FILE",
    "LAB_MAILBOXES",
    "LAB_POSTFIX_LOG",
    "LAB_RSPAMD_LOG",
    "LAB_DOVECOT_LOG",
    "LAB_POSTFIX_CONFIG",
    "LAB_DKIM_DOMAIN",
    "LAB_DKIM_SELECTOR",
    "LAB_DKIM_TXT",
    "LAB_MAILPULSE_CONFIG",
    "LAB_METRICS_PORT",
)


def render(values: Mapping[str, object]) -> str:
    missing = [k for k in REQUIRED_KEYS if k not in values]
    if missing:
        raise KeyError(f"lab.env lacks {', '.join(missing)}")
    return "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in values.items())


def parse(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word = shlex.split(line)[0]
        key, _, value = word.partition("=")
        values[key] = value
    return values


class LabEnv:
    """Read-only view of a lab.env: `env.submission_port` is LAB_SUBMISSION_PORT (int for ports),
    `env["LAB_SENDER"]` the raw string."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    @classmethod
    def load(cls, path: Path) -> LabEnv:
        return cls(parse(Path(path).read_text()))

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def get(self, key: str, default: str = "") -> str:
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __getattr__(self, name: str) -> Any:  # str, or int for *_PORT keys
        key = "LAB_" + name.upper()
        try:
            value = self._values[key]
        except KeyError:
            raise AttributeError(f"lab.env has no {key}") from None
        if key.endswith(("_PORT", "_PORT_BASE")) and value.isdigit():
            return int(value)
        return value

    @property
    def port_base(self) -> int:
        return int(self._values["LAB_PORT_BASE"])

    @property
    def dir(self) -> Path:
        return Path(self._values["LAB_DIR"])

    @property
    def mailboxes(self) -> list[str]:
        return self._values["LAB_MAILBOXES"].split()

    def as_dict(self) -> dict[str, str]:
        return dict(self._values)
