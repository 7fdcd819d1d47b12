"""The de-duplication memory (persisted, bounded, expiring) and the ``reports:`` section's checks."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mailpulse import parse_config
from mailpulse.exporter.configtools import ConfigError
from mailpulse.exporter.feature import Context
from mailpulse.probes.reports.dedup import SeenReports, report_key
from mailpulse.probes.reports.feature import Reports

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_memory_survives_a_restart_and_expires(tmp_path: Path) -> None:
    clock = Clock()
    path = str(tmp_path / "seen.json")
    seen = SeenReports(ttl=86400, max_entries=10, path=path, now=clock)
    key = report_key("dmarc", "Google.com", "123")
    seen.add(key)
    seen.save()
    again = SeenReports(ttl=86400, max_entries=10, path=path, now=clock)
    assert again.load() is None
    assert again.seen(key)
    assert again.seen(report_key("dmarc", "google.com ", "123"))  # reporter case and spaces do not matter
    clock.t += 86401
    assert not again.seen(key)
    later = SeenReports(ttl=86400, max_entries=10, path=path, now=clock)
    assert later.load() is None
    assert 0 == len(later)


def test_memory_is_capped_oldest_first(tmp_path: Path) -> None:
    seen = SeenReports(ttl=1e9, max_entries=3, path=None)
    for i in range(5):
        seen.add(str(i))
    assert [False, False, True, True, True] == [seen.seen(str(i)) for i in range(5)]


def test_a_corrupt_memory_is_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "seen.json"
    path.write_text("{not json")
    seen = SeenReports(ttl=1e9, max_entries=3, path=str(path))
    assert seen.load() is not None
    seen.add("x")
    seen.save()
    assert SeenReports(ttl=1e9, max_entries=3, path=str(path)).load() is None


def test_the_feature_counts_a_report_once_across_restarts(tmp_path: Path) -> None:
    """Two processes' worth of the feature (a restart) reading the same mail: the second adds only a duplicate."""
    data = (FIXTURES / "own/dmarc-octet-stream.eml").read_bytes()
    config = parse_config({"state_dir": str(tmp_path), "reports": {"domains": ["example.com"]}})
    for run in range(2):
        feature = Reports()
        lock = threading.Lock()
        section = config.section(feature)
        feature.configure(section, Context(lock, str(tmp_path)))
        from mailpulse.probes.reports.feature import limits_of
        from mailpulse.probes.reports.ingest import Ingestor

        assert feature.seen is not None
        ingestor = Ingestor(feature.metrics, feature.seen, lock, limits_of(section))  # type: ignore[arg-type]
        outcome = ingestor.ingest_message(data)
        assert ingestor.save()
        values = feature.metrics.store.values
        assert (1 - run, run) == (outcome.ingested, outcome.duplicates)
        assert (0 if run else 22) == sum(values["mailpulse_dmarc_messages_total"].values())
    assert os.path.exists(tmp_path / "reports-seen.json")


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"authorized_networks": ["192.0.2.0/33"]}, "reports.authorized_networks[0]: '192.0.2.0/33' is not an IP"),
        ({"reporters": [{"name": "google", "match": ["x"]}]}, "reports.reporters[0].name: 'google' is a built-in"),
        ({"reporters": [{"name": "acme"}]}, "reports.reporters[0].match: needs at least one substring"),
        ({"mailboxes": [{"name": "m", "host": "h", "tls": "none", "username": "u", "password": "p"}]},
         "reports.mailboxes[0].tls: must be one of implicit, starttls"),
        ({"mailboxes": [{"name": "m", "host": "h", "tls": "implicit", "username": "u", "password": "p",
                         "processed_folder": "INBOX"}]}, "reports.mailboxes[0].processed_folder: folder, processed"),
        ({"dedup_ttl": "1h"}, "reports.dedup_ttl"),
    ],
)  # fmt: skip
def test_bad_config_names_the_key(section: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"reports": section})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_a_new_series_is_exported_at_zero_first() -> None:
    """A report's counts show as 0 at first (Prometheus's increase() ignores a series' first sample), and with
    their value once new_series_delay has passed; later increments of a shown series show at once."""
    from mailpulse.parsers.reports import parse_file
    from mailpulse.probes.reports.config import ReportsConfig
    from mailpulse.probes.reports.metrics import ReportMetrics

    clock = Clock()
    metrics = ReportMetrics(now=clock)
    metrics.configure(ReportsConfig(new_series_delay=60.0))

    def messages() -> float:
        fam = next(f for f in metrics.collect() if f.name == "mailpulse_dmarc_messages")
        return sum(s.value for s in fam.samples if s.name.endswith("_total"))

    report = parse_file((FIXTURES / "own/dmarc-missing-sp-pct.xml").read_bytes(), clock.t)[0]
    metrics.count(report)
    assert 0 == messages()
    clock.t += 59
    assert 0 == messages()
    clock.t += 1
    assert 8 == messages()
    metrics.count(report)
    assert 16 == messages()


def test_every_emitted_label_value_is_declared() -> None:
    """Over every fixture (and a mutated copy of each), each label value is in its declared set: an enum
    value, a configured or catalogue name, `other`; never an IP, a report id or free text."""
    import random

    from mailpulse.parsers.reports import Rejected, parse_file
    from mailpulse.probes.reports.config import ReportsConfig
    from mailpulse.probes.reports.metrics import FAMILIES, LABEL_SETS, ReportMetrics

    metrics = ReportMetrics()
    metrics.configure(ReportsConfig(domains=("example.com",), reporters=(("acme", ("acme",)),)))
    rng = random.Random(7)
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file() or path.suffix == ".py":
            continue
        data = path.read_bytes()
        mutated = bytearray(data)
        for _ in range(5):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        for blob in (data, bytes(mutated)):
            for result in parse_file(blob, 1767225600.0):
                metrics.count(result, duplicate=False)
                assert isinstance(result, Rejected) or result.kind in ("dmarc", "tlsrpt", "arf")
    configured = {"reports.domains": {"example.com"}, "reports.reporters[].name": {"acme"}}
    for family in metrics.collect():
        declared = next(f for f in FAMILIES if f.name.removesuffix("_total") == family.name)
        for sample in family.samples:
            for label, value in sample.labels.items():
                spec = LABEL_SETS[(declared.name, label)]
                allowed = set(spec.values) | configured.get(spec.config, set())
                if spec.kind == "bounded":
                    allowed |= {"example.com"}
                assert value in allowed, (declared.name, label, value)


async def test_a_directory_read_again_after_a_restart_adds_nothing(tmp_path: Path) -> None:
    """The daemon's directory source counts new files once; the same directory after a restart (a fresh
    feature on the same state_dir) counts only duplicates, and a file added later counts."""
    import asyncio
    import shutil

    incoming = tmp_path / "incoming"
    shutil.copytree(FIXTURES / "own", incoming, ignore=shutil.ignore_patterns("bad-*"))
    config = parse_config({"state_dir": str(tmp_path), "reports": {
        "new_series_delay": "0s", "directories": [{"path": str(incoming), "interval": "1s"}]}})  # fmt: skip

    async def run_once(feature: Reports) -> dict[str, float]:
        services = feature.configure(config.section(feature), Context(threading.Lock(), str(tmp_path)))
        stop = asyncio.Event()
        task = asyncio.create_task(services[0].run(stop))
        while feature.directories[0].passes < 1:
            await asyncio.sleep(0.01)
        stop.set()
        await task
        values = feature.metrics.store.values
        return {
            name: sum(values[name].values())
            for name in (
                "mailpulse_reports_ingested_total",
                "mailpulse_reports_duplicates_total",
                "mailpulse_dmarc_messages_total",
            )
        }

    first = await run_once(Reports())
    assert first["mailpulse_reports_ingested_total"] > 10
    assert first["mailpulse_dmarc_messages_total"] > 0
    again = await run_once(Reports())
    assert 0 == again["mailpulse_reports_ingested_total"]
    assert 0 == again["mailpulse_dmarc_messages_total"]
    assert (
        first["mailpulse_reports_ingested_total"] + first["mailpulse_reports_duplicates_total"]
        == again["mailpulse_reports_duplicates_total"]
    )
    health = Reports().health()
    assert health is None
