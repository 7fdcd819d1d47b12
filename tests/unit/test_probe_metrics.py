"""Probe metrics: label sets exist from the start, outcomes update the right series, state survives a
restart; the registry hands arrivals to runs and late arrivals to the late path; latency is bounded by
INTERNALDATE and detection time."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from mailpulse.exporter.metrics.family import families_by_name
from mailpulse.probes import state
from mailpulse.probes.config import ProbesConfig
from mailpulse.probes.metrics import FAMILIES, ProbeMetrics
from mailpulse.probes.outcome import ProbeResult
from mailpulse.probes.registry import Found, Registry
from mailpulse.probes.runner import arrival_latency
from tests.helpers import MINIMAL_PROBES

CONFIG = MINIMAL_PROBES


class _Collector(Collector):
    def __init__(self, metrics: ProbeMetrics) -> None:
        self.metrics = metrics

    def collect(self):  # type: ignore[no-untyped-def]
        return self.metrics.collect()


class _Registry(CollectorRegistry):
    """Samples of this prober's location unless a test names another (every probe family has the label)."""

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return super().get_sample_value(name, {"location": "default", **(labels or {})})


def registry_of(metrics: ProbeMetrics) -> CollectorRegistry:
    reg = _Registry(auto_describe=False)
    reg.register(_Collector(metrics))
    return reg


def test_families_are_unique_and_prefixed() -> None:
    """Every family is declared once, named mailpulse_probe_*."""
    table = families_by_name(FAMILIES)
    assert all(name.startswith("mailpulse_probe_") for name in table)


def test_label_sets_exist_before_the_first_run() -> None:
    """success, runs, every failure stage/reason, placements and mailbox_up are exported as 0 at start."""
    reg = registry_of(ProbeMetrics(CONFIG, mailboxes=["t"]))
    assert 0.0 == reg.get_sample_value("mailpulse_probe_success", {"probe": "p"})
    assert 0.0 == reg.get_sample_value("mailpulse_probe_runs_total", {"probe": "p"})
    assert 0.0 == reg.get_sample_value("mailpulse_probe_failures_total",
                                       {"probe": "p", "stage": "send", "reason": "auth"})  # fmt: skip
    assert 0.0 == reg.get_sample_value("mailpulse_probe_failures_total",
                                       {"probe": "p", "stage": "deliver", "reason": "lost"})  # fmt: skip
    assert 0.0 == reg.get_sample_value("mailpulse_probe_placements_total", {"probe": "p", "folder": "junk"})
    assert 0.0 == reg.get_sample_value("mailpulse_probe_mailbox_up", {"target": "t"})
    assert 0.0 == reg.get_sample_value("mailpulse_probe_delivery_latency_seconds_count", {"probe": "p"})
    assert 1.0 == reg.get_sample_value(
        "mailpulse_probe_info",
        {"probe": "p", "route": "r", "target": "t", "target_kind": "imap", "provider": "dovecot"},
    )


def delivered(**kw: object) -> ProbeResult:
    base = {
        "outcome": "delivered",
        "latency_seconds": 3.2,
        "folder": "junk",
        "dkim": "pass",
        "spf": "softfail",
        "dmarc": "pass",
        "dkim_own": "pass",
        "spam_score": 12.0,
        "spam_engine": "rspamd",
        "tls_version": "TLSv1.3",
        "accepted_at": 100.0,
        "send_seconds": 0.2,
        "finished_at": 104.0,
    }
    base.update(kw)
    return ProbeResult("p", "r", "t", **base)  # type: ignore[arg-type]


def test_outcomes_update_their_series() -> None:
    """A failure then a delivery: runs 2, one failure with its reason, success back to 1, consecutive 0,
    latency observed, placement/auth/own-DKIM/spam/TLS recorded."""
    metrics = ProbeMetrics(CONFIG, mailboxes=["t"])
    reg = registry_of(metrics)
    metrics.record(ProbeResult("p", "r", "t", finished_at=50.0).fail("send", "tls", "untrusted"))
    assert 1.0 == reg.get_sample_value("mailpulse_probe_consecutive_failures", {"probe": "p"})
    metrics.record(delivered())
    value = reg.get_sample_value
    assert 2.0 == value("mailpulse_probe_runs_total", {"probe": "p"})
    assert 1.0 == value("mailpulse_probe_failures_total", {"probe": "p", "stage": "send", "reason": "tls"})
    assert (1.0, 104.0, 104.0, 0.0) == (value("mailpulse_probe_success", {"probe": "p"}),
                                        value("mailpulse_probe_last_run_timestamp_seconds", {"probe": "p"}),
                                        value("mailpulse_probe_last_success_timestamp_seconds", {"probe": "p"}),
                                        value("mailpulse_probe_consecutive_failures", {"probe": "p"}))  # fmt: skip
    assert 1.0 == value("mailpulse_probe_delivery_latency_seconds_bucket", {"probe": "p", "le": "5.0"})
    assert 0.0 == value("mailpulse_probe_delivery_latency_seconds_bucket", {"probe": "p", "le": "2.0"})
    assert 1.0 == value("mailpulse_probe_placements_total", {"probe": "p", "folder": "junk"})
    assert 1.0 == value("mailpulse_probe_last_placement", {"probe": "p", "folder": "junk"})
    assert 1.0 == value("mailpulse_probe_auth_results_total", {"probe": "p", "method": "spf", "result": "softfail"})
    assert 1.0 == value("mailpulse_probe_last_auth_result", {"probe": "p", "method": "spf", "result": "softfail"})
    assert 1.0 == value("mailpulse_probe_dkim_verify_total", {"probe": "p", "result": "pass"})
    assert 12.0 == value("mailpulse_probe_spam_score", {"probe": "p", "engine": "rspamd"})
    assert 1.0 == value("mailpulse_probe_tls_version_info", {"probe": "p", "protocol": "TLSv1.3"})
    metrics.record(delivered(spf="pass", folder="inbox", spam_score=None))
    assert 0.0 == value("mailpulse_probe_last_auth_result", {"probe": "p", "method": "spf", "result": "softfail"})
    assert 0.0 == value("mailpulse_probe_last_placement", {"probe": "p", "folder": "junk"})
    assert value("mailpulse_probe_spam_score", {"probe": "p", "engine": "rspamd"}) is None


def test_unknown_reason_becomes_internal_error() -> None:
    """A reason outside the enum can never create a new series."""
    metrics = ProbeMetrics(CONFIG)
    metrics.record(ProbeResult("p", "r", "t").fail("send", "something-new", "?"))
    reg = registry_of(metrics)
    assert 1.0 == reg.get_sample_value("mailpulse_probe_failures_total",
                                       {"probe": "p", "stage": "internal", "reason": "error"})  # fmt: skip


def test_late_arrival_counts_but_is_not_a_run() -> None:
    """A late arrival increments late_arrivals and observes latency, not runs or success."""
    metrics = ProbeMetrics(CONFIG)
    metrics.late_arrival(delivered(outcome="delivered_late", latency_seconds=700.0))
    reg = registry_of(metrics)
    assert (1.0, 0.0, 0.0) == (reg.get_sample_value("mailpulse_probe_late_arrivals_total", {"probe": "p"}),
                               reg.get_sample_value("mailpulse_probe_runs_total", {"probe": "p"}),
                               reg.get_sample_value("mailpulse_probe_success", {"probe": "p"}))  # fmt: skip
    assert 1.0 == reg.get_sample_value("mailpulse_probe_delivery_latency_seconds_count", {"probe": "p"})


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    """success, timestamps, consecutive failures and in-flight tokens are written and read back."""
    metrics = ProbeMetrics(CONFIG)
    metrics.record(delivered())
    registry = Registry()
    pending = registry.expect("a" * 26, "p", "t", "imap", 600.0)
    pending.accepted_at = 1000.0
    path = str(tmp_path / "state" / "probes.json")
    state.save(path, metrics.dump(), registry.snapshot())
    assert 0o600 == (Path(path).stat().st_mode & 0o777)
    fresh = ProbeMetrics(CONFIG)
    data = state.load(path)
    fresh.restore(data["probes"])
    reg = registry_of(fresh)
    assert (1.0, 104.0) == (
        reg.get_sample_value("mailpulse_probe_success", {"probe": "p"}),
        reg.get_sample_value("mailpulse_probe_last_success_timestamp_seconds", {"probe": "p"}),
    )
    assert ["a" * 26] == [e["token"] for e in state.pending_entries(data)]
    (tmp_path / "bad.json").write_text("{not json")
    assert {} == state.load(str(tmp_path / "bad.json"))


def test_exposition_is_valid_text() -> None:
    """The whole family set renders as Prometheus text (HELP, TYPE, samples) without errors."""
    metrics = ProbeMetrics(CONFIG, mailboxes=["t"], lock=threading.Lock())
    metrics.record(delivered())
    text = generate_latest(registry_of(metrics)).decode()
    assert "# TYPE mailpulse_probe_delivery_latency_seconds histogram" in text
    assert 'mailpulse_probe_delivery_latency_seconds_bucket{le="3600.0",location="default",probe="p"} 1.0' in text


def found(internaldate: float | None, detected: float) -> Found:
    return Found("t" * 26, "INBOX", "inbox", 1, internaldate, detected, b"", None)


def test_latency_uses_the_tighter_bound() -> None:
    """IDLE: detection (ms after delivery) wins; polling: INTERNALDATE+1 caps the polling delay;
    an INTERNALDATE before acceptance is clock skew and ignored; never negative."""
    assert 0.25 == round(arrival_latency(found(100.0, 100.25), accepted_at=100.0), 3)
    assert 1.5 == round(arrival_latency(found(100.0, 109.0), accepted_at=99.5), 3)
    assert 9.0 == round(arrival_latency(found(50.0, 109.0), accepted_at=100.0), 3)
    assert 0.0 == arrival_latency(found(None, 99.0), accepted_at=100.0)


async def test_registry_in_time_late_and_expiry() -> None:
    """An arrival before the deadline resolves the run; after mark_late it goes to on_late; late entries
    are forgotten after the late window."""
    clock = [1000.0]
    late: list[str] = []
    registry = Registry(on_late=lambda p, f: late.append(p.token), now=lambda: clock[0])
    a = registry.expect("a" * 26, "p", "t", "imap", 60.0)
    registry.resolve(Found("a" * 26, "INBOX", "inbox", 1, None, 1.0, b"", None))
    assert a.future.done()
    b = registry.expect("b" * 26, "p", "t", "imap", 60.0)
    b.accepted_at = 1000.0
    registry.mark_late("b" * 26)
    registry.resolve(Found("b" * 26, "INBOX", "inbox", 2, None, 1.0, b"", None))
    assert ["b" * 26] == late
    assert registry.get("b" * 26) is None
    c = registry.expect("c" * 26, "p", "t", "imap", 60.0)
    c.accepted_at = 1000.0
    registry.mark_late("c" * 26)
    clock[0] = 1061.0
    assert ["c" * 26] == [p.token for p in registry.expire()]
    await asyncio.sleep(0)


def test_reload_keeps_counters_drops_removed_probes() -> None:
    """The probes feature configured again (SIGHUP): runs of a kept probe go on, a removed
    probe's series are gone, a new probe starts at 0."""
    import dataclasses

    from mailpulse.exporter.feature import Context
    from mailpulse.probes.feature import Probes
    from mailpulse.probes.service import ProbeService

    feature = Probes()
    context = Context(threading.Lock(), "/nonexistent-mailpulse-state")

    def make_probe_service(config: ProbesConfig) -> ProbeService:
        feature.configure(config, context)
        assert feature.service is not None
        return feature.service

    first = make_probe_service(CONFIG)
    first.metrics.record(delivered())
    renamed = dataclasses.replace(CONFIG.probes[0], name="q")
    second = make_probe_service(dataclasses.replace(CONFIG, probes=(CONFIG.probes[0], renamed)))
    assert second.metrics is first.metrics
    reg = registry_of(second.metrics)
    assert 1.0 == reg.get_sample_value("mailpulse_probe_runs_total", {"probe": "p"})
    assert 0.0 == reg.get_sample_value("mailpulse_probe_runs_total", {"probe": "q"})
    third = make_probe_service(dataclasses.replace(CONFIG, probes=(renamed,)))
    reg = registry_of(third.metrics)
    assert reg.get_sample_value("mailpulse_probe_runs_total", {"probe": "p"}) is None
    assert reg.get_sample_value("mailpulse_probe_success", {"probe": "p"}) is None
    assert 0.0 == reg.get_sample_value("mailpulse_probe_mailbox_up", {"target": "t"})
