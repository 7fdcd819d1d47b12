"""Message tracking on synthetic line sequences written for these tests (no real mail data).

Each test feeds lines through the real parser, pipeline and tracker (the Postfix-logs feature's format) and
checks the per-message outcome, the transit observation and the query API."""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.request
from pathlib import Path
from typing import Any

from mailpulse.exporter.features import scan_logs
from mailpulse.exporter.features.postfix import PostfixLogs, PostfixLogsConfig
from mailpulse.exporter.http import MetricsServer
from mailpulse.exporter.metrics.collector import MailpulseCollector, SelfMetrics, make_registry
from mailpulse.exporter.metrics.postfix import DELIVERIES, DELIVERY_FAILURES
from mailpulse.exporter.metrics.sources import SourceStats
from mailpulse.exporter.pipeline import LinePipeline
from mailpulse.exporter.tracking import state
from mailpulse.exporter.tracking.config import TrackingConfig
from mailpulse.parsers.postfix import PostfixParserConfig
from mailpulse.parsers.postfix.providers import ProviderTable

NOW = 1_700_000_000.0


def make(internal_relays: tuple[str, ...] = (), **tracking: Any) -> tuple[PostfixLogs, LinePipeline]:
    feature = PostfixLogs()
    cfg = PostfixLogsConfig(
        PostfixParserConfig(internal_relays=internal_relays), TrackingConfig(**{"link_grace": 0.0, **tracking})
    )
    (fmt,) = feature.formats(cfg)
    pipeline = LinePipeline(SourceStats("t"), [fmt], threading.Lock())
    return feature, pipeline


def feed(feature: PostfixLogs, pipeline: LinePipeline, text: str, flush: bool = True) -> None:
    pipeline.feed([line.strip() for line in text.strip().splitlines()])
    if flush:
        feature.tracking.tracker.flush()


def outcomes(feature: PostfixLogs) -> dict[tuple[str, ...], float]:
    return dict(feature.tracking.metrics.messages)


def transit_count(feature: PostfixLogs) -> int:
    return sum(sum(h.counts) for h in feature.tracking.metrics.transit.values())


SIMPLE = """
Nov 24 10:00:00 mx1 postfix/smtpd[1]: AAAA1: client=a.example[192.0.2.1]
Nov 24 10:00:00 mx1 postfix/cleanup[2]: AAAA1: message-id=<m1@example>
Nov 24 10:00:01 mx1 postfix/qmgr[3]: AAAA1: from=<a@example>, size=100, nrcpt=1 (queue active)
Nov 24 10:00:03 mx1 postfix/smtp[4]: AAAA1: to=<b@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.1]:25, delay=3, delays=0.1/0/1/1.9, dsn=2.0.0, status=sent (250 2.0.0 OK)
Nov 24 10:00:03 mx1 postfix/qmgr[3]: AAAA1: removed
"""


def test_one_message_one_outcome_one_observation() -> None:
    feature, pipeline = make()
    feed(feature, pipeline, SIMPLE)
    assert outcomes(feature) == {("delivered", "smtpd", "google"): 1}
    assert transit_count(feature) == 1
    (hist,) = feature.tracking.metrics.transit.values()
    assert hist.sum == 3.0
    tracker = feature.tracking.tracker
    msg = tracker.find_message_id("<m1@example>")
    assert msg is not None
    assert msg.qid == "AAAA1"
    assert msg.host == "mx1"
    steps = [(s.step, s.status, s.provider) for s in tracker.timeline(msg)]
    assert steps == [
        ("accepted", "", ""),
        ("cleanup", "", ""),
        ("queued", "", ""),
        ("delivery", "sent", "google"),
        ("removed", "", ""),
    ]
    assert tracker.view(msg).outcome == "delivered"


FILTER = """
Nov 24 10:00:00 mx1 postfix/submission/smtpd[1]: BBBB1: client=c.example[192.0.2.9], sasl_method=PLAIN, sasl_username=u
Nov 24 10:00:00 mx1 postfix/cleanup[2]: BBBB1: message-id=<m2@example>
Nov 24 10:00:00 mx1 postfix/qmgr[3]: BBBB1: from=<u@example>, size=100, nrcpt=1 (queue active)
Nov 24 10:00:01 mx1 postfix/10025/smtpd[5]: BBBB2: client=localhost[127.0.0.1]
Nov 24 10:00:01 mx1 postfix/cleanup[2]: BBBB2: message-id=<m2@example>
Nov 24 10:00:01 mx1 postfix/qmgr[3]: BBBB2: from=<u@example>, size=200, nrcpt=1 (queue active)
Nov 24 10:00:02 mx1 postfix/smtp[4]: BBBB2: to=<x@outlook.com>, relay=x-com.mail.protection.outlook.com[52.1.1.1]:25, delay=1, delays=0/0/0.5/0.5, dsn=4.7.0, status=deferred (host x-com.mail.protection.outlook.com[52.1.1.1] said: 451 4.7.500 Server busy)
Nov 24 10:00:02 mx1 postfix/smtp[6]: BBBB1: to=<x@outlook.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=2, delays=0/0/0/2, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as BBBB2)
Nov 24 10:00:02 mx1 postfix/qmgr[3]: BBBB1: removed
Nov 24 10:10:02 mx1 postfix/qmgr[3]: BBBB2: from=<u@example>, size=200, nrcpt=1 (queue active)
Nov 24 10:10:04 mx1 postfix/smtp[4]: BBBB2: to=<x@outlook.com>, relay=x-com.mail.protection.outlook.com[52.1.1.1]:25, delay=603, delays=600/0/1/2, dsn=2.0.0, status=sent (250 2.0.0 OK)
Nov 24 10:10:04 mx1 postfix/qmgr[3]: BBBB2: removed
"""


def test_content_filter_reinjection_is_one_message() -> None:
    feature, pipeline = make()
    feed(feature, pipeline, FILTER)
    # the re-injected copy (postfix/10025/smtpd) is not a second message
    assert outcomes(feature) == {("delivered", "submission", "microsoft"): 1}
    assert transit_count(feature) == 1
    (hist,) = feature.tracking.metrics.transit.values()
    assert hist.sum == 604.0
    assert feature.tracking.metrics.deferred_then_delivered == {("microsoft",): 1}
    assert feature.tracking.metrics.attempts[("delivered",)].sum == 2.0  # one deferral + the delivery
    tracker = feature.tracking.tracker
    child = tracker.find("mx1", "BBBB2")
    assert child is not None
    assert child.parent is not None
    assert child.parent.qid == "BBBB1"
    assert tracker.view(tracker.find("mx1", "BBBB1")).children == (("mx1", "BBBB2", "handoff"),)  # type: ignore[arg-type]
    kinds = [(s.queue_id, s.step, s.reason) for s in tracker.timeline(child)]
    assert ("BBBB2", "delivery", "rate_limited") in kinds or ("BBBB2", "delivery", "") in kinds
    assert kinds[0] == ("BBBB1", "accepted", "")


CENTRAL = """
Nov 24 10:00:00 submit postfix/submission/smtpd[1]: CCCC1: client=c.example[192.0.2.9], sasl_method=PLAIN, sasl_username=u
Nov 24 10:00:00 mx postfix/smtpd[1]: CCCC1: client=other.example[192.0.2.50]
Nov 24 10:00:00 submit postfix/cleanup[2]: CCCC1: message-id=<m3@example>
Nov 24 10:00:00 mx postfix/cleanup[2]: CCCC1: message-id=<other@example>
Nov 24 10:00:01 submit postfix/qmgr[3]: CCCC1: from=<u@example>, size=100, nrcpt=1 (queue active)
Nov 24 10:00:01 mx postfix/smtpd[1]: DDDD1: client=submit.lab[203.0.113.5]
Nov 24 10:00:01 mx postfix/cleanup[2]: DDDD1: message-id=<m3@example>
Nov 24 10:00:01 submit postfix/smtp[4]: CCCC1: to=<t@lab.example>, relay=mx.lab[203.0.113.6]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as DDDD1)
Nov 24 10:00:01 submit postfix/qmgr[3]: CCCC1: removed
Nov 24 10:00:02 mx postfix/lmtp[5]: DDDD1: to=<t@lab.example>, relay=mx.lab[private/dovecot-lmtp], delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Saved)
Nov 24 10:00:02 mx postfix/qmgr[3]: DDDD1: removed
Nov 24 10:00:05 mx postfix/local[6]: CCCC1: to=<root@mx>, relay=local, delay=5, delays=0/0/0/5, dsn=5.1.1, status=bounced (unknown user)
Nov 24 10:00:05 mx postfix/qmgr[3]: CCCC1: removed
"""


def test_central_syslog_hosts_and_hops() -> None:
    """Two hosts in one file, the same short queue ID on both, a hop linked through a configured relay."""
    feature, pipeline = make(internal_relays=("mx.lab",))
    feed(feature, pipeline, CENTRAL)
    assert outcomes(feature) == {("delivered", "submission", "local"): 1, ("bounced", "smtpd", "local"): 1}
    assert transit_count(feature) == 2
    tracker = feature.tracking.tracker
    hop = tracker.find("mx", "DDDD1")
    assert hop is not None
    assert hop.root().host == "submit"
    assert hop.root().qid == "CCCC1"
    hosts = [s.host for s in tracker.timeline(hop)]
    assert hosts[0] == "submit"
    assert hosts[-1] == "mx"


BOUNCE = """
Nov 24 10:00:00 mx1 postfix/pickup[1]: EEEE1: uid=0 from=<root>
Nov 24 10:00:00 mx1 postfix/cleanup[2]: EEEE1: message-id=<m4@example>
Nov 24 10:00:00 mx1 postfix/qmgr[3]: EEEE1: from=<root@mx1>, size=100, nrcpt=1 (queue active)
Nov 24 10:00:01 mx1 postfix/smtp[4]: EEEE1: to=<x@yahoo.com>, relay=mta5.am0.yahoodns.net[67.195.1.1]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host mta5.am0.yahoodns.net[67.195.1.1] said: 554 5.1.1 user unknown)
Nov 24 10:00:01 mx1 postfix/cleanup[2]: EEEE2: message-id=<b1@mx1>
Nov 24 10:00:01 mx1 postfix/bounce[5]: EEEE1: sender non-delivery notification: EEEE2
Nov 24 10:00:01 mx1 postfix/qmgr[3]: EEEE1: removed
Nov 24 10:00:01 mx1 postfix/qmgr[3]: EEEE2: from=<>, size=200, nrcpt=1 (queue active)
Nov 24 10:00:02 mx1 postfix/local[6]: EEEE2: to=<root@mx1>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)
Nov 24 10:00:02 mx1 postfix/qmgr[3]: EEEE2: removed
"""


def test_bounce_and_its_notification_child() -> None:
    feature, pipeline = make()
    feed(feature, pipeline, BOUNCE)
    assert outcomes(feature) == {("bounced", "pickup", "yahoo"): 1, ("delivered", "bounce", "local"): 1}
    tracker = feature.tracking.tracker
    parent = tracker.find("mx1", "EEEE1")
    assert parent is not None
    assert tracker.view(parent).children == (("mx1", "EEEE2", "notice"),)
    child = tracker.find("mx1", "EEEE2")
    assert child is not None
    assert child.parent is parent
    assert [s.step for s in tracker.timeline(parent, notices=True)].count("delivery") == 2


EXPIRE_DELETE = """
Nov 24 10:00:00 mx1 postfix/smtpd[1]: FFFF1: client=a[192.0.2.1]
Nov 24 10:00:00 mx1 postfix/qmgr[3]: FFFF1: from=<a@x>, size=100, nrcpt=1 (queue active)
Nov 24 10:00:01 mx1 postfix/smtp[4]: FFFF1: to=<b@comcast.net>, relay=mx1a1.comcast.net[96.1.1.1]:25, delay=1, delays=0/0/1/0, dsn=4.4.2, status=deferred (lost connection)
Nov 29 10:00:01 mx1 postfix/qmgr[3]: FFFF1: from=<a@x>, status=expired, returned to sender
Nov 29 10:00:01 mx1 postfix/qmgr[3]: FFFF1: removed
Nov 29 10:00:02 mx1 postfix/smtpd[1]: FFFF2: client=a[192.0.2.1]
Nov 29 10:00:02 mx1 postfix/qmgr[3]: FFFF2: from=<a@x>, size=100, nrcpt=1 (queue active)
Nov 29 10:00:09 mx1 postfix/postsuper[9]: FFFF2: removed
Nov 29 10:00:09 mx1 postfix/postsuper[9]: Deleted: 1 message
"""


def test_expiry_and_postsuper_delete() -> None:
    feature, pipeline = make()
    feed(feature, pipeline, EXPIRE_DELETE)
    assert outcomes(feature) == {("expired", "smtpd", "comcast"): 1, ("deleted", "smtpd", "none"): 1}
    assert transit_count(feature) == 2


def test_queue_id_reuse_after_removed_is_a_new_message() -> None:
    feature, pipeline = make()
    feed(feature, pipeline, SIMPLE)
    feed(feature, pipeline, SIMPLE.replace("10:00:0", "11:00:0").replace("m1@", "m9@"))
    assert outcomes(feature) == {("delivered", "smtpd", "google"): 2}
    # a queue ID that comes back before its "removed" was logged: the old one is given up on
    feature2, pipeline2 = make()
    feed(feature2, pipeline2, SIMPLE.splitlines()[1])
    feed(feature2, pipeline2, SIMPLE.replace("10:00:0", "11:00:0"))
    assert feature2.tracking.metrics.evicted == {("reused",): 1}
    assert outcomes(feature2) == {("delivered", "smtpd", "google"): 1}


def accepted(n: int, start: int = 0, day: int = 24) -> str:
    return "\n".join(
        f"Nov {day} 10:00:00 mx1 postfix/smtpd[1]: Q{i:08d}: client=a[192.0.2.1]" for i in range(start, start + n)
    )


def test_capacity_eviction() -> None:
    feature, pipeline = make(max_messages=1000)
    feed(feature, pipeline, accepted(1500))
    tracker = feature.tracking.tracker
    assert tracker.count <= 1000
    assert feature.tracking.metrics.evicted[("capacity",)] == 1500 - tracker.count
    assert tracker.find("mx1", "Q00001499") is not None
    assert tracker.find("mx1", "Q00000000") is None


def test_ttl_eviction() -> None:
    feature, pipeline = make(ttl=86400.0)
    feed(feature, pipeline, accepted(10))
    feed(feature, pipeline, accepted(1, 100, day=26))
    assert feature.tracking.metrics.evicted[("ttl",)] == 10
    assert feature.tracking.tracker.count == 1
    assert feature.tracking.metrics.inflight == 1


def test_restart_keeps_in_flight_messages(tmp_path: Path) -> None:
    lines = FILTER.strip().splitlines()
    feature, pipeline = make()
    feed(feature, pipeline, "\n".join(lines[:6]), flush=False)
    assert state.save(feature.tracking.tracker, str(tmp_path))
    # a new process: the state file, then the rest of the log
    feature2, pipeline2 = make()
    assert state.load(feature2.tracking.tracker, str(tmp_path)) == 2
    feed(feature2, pipeline2, "\n".join(lines[6:]))
    assert outcomes(feature2) == {("delivered", "submission", "microsoft"): 1}
    msg = feature2.tracking.tracker.find_message_id("m2@example")
    assert msg is not None
    assert feature2.tracking.tracker.timeline(msg)[0].step == "accepted"


def test_corrupt_state_is_counted_and_ignored(tmp_path: Path) -> None:
    for garbage in (
        "{not json",
        json.dumps(
            {"magic": "mailpulse-tracking", "version": 1, "codes": [], "messages": [[1]], "finished": [], "now": 0}
        ),
    ):
        (tmp_path / "tracking.json").write_text(garbage)
        feature, pipeline = make()
        assert state.load(feature.tracking.tracker, str(tmp_path)) == 0
        assert feature.tracking.metrics.errors == {("corrupt",): 1}
        feed(feature, pipeline, SIMPLE)  # and it works afterwards
        assert outcomes(feature) == {("delivered", "smtpd", "google"): 1}


def test_replayed_batch_is_not_counted_twice() -> None:
    """After kill -9 the last batch is read again (at-least-once): its lines change nothing."""
    feature, pipeline = make()
    feed(feature, pipeline, SIMPLE)
    feed(feature, pipeline, SIMPLE)
    assert outcomes(feature) == {("delivered", "smtpd", "google"): 1}


def test_reconcile_drops_messages_that_left_the_queue() -> None:
    feature, pipeline = make()
    feed(feature, pipeline, accepted(5))
    dropped = feature.tracking.tracker.reconcile({"Q00000001", "Q00000003"}, ["mx1"])
    assert dropped == 3
    assert feature.tracking.metrics.evicted[("restart",)] == 3
    assert feature.tracking.tracker.count == 2


def test_exemplar_on_transit_histogram_over_http() -> None:
    """The root queue ID is an exemplar on /metrics when OpenMetrics is negotiated, never a label; the
    Prometheus text format (which has no exemplars) leaves it out."""
    feature, pipeline = make()
    feed(feature, pipeline, SIMPLE)
    registry = make_registry(MailpulseCollector(threading.Lock(), SelfMetrics("test"), feature.parts()))
    server = MetricsServer(registry, "127.0.0.1", 0, health=lambda: (True, {}))
    server.start()
    try:
        request = urllib.request.Request(server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            om = resp.read().decode()
        with urllib.request.urlopen(server.url, timeout=10) as resp:
            text = resp.read().decode()
    finally:
        server.stop()
    bucket = 'mailpulse_postfix_message_transit_seconds_bucket{le="5.0",outcome="delivered",provider="google"} 1.0'
    assert f'{bucket} # {{queue_id="AAAA1"}} 3.0\n' in om
    assert om.count("AAAA1") == 1
    assert "AAAA1" not in text
    assert 'mailpulse_postfix_messages_total{entry="smtpd",outcome="delivered",provider="google"} 1.0' in text


def test_provider_classes_by_relay_suffix() -> None:
    table = ProviderTable([("partner.example", "partner")], ["relay.corp.example"])
    cases = {
        "aspmx.l.google.com": "google",
        "example-com.mail.protection.outlook.com": "microsoft",
        "hotmail-com.olc.protection.outlook.com": "microsoft",
        "mta7.am0.yahoodns.net": "yahoo",
        "mx01.mail.icloud.com": "apple",
        "mail.protonmail.ch": "proton",
        "mx00.emig.gmx.net": "gmx_webde",
        "mx-ha02.web.de": "gmx_webde",
        "mxs.mail.ru": "mailru",
        "mx.yandex.net": "yandex",
        "mx0a-00123.pphosted.com": "proofpoint",
        "eu-smtp-inbound-1.mimecast.com": "mimecast",
        "in1-smtp.messagingengine.com": "fastmail",
        "MX1.Partner.Example.": "partner",  # case and a trailing dot do not matter
        "relay.corp.example": "internal",
        "notgoogle.com": "other",  # a suffix match is on a label boundary
        "google.com.evil.example": "other",
    }
    assert {host: table.classify(host) for host in cases} == cases


def test_provider_label_on_delivery_families() -> None:
    feature, pipeline = make()
    feed(feature, pipeline, FILTER)
    deliveries = feature.aggregator.store[DELIVERIES]
    assert deliveries[("smtp", "smtp", "deferred", "remote", "microsoft")] == 1
    assert deliveries[("smtp", "smtp", "sent", "loopback", "internal")] == 1
    failures = feature.aggregator.store[DELIVERY_FAILURES]
    assert [k[-1] for k in failures] == ["microsoft"]


def test_scan_summary_counts_messages_and_providers(tmp_path: Path) -> None:
    """`scan --summary` counts the re-injected message once and tables it by provider."""
    log = tmp_path / "mail.log"
    log.write_text("\n".join(line.strip() for line in (FILTER + BOUNCE).strip().splitlines()) + "\n")
    out = io.StringIO()
    assert scan_logs([str(log)], [], summary=True, progress=False, out=out) == 0
    report = out.getvalue()
    messages = report.split("Messages (joined by queue ID")[1]
    assert "        2  finished" in messages
    assert "        1    bounced" in messages
    assert "        1    delivered" in messages
    assert "        1  notifications Postfix generated" in messages
    table = report.split("Messages by destination provider and outcome")[1]
    assert re.search(r"\n  microsoft\s+0\s+1\n", table)
    assert re.search(r"\n  yahoo\s+1\s+0\n", table)
    attempts = report.split("Delivery attempts by destination provider")[1]
    assert re.search(r"\n  microsoft\s+1\s+1\s+0\s+50.0%\n", attempts)
