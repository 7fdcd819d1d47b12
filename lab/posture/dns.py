"""The posture lab's DNS: knotd serving the zones (``posture.test`` signed automatically, ECDSA P-256)
and unbound as the validating resolver in front of it, its trust anchor the signed zone's DNSKEY, so
answers from ``posture.test`` carry the AD bit and answers from the unsigned zones do not. A UDP
socket that reads and never answers stands in for a blocklist that never answers (``slowbl.test``)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype


def knot_conf(dir_: Path, port: int, zones: list[str], signed: list[str]) -> str:
    lines = ["server:", f'    rundir: "{dir_}/run"', f"    listen: 127.0.0.1@{port}", "database:",
             f'    storage: "{dir_}/db"', "log:", f"  - target: {dir_}/knot.log", "    any: info", "policy:",
             "  - id: lab", "    algorithm: ecdsap256sha256", "    nsec3: off", "template:", "  - id: default",
             f'    storage: "{dir_}/zones"', '    file: "%s.zone"', "    zonefile-sync: -1",
             "    journal-content: none", "zone:"]  # fmt: skip
    for zone in zones:
        lines.append(f"  - domain: {zone}")
        if zone in signed:
            lines += ["    dnssec-signing: on", "    dnssec-policy: lab"]
    return "\n".join(lines) + "\n"


def unbound_conf(dir_: Path, port: int, knot_port: int, zones: list[str], blackhole_port: int) -> str:
    lines = ["server:", "    interface: 127.0.0.1", f"    port: {port}", "    do-ip6: no", '    username: ""',
             '    chroot: ""', f'    directory: "{dir_}"', f'    pidfile: "{dir_}/unbound.pid"',
             f'    logfile: "{dir_}/unbound.log"', "    use-syslog: no", "    verbosity: 1", "    num-threads: 1",
             "    do-not-query-localhost: no", f'    trust-anchor-file: "{dir_}/anchor.key"',
             '    module-config: "validator iterator"', "    qname-minimisation: no", "    so-reuseport: no",
             "    outgoing-range: 64", "    msg-cache-size: 4m", "    rrset-cache-size: 4m", "    cache-max-ttl: 5",
             "    cache-max-negative-ttl: 5", '    local-zone: "test." nodefault',
             '    local-zone: "127.in-addr.arpa." nodefault', "    val-log-level: 1", "remote-control:",
             "    control-enable: no"]  # fmt: skip
    for zone in [*zones, "slowbl.test"]:
        target = f"127.0.0.1@{blackhole_port}" if zone == "slowbl.test" else f"127.0.0.1@{knot_port}"
        lines += ["stub-zone:", f'    name: "{zone}"', f"    stub-addr: {target}"]
    return "\n".join(lines) + "\n"


def dnskeys(port: int, zone: str, timeout: float = 10.0) -> list[str]:
    """The zone's DNSKEY RRset from knot, as zone-file lines (waits for the signer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = dns.query.udp(dns.message.make_query(zone, dns.rdatatype.DNSKEY), "127.0.0.1", port=port,
                                   timeout=1.0)  # fmt: skip
            keys = [rrset for rrset in answer.answer if rrset.rdtype == dns.rdatatype.DNSKEY]
            if keys:
                return [f"{zone}. 60 IN DNSKEY {rdata.to_text()}" for rdata in keys[0]]
        except (OSError, dns.exception.Timeout):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"knotd did not serve a DNSKEY for {zone} within {timeout:g}s")
        time.sleep(0.2)


def wait_answer(port: int, name: str, rdtype: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=1.0)
            if answer.answer:
                return
        except (OSError, dns.exception.Timeout):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer for {name} {rdtype} on port {port} within {timeout:g}s")


class Blackhole:
    """A UDP socket that takes queries and never answers (a dead blocklist's server)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", port))  # TCP too: a refused TCP retry would answer fast

    def close(self) -> None:
        self.sock.close()
        self.tcp.close()


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
