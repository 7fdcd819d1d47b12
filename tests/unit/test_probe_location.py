"""Probes from several locations: the `location` setting (config, environment, validation), the label on every
probe family, the location signed into the tag and Message-ID, and the start jitter."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from mailpulse import parse_config
from mailpulse.exporter.configtools import ConfigError
from mailpulse.probes.config import LOCATION_ENV, ProbeConfig
from mailpulse.probes.feature import Probes
from mailpulse.probes.message import build, make_tag, message_id, new_token, parse_tag, tokens_in
from mailpulse.probes.metrics import FAMILIES, ProbeMetrics
from mailpulse.probes.outcome import ProbeResult
from mailpulse.probes.service import first_delays
from tests.helpers import MINIMAL_PROBES

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def section(tmp_path: Path) -> dict[str, Any]:
    secret = tmp_path / "secret"
    secret.write_text("0123456789abcdef0123456789abcdef\n")
    secret.chmod(0o600)
    return {"probes": {"secret_file": str(secret)}}


def location_of(data: dict[str, Any]) -> str:
    config = parse_config(data).section(Probes())
    assert config is not None
    return config.location


def test_location_from_config_and_environment(section: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Default `default`; `probes.location` sets it; MAILPULSE_PROBE_LOCATION overrides the file."""
    monkeypatch.delenv(LOCATION_ENV, raising=False)
    assert "default" == location_of(section)
    section["probes"]["location"] = "fra1"
    assert "fra1" == location_of(section)
    monkeypatch.setenv(LOCATION_ENV, "home-dsl")
    assert "home-dsl" == location_of(section)


@pytest.mark.parametrize("bad", ["", "Fra", "fra_1", "-fra", "a" * 33, "fra 1", "frà"])
def test_a_bad_location_is_named(section: dict[str, Any], monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    """A location that is not a short lowercase token is refused with its key, in the file or the environment."""
    monkeypatch.delenv(LOCATION_ENV, raising=False)
    section["probes"]["location"] = bad
    with pytest.raises(ConfigError) as exc:
        parse_config(section)
    assert any(p.startswith("probes.location: ") and "is not a location" in p for p in exc.value.problems)
    if bad:  # an empty variable means "not set"
        section["probes"]["location"] = "ok"
        monkeypatch.setenv(LOCATION_ENV, bad)
        with pytest.raises(ConfigError) as exc:
            parse_config(section)
        assert any(LOCATION_ENV in p and p.startswith("probes.location: ") for p in exc.value.problems)


class _Collector(Collector):
    def __init__(self, metrics: ProbeMetrics) -> None:
        self.metrics = metrics

    def collect(self):  # type: ignore[no-untyped-def]
        return self.metrics.collect()


def test_every_probe_family_carries_the_location() -> None:
    """Each family declares `location` last, and every exported sample has the configured value, also after
    a reload to another location."""
    assert all(fam.labels[-1] == "location" for fam in FAMILIES)
    metrics = ProbeMetrics(replace(MINIMAL_PROBES, location="fra1"), lock=threading.Lock(), mailboxes=["t"])
    metrics.record(ProbeResult("p", "r", "t", finished_at=5.0).fail("send", "connect", "refused"))
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(metrics))
    samples = [s for fam in reg.collect() for s in fam.samples]
    assert {s.name.removesuffix("_bucket") for s in samples} >= {"mailpulse_probe_info", "mailpulse_probe_mailbox_up"}
    assert {"fra1"} == {s.labels["location"] for s in samples}
    info = reg.get_sample_value("mailpulse_probe_info", {"probe": "p", "route": "r", "target": "t",
                                                         "target_kind": "imap", "provider": "dovecot",
                                                         "location": "fra1"})  # fmt: skip
    assert 1.0 == info
    metrics.reconfigure(replace(MINIMAL_PROBES, location="ams1"), ["t"])
    assert 1.0 == reg.get_sample_value("mailpulse_probe_runs_total", {"probe": "p", "location": "ams1"})


def test_the_tag_is_signed_with_its_location() -> None:
    """A tag says its location; changing the location breaks the signature; a tag of an earlier version
    (no loc=) still verifies and belongs to the default location."""
    token = new_token()
    tag = make_tag(KEY, token, "p", 1000, "fra1")
    assert "loc=fra1" in tag
    parsed = parse_tag(tag, KEY)
    assert parsed is not None
    assert ("fra1", token) == (parsed.location, parsed.token)
    assert parse_tag(tag.replace("loc=fra1", "loc=ams1"), KEY) is None
    legacy = tag.replace(" loc=fra1;", "")  # the same fields without loc, signed the old way below
    assert parse_tag(legacy, KEY) is None
    from mailpulse.probes.message import _tag_mac  # the pre-location signature, as an old prober made it

    old = f"v=1; id={token}; probe=p; ts=1000; sig={_tag_mac(KEY, token, 'p', '1000', None)}"
    parsed_old = parse_tag(old, KEY)
    assert parsed_old is not None
    assert "default" == parsed_old.location


def test_message_ids_are_ours_only_in_our_location() -> None:
    """A quoted Message-ID (an autoresponder's report) counts for the location that sent it, not another."""
    token = new_token()
    mid = message_id(KEY, token, "example.test", "fra1")
    assert mid.startswith("<mp.fra1.")
    text = f"In-Reply-To: {mid}"
    assert [token] == tokens_in(text, KEY, "fra1")
    assert [] == tokens_in(text, KEY, "ams1")
    assert [] == tokens_in(text.replace("fra1", "ams1"), KEY, "ams1")  # the MAC covers the location
    probe = build(key=KEY, probe="p", mail_from="a@example.test", rcpt="b@example.test", location="ams1")
    assert b"loc=ams1" in probe.data
    assert [probe.token] == tokens_in(probe.message_id, KEY, "ams1")


def test_first_runs_are_spread_over_the_start_jitter() -> None:
    """Under a seed the delays are reproducible; each lies in [1 s, 1 s + start_jitter], capped by the probe's
    interval; 40 probes are spread over the window rather than bunched."""
    probes = [ProbeConfig(f"p{i}", "r", "t", 300.0, 0.0, 60.0, 600.0) for i in range(40)]
    probes.append(ProbeConfig("fast", "r", "t", 5.0, 0.0, 4.0, 600.0))
    first = first_delays(probes, 60.0, random.Random(7))
    assert first == first_delays(probes, 60.0, random.Random(7))
    assert first != first_delays(probes, 60.0, random.Random(8))
    assert all(1.0 <= d <= 61.0 for d in first.values())
    assert 1.0 <= first["fast"] <= 6.0
    slow = sorted(v for k, v in first.items() if k != "fast")
    assert slow[-1] - slow[0] > 40  # spread over most of the minute
    assert {1.0} == set(first_delays(probes, 0.0, random.Random(7)).values())
