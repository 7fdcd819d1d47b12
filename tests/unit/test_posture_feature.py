"""The posture feature's config, metrics and scheduling without the lab: bad configs name their keys,
results become bounded families, removed targets leave /metrics, a resolver that never answers gives
dns_timeout verdicts (a real UDP socket that reads and never answers) and never stops the scheduler."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from mailpulse.exporter.config import parse_config
from mailpulse.exporter.configtools import ConfigError
from mailpulse.exporter.features.posture.config import PostureConfig
from mailpulse.exporter.features.posture.feature import Posture
from mailpulse.exporter.features.posture.metrics import PostureMetrics
from mailpulse.exporter.features.posture.result import CheckResult, Target
from mailpulse.exporter.features.posture.service import PostureService, run_once


def posture(section: dict[str, Any]) -> PostureConfig:
    feature = Posture()
    parsed = parse_config({"posture": section}, [feature]).section(feature)
    assert parsed is not None
    return parsed


def test_bad_config_names_each_key() -> None:
    """Every problem is reported at once, at its key path."""
    with pytest.raises(ConfigError) as info:
        posture({
            "resolvers": ["dns.example"], "concurrency": 0,
            "domains": [{"name": "Not A Domain"}, {"name": "example.org", "senders": ["nobody"], "mx": ["bad host"]}],
            "senders": [{"name": "out1", "ip": "192.0.2.1", "host": "out.example.org"}, {"name": "out2", "ip": "x"}],
            "dnsbl": {"zones": ["sorbs"], "custom": [{"name": "mine", "zone": "bl.example.net", "kind": "asn",
                                                      "listed": {"not-an-ip": "x"}}]},
            "checks": {"spf": {"interval": "soon"}, "bogus": {}},
        })  # fmt: skip
    text = "\n".join(info.value.problems)
    for where in ("posture.resolvers[0]", "posture.concurrency", "posture.domains[0].name", "posture.domains[1].senders",
                  "posture.domains[1].mx[0]", "posture.senders[0].ip", "posture.senders[1].ip",
                  "posture.dnsbl.zones[0]", "posture.dnsbl.custom[0].kind", "posture.dnsbl.custom[0].listed.not-an-ip",
                  "posture.checks.spf.interval", "posture.checks.bogus"):  # fmt: skip
        assert where in text, (where, text)


def _result(check: str, ok: bool, reason: str, **kw: Any) -> CheckResult:
    target = Target(check, kw.pop("domain", "example.org"), kw.pop("item", ""), kw.pop("zone", ""))
    return CheckResult(target, ok, reason, **kw)


class _Wrap(Collector):
    def __init__(self, metrics: PostureMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self.metrics.collect()


def test_results_become_families_and_removed_targets_leave() -> None:
    """Each result sets its target's series; a reload that drops a target drops its series but keeps the
    counters; blocklist errors are counted by class, listings are not errors."""
    metrics = PostureMetrics(threading.Lock())
    registry = CollectorRegistry()
    registry.register(_Wrap(metrics))
    metrics.record(_result("spf", True, "ok", values={"lookups": 4.0, "void_lookups": 1.0},
                           infos={"sender:out1": "pass"}))  # fmt: skip
    metrics.record(_result("dkim", False, "key_mismatch", item="s1", values={"bits": 2048.0, "testing": 0.0,
                           "key_match": 0.0}, infos={"key_type": "rsa"}))  # fmt: skip
    metrics.record(_result("dnsbl", False, "zone_error", domain="", item="out1", zone="spamhaus-zen",
                           infos={"error_class": "public_resolver"}))  # fmt: skip
    metrics.record(_result("dnsbl", False, "listed", domain="", item="out1", zone="spamcop", values={"listed": 1.0}))
    get = registry.get_sample_value
    assert 4.0 == get("mailpulse_posture_spf_dns_lookups", {"domain": "example.org"})
    assert 1.0 == get("mailpulse_posture_spf_sender_result", {"domain": "example.org", "ip": "out1", "result": "pass"})
    assert 0.0 == get("mailpulse_posture_check_ok", {"check": "dkim", "domain": "example.org", "item": "s1", "zone": "",
                                                      "reason": "key_mismatch"})  # fmt: skip
    assert 0.0 == get("mailpulse_posture_dkim_key_match", {"domain": "example.org", "selector": "s1"})
    assert 1.0 == get("mailpulse_posture_dnsbl_errors_total", {"zone": "spamhaus-zen", "class": "public_resolver"})
    assert get("mailpulse_posture_dnsbl_errors_total", {"zone": "spamcop", "class": "listed"}) is None
    assert 1.0 == get("mailpulse_posture_dnsbl_listed", {"zone": "spamcop", "domain": "", "ip": "out1"})
    metrics.keep_only([Target("spf", "example.org")])
    text = generate_latest(registry).decode()
    assert "mailpulse_posture_dkim_key_match{" not in text
    assert 1.0 == get("mailpulse_posture_check_failures_total", {"check": "dkim", "reason": "key_mismatch"})


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A UDP (and TCP) port on 127.0.0.1 that takes queries and never answers."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", port))
    yield port
    udp.close()
    tcp.close()


def _silent_config(port: int, **extra: Any) -> PostureConfig:
    return posture({"resolver_port": port, "dns_timeout": "0.2s", "domains": [{"name": "example.org"}],
                    "senders": [{"name": "out1", "ip": "192.0.2.1"}], "dnsbl": {"zones": ["spamhaus-zen"]},
                    **extra})  # fmt: skip


def test_silent_resolver_gives_dns_timeout_verdicts(blackhole: int) -> None:
    """Every check ends with a no-verdict reason within its limits; nothing raises."""
    results = asyncio.run(run_once(_silent_config(blackhole)))
    assert {"spf", "dmarc", "mta_sts", "tlsrpt", "mx_tls", "rdns", "dnsbl"} == {r.target.check for r in results}
    for r in results:
        assert ("dns_timeout", False) == (r.reason, r.up), r


def test_the_daemon_service_keeps_running_and_counting(blackhole: int) -> None:
    """Scheduled runs with a 1 s interval go on while every run fails; stop ends the service promptly."""
    config = _silent_config(blackhole, checks={c: {"interval": "1s", "timeout": "0.5s"} for c in ("spf", "dnsbl")})
    lock = threading.Lock()
    service = PostureService(config, lock)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        await asyncio.sleep(3.5)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(run())
    runs = service.metrics.runs
    assert runs.get(("spf", "error"), 0) >= 2
    assert runs.get(("dnsbl", "error"), 0) >= 2
    assert service.health().ok


class _CountingDns:
    """A tiny UDP DNS server on 127.0.0.1 that answers every A query with 127.0.0.2 (names starting with
    ``silent`` get no answer) and counts the queries it received, by name."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.counts: dict[str, int] = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import dns.message
        import dns.rrset

        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            name = query.question[0].name.to_text()
            self.counts[name] = self.counts.get(name, 0) + 1
            if name.startswith("silent"):
                continue
            response = dns.message.make_response(query)
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.0.0.2"))
            self.sock.sendto(response.to_wire(), peer)


def test_answers_are_shared_briefly_and_failures_not_at_all() -> None:
    """Fifty checks asking the same name at once cost one query; after the window it is asked again; a
    query that timed out is not remembered (the next check asks again)."""
    from mailpulse.exporter.features.posture.dnsq import DnsError, Resolver

    server = _CountingDns()
    resolver = Resolver(("127.0.0.1",), server.port, timeout=0.3, cache_seconds=0.5)

    async def run() -> None:
        answers = await asyncio.gather(*(resolver.query("shared.example", "A") for _ in range(50)))
        assert {"127.0.0.2"} == {str(a.records[0].address) for a in answers}  # type: ignore[attr-defined]
        assert 1 == server.counts["shared.example."]
        await asyncio.sleep(0.6)
        await resolver.query("shared.example", "A")
        assert 2 == server.counts["shared.example."]
        for _ in range(2):
            with pytest.raises(DnsError):
                await resolver.query("silent.example", "A")
        assert 2 == server.counts["silent.example."]

    asyncio.run(run())
    server.sock.close()
