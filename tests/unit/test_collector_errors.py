"""A part that fails while a scrape builds its families (a bug) is counted, logged once a minute with its
traceback, and left out of that scrape; the other parts are still exported."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import Metric
from structlog.testing import capture_logs

from mailpulse.exporter.metrics.collector import MailpulseCollector, SelfMetrics, make_registry
from mailpulse.exporter.metrics.family import Family, Kind

GOOD = Family("mailpulse_test_good", "A family that always works.", Kind.GAUGE)
HALF = Family("mailpulse_test_half", "Yielded before the failure.", Kind.GAUGE)


class Good:
    families = (GOOD,)

    def collect(self) -> Iterator[Metric]:
        yield GOOD.from_values({(): 1.0})


class Broken:
    families = (HALF,)

    def collect(self) -> Iterator[Metric]:
        yield HALF.from_values({(): 1.0})
        raise ZeroDivisionError("planted")


def test_a_failing_part_is_counted_logged_once_a_minute_and_left_out() -> None:
    clock = [1000.0]
    collector = MailpulseCollector(threading.Lock(), SelfMetrics("test"), [Broken(), Good()], now=lambda: clock[0])
    registry = make_registry(collector, process_metrics=False)
    with capture_logs() as logs:
        for _ in range(3):
            assert 1.0 == registry.get_sample_value("mailpulse_test_good")
        # all of the part or nothing: what it yielded before failing is not exported
        assert registry.get_sample_value("mailpulse_test_half") is None
        clock[0] += 61
        registry.get_sample_value("mailpulse_test_good")
    # every get_sample_value is a whole scrape: six so far, this one included
    assert 6.0 == registry.get_sample_value("mailpulse_collect_errors_total", {"part": "Broken"})
    errors = [e for e in logs if e["log_level"] == "error"]
    assert 2 == len(errors)  # the first failure, then one more after a minute
    assert "Broken" == errors[0]["part"]
    assert errors[0]["exc_info"] is True
