"""The few choices a lab remembers between commands (port base, DKIM signer, password)."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

from lab.layout import DEFAULT_PORT_BASE, Paths, check_port_base

DKIM_MODES = ("rspamd", "opendkim")


@dataclass(frozen=True)
class LabState:
    """Persisted in DIR/lab-state.json so `down`, `status` and a repeated `up` agree with the first `up`."""

    port_base: int
    dkim: str
    password: str

    def save(self, paths: Paths) -> None:
        paths.state.write_text(json.dumps(asdict(self), indent=2) + "\n")
        paths.state.chmod(0o600)


def load(paths: Paths) -> LabState | None:
    """Return the saved state of the lab in `paths.root`, if any."""
    try:
        raw = json.loads(paths.state.read_text())
    except FileNotFoundError:
        return None
    return LabState(port_base=int(raw["port_base"]), dkim=str(raw["dkim"]), password=str(raw["password"]))


def resolve(paths: Paths, port_base: int | None, dkim: str | None) -> LabState:
    """Merge command-line choices with what the lab already has; new labs get a random password."""
    old = load(paths)
    base = port_base if port_base is not None else (old.port_base if old else DEFAULT_PORT_BASE)
    mode = dkim or (old.dkim if old else "rspamd")
    if mode not in DKIM_MODES:
        raise ValueError(f"--dkim must be one of {', '.join(DKIM_MODES)}")
    password = old.password if old else "lab-" + secrets.token_urlsafe(12)
    return LabState(port_base=check_port_base(base), dkim=mode, password=password)
