"""The few choices a lab remembers between commands (port base, DKIM signer, password)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass

from lab.layout import DEFAULT_PORT_BASE, LOG_MODES, Paths, check_port_base

DKIM_MODES = ("rspamd", "opendkim")
LOG_MODE_ENV = "MAILPULSE_LAB_LOG_MODE"  # per-host (default) | central, when --log-mode is not given


@dataclass(frozen=True)
class LabState:
    """Persisted in DIR/lab-state.json so `down`, `status` and a repeated `up` agree with the first `up`."""

    port_base: int
    dkim: str
    password: str
    log_mode: str = "per-host"  # per-host: one maillog per Postfix instance; central: one shared file

    def save(self, paths: Paths) -> None:
        paths.state.write_text(json.dumps(asdict(self), indent=2) + "\n")
        paths.state.chmod(0o600)


def load(paths: Paths) -> LabState | None:
    """Return the saved state of the lab in `paths.root`, if any."""
    try:
        raw = json.loads(paths.state.read_text())
    except FileNotFoundError:
        return None
    return LabState(
        port_base=int(raw["port_base"]),
        dkim=str(raw["dkim"]),
        password=str(raw["password"]),
        log_mode=str(raw.get("log_mode", "per-host")),
    )


def resolve(paths: Paths, port_base: int | None, dkim: str | None, log_mode: str | None = None) -> LabState:
    """Merge command-line choices with what the lab already has; new labs get a random password."""
    old = load(paths)
    base = port_base if port_base is not None else (old.port_base if old else DEFAULT_PORT_BASE)
    mode = dkim or (old.dkim if old else "rspamd")
    if mode not in DKIM_MODES:
        raise ValueError(f"--dkim must be one of {', '.join(DKIM_MODES)}")
    password = old.password if old else "lab-" + secrets.token_urlsafe(12)
    logs = log_mode or os.environ.get(LOG_MODE_ENV) or (old.log_mode if old else "per-host")
    if logs not in LOG_MODES:
        raise ValueError(f"--log-mode (or {LOG_MODE_ENV}) must be one of {', '.join(LOG_MODES)}")
    return LabState(port_base=check_port_base(base), dkim=mode, password=password, log_mode=logs)
