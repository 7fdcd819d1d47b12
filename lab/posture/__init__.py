"""The posture lab: a signed zone in knotd behind a validating unbound, SMTP servers with and without
STARTTLS, an HTTPS server for MTA-STS policies, and blocklist zones, all on loopback and free ports.

``PostureLab.up(dir)`` starts everything and ``down()`` stops it; ``config()`` is a ``posture:`` section
for mailpulse that checks every lab domain and sender. Used by tests/lab/test_posture_lab.py (a
session fixture) and bench/posture_bench.py; ``python -m lab.posture DIR`` runs it until Ctrl-C.
"""

from __future__ import annotations

import random
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.posture import dns as labdns
from lab.posture import pki, zones
from lab.posture.servers import Servers, server_context

IPS_SMTP = (zones.GOOD_MX_IP, zones.NOTLS_MX_IP, zones.EXPIRING_MX_IP)
IPS_HTTPS = (zones.GOOD_MX_IP, zones.BADCERT_HTTPS_IP)


def _free_on(addresses: tuple[str, ...], taken: set[int]) -> int:
    """A port free for TCP and UDP on every address (random, outside the ephemeral range)."""
    for _ in range(200):
        port = random.randint(33000, 59000)
        if port in taken:
            continue
        socks = []
        try:
            for address in addresses:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((address, port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        taken.add(port)
        return port
    raise RuntimeError("no free port")


@dataclass
class PostureLab:
    dir: Path
    knot_port: int = 0
    dns_port: int = 0
    smtp_port: int = 0
    https_port: int = 0
    blackhole_port: int = 0
    keys: zones.Keys | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    servers: Servers | None = None
    blackhole: labdns.Blackhole | None = None
    domains: list[zones.Domain] = field(default_factory=lambda: list(zones.DOMAINS))
    # more DNSSEC-signed zones (origin -> records), e.g. names for the main lab's real Postfix
    signed_zones: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def up(cls, dir_: Path, bench_domains: int = 0, signed_zones: dict[str, list[str]] | None = None) -> PostureLab:
        """Start the lab; ``bench_domains`` adds that many good domains (b0000.posture.test, ...),
        ``signed_zones`` more signed zones (origin -> zone-file records relative to it)."""
        lab = cls(dir_, signed_zones=dict(signed_zones or {}))
        lab.domains += zones.bench_domains(bench_domains)
        try:
            lab._up()
        except BaseException:
            lab.down()
            raise
        return lab

    def _up(self) -> None:
        taken: set[int] = set()
        self.knot_port = _free_on(("127.0.0.1",), taken)
        self.dns_port = _free_on(("127.0.0.1",), taken)
        self.blackhole_port = _free_on(("127.0.0.1",), taken)
        self.smtp_port = _free_on(IPS_SMTP, taken)
        self.https_port = _free_on(IPS_HTTPS, taken)
        pkidir = self.dir / "pki"
        self.keys = keys = pki.make(pkidir, self.domains)
        for sub in ("run", "db", "zones"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        others = zones.other_zones(keys)
        (self.dir / "zones" / f"{zones.ZONE}.zone").write_text(zones.posture_zone_text(keys, self.domains))
        for name, text in others.items():
            (self.dir / "zones" / f"{name}.zone").write_text(text)
        for origin, records in self.signed_zones.items():
            (self.dir / "zones" / f"{origin}.zone").write_text(zones.simple_zone(origin, records))
        signed = [zones.ZONE, *self.signed_zones]
        names = [*signed, *others]
        (self.dir / "knot.conf").write_text(labdns.knot_conf(self.dir, self.knot_port, names, signed))
        self.procs.append(labdns.start(["knotd", "-c", str(self.dir / "knot.conf")], self.dir / "knotd.out"))
        anchors = [line for zone in signed for line in labdns.dnskeys(self.knot_port, zone)]
        (self.dir / "anchor.key").write_text("\n".join(anchors) + "\n")
        self.blackhole = labdns.Blackhole(self.blackhole_port)
        (self.dir / "unbound.conf").write_text(labdns.unbound_conf(self.dir, self.dns_port, self.knot_port, names,
                                                                   self.blackhole_port))  # fmt: skip
        self.procs.append(labdns.start(["unbound", "-d", "-c", str(self.dir / "unbound.conf")],
                                       self.dir / "unbound.out"))  # fmt: skip
        labdns.wait_answer(self.dns_port, f"mx.{zones.ZONE}", "A")
        self.servers = servers = Servers()
        mx = server_context(pkidir, "mx")
        servers.smtp(zones.GOOD_MX_IP, self.smtp_port, mx)
        servers.smtp(zones.NOTLS_MX_IP, self.smtp_port, None)
        servers.smtp(zones.EXPIRING_MX_IP, self.smtp_port, server_context(pkidir, "expiring"))
        policies = {f"mta-sts.{d.fqdn}": zones.policy_body(d) for d in self.domains}
        servers.https(zones.GOOD_MX_IP, self.https_port, server_context(pkidir, "sts"), policies)
        servers.https(zones.BADCERT_HTTPS_IP, self.https_port, server_context(pkidir, "wrong"), policies)

    def down(self) -> None:
        if self.servers is not None:
            self.servers.close()
        if self.blackhole is not None:
            self.blackhole.close()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def config(self, dqs_key_file: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A ``posture:`` section checking every lab domain and sender."""
        pkidir = self.dir / "pki"
        section: dict[str, Any] = {
            "resolvers": ["127.0.0.1"], "resolver_port": self.dns_port, "dns_timeout": "1s",
            "ca_file": str(pkidir / "ca.crt"), "helo": "checker.posture.test", "smtp_port": self.smtp_port,
            "https_port": self.https_port, "concurrency": 16,
            "domains": [{
                "name": d.fqdn, "dane": d.dane, "senders": list(d.senders),
                "dkim": [{"selector": "sel1", "key_file": str(pkidir / "dkim-good.key")}]
                + ([{"selector": "ed1", "key_file": str(pkidir / "dkim-ed.key")}] if d.name == "good" else []),
                "dnsbl": d.name in ("good", zones.DBL_LISTED, zones.DBL_ERROR),
            } for d in self.domains],
            "senders": [{"name": s.name, "ip": s.ip, "helo": s.helo} for s in zones.SENDERS],
            "dnsbl": {
                "zones": ["spamhaus-zen", "spamhaus-dbl"],
                "custom": [
                    {"name": "lab-err", "zone": "errbl.test", "errors": {"127.255.255.254": "public_resolver"}},
                    {"name": "lab-dead", "zone": "deadbl.test"},
                ],
            },
        }  # fmt: skip
        if dqs_key_file is not None:
            section["dnsbl"]["dqs_key_file"] = dqs_key_file
        section.update(overrides)
        return section
