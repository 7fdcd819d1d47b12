"""Config generators: each module turns a lab (paths, ports, choices) into FileSpecs."""

from __future__ import annotations

from dataclasses import dataclass

from lab.layout import Paths, Ports
from lab.state import LabState


@dataclass(frozen=True)
class LabSpec:
    """Everything a config generator needs to know about one lab."""

    paths: Paths
    state: LabState
    dkim_txt: str  # "v=DKIM1; k=rsa; p=..."
    client_fingerprint: str  # SHA-256 of the relay client certificate
    external_dkim_txt: str = ""  # the outside sender's (sender.test) DKIM record value

    @property
    def log_mode(self) -> str:
        return self.state.log_mode

    @property
    def ports(self) -> Ports:
        return Ports(self.state.port_base)

    @property
    def dkim_mode(self) -> str:
        return self.state.dkim
