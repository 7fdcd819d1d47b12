"""Probe <-> log correlation on synthetic Postfix lines written for these tests (no real mail data).

The lines go through the real parser, pipeline and tracker (the Postfix-logs feature's format, as in
test_tracking.py); the probes reach the tracker only through the kernel's capability, as in the daemon.
Stamps are RFC 3339 with fractions (rsyslog's high-precision format) so the hop arithmetic is exact.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from mailpulse.exporter.capabilities import Capabilities, Capability
from mailpulse.exporter.feature import Context
from mailpulse.exporter.features.postfix import PostfixLogs, PostfixLogsConfig, with_tracking
from mailpulse.exporter.tracking.api import MESSAGE_TRACKING, MessageTracking
from mailpulse.probes.config import CorrelationConfig, ProbesConfig, RouteConfig
from mailpulse.probes.correlate import Correlator
from mailpulse.probes.metrics import HELD, HOP, UNCORRELATED_RUNS, ProbeMetrics
from mailpulse.probes.outcome import ProbeResult
from mailpulse.probes.status import _failure, _hops
from mailpulse.probes.timeline import HOPS
from tests.unit.test_tracking import feed, make

DAY = "2026-11-24T10:00:"


def stamp(seconds: float) -> str:
    return f"{DAY}{seconds:09.6f}+00:00"


def lines(*rows: tuple[float, str]) -> str:
    return "\n".join(f"{stamp(t)} {text}" for t, text in rows)


T0 = 1795514400.0  # 2026-11-24T10:00:00Z
MID = "mp.default.abc.mac@example.test"  # a probe's Message-ID shape (probes/message.py)

# submission host "mail" -> MX "mx" -> content filter, re-injected on mx -> LMTP
SUBMIT_PATH = lines(
    (0.10, "mail postfix/submission/smtpd[1]: AAAA1: client=localhost[127.0.0.1], sasl_method=PLAIN, "
           "sasl_username=probe@example.test"),
    (0.20, f"mail postfix/cleanup[2]: AAAA1: message-id=<{MID}>"),
    (0.30, "mail postfix/qmgr[3]: AAAA1: from=<probe@example.test>, size=900, nrcpt=1 (queue active)"),
    (0.60, "mx postfix/smtpd[10]: BBBB1: client=unknown[127.0.0.2]"),
    (0.65, f"mx postfix/cleanup[11]: BBBB1: message-id=<{MID}>"),
    (0.70, "mail postfix/smtp[4]: AAAA1: to=<probe@remote.test>, relay=127.0.0.1[127.0.0.1]:24025, delay=0.6, "
           "delays=0.2/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as BBBB1)"),
    (0.71, "mail postfix/qmgr[3]: AAAA1: removed"),
    (0.90, "mx postfix/qmgr[12]: BBBB1: from=<probe@example.test>, size=1900, nrcpt=1 (queue active)"),
    (1.40, "mx postfix/10025/smtpd[13]: BBBB2: client=localhost[127.0.0.1], orig_client=unknown[127.0.0.2]"),
    (1.45, f"mx postfix/cleanup[11]: BBBB2: message-id=<{MID}>"),
    (1.50, "mx postfix/scan/smtp[14]: BBBB1: to=<probe@remote.test>, relay=127.0.0.1[127.0.0.1]:24030, delay=0.9, "
           "delays=0.3/0/0.1/0.5, dsn=2.0.0, status=sent (250 2.0.0 from MTA([127.0.0.1]:24031): 250 2.0.0 Ok: "
           "queued as BBBB2)"),
    (1.51, "mx postfix/qmgr[12]: BBBB1: removed"),
    (1.60, "mx postfix/qmgr[12]: BBBB2: from=<probe@example.test>, size=3000, nrcpt=1 (queue active)"),
    (2.00, "mx postfix/lmtp[15]: BBBB2: to=<probe@remote.test>, relay=mx.example.test[/run/dovecot/lmtp], "
           "delay=0.6, delays=0/0.1/0.1/0.4, dsn=2.0.0, status=sent (250 2.0.0 <probe@remote.test> x Saved)"),
    (2.01, "mx postfix/qmgr[12]: BBBB2: removed"),
)  # fmt: skip

# the forward path: mx (filter) -> srs -> deferred by Microsoft with a blocklist reply
FORWARD_HELD = lines(
    (0.10, "mx postfix/smtpd[10]: CCCC1: client=unknown[127.0.0.3]"),
    (0.15, f"mx postfix/cleanup[11]: CCCC1: message-id=<{MID}>"),
    (0.20, "mx postfix/qmgr[12]: CCCC1: from=<probe@sender.test>, size=900, nrcpt=1 (queue active)"),
    (0.50, "mx postfix/10025/smtpd[13]: CCCC2: client=localhost[127.0.0.1], orig_client=unknown[127.0.0.3]"),
    (0.55, f"mx postfix/cleanup[11]: CCCC2: message-id=<{MID}>"),
    (0.60, "mx postfix/scan/smtp[14]: CCCC1: to=<forward@example.test>, relay=127.0.0.1[127.0.0.1]:24030, "
           "delay=0.5, delays=0.1/0/0.1/0.3, dsn=2.0.0, status=sent (250 2.0.0 from MTA([127.0.0.1]:24031): "
           "250 2.0.0 Ok: queued as CCCC2)"),
    (0.61, "mx postfix/qmgr[12]: CCCC1: removed"),
    (0.70, "mx postfix/qmgr[12]: CCCC2: from=<probe@sender.test>, size=2000, nrcpt=1 (queue active)"),
    (1.00, "srs postfix/smtpd[20]: DDDD1: client=unknown[127.0.0.2]"),
    (1.05, f"srs postfix/cleanup[21]: DDDD1: message-id=<{MID}>"),
    (1.10, "mx postfix/smtp[16]: CCCC2: to=<someone@outlook.com>, orig_to=<forward@example.test>, "
           "relay=127.0.0.1[127.0.0.1]:24027, delay=0.6, delays=0/0/0.2/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: "
           "queued as DDDD1)"),
    (1.11, "mx postfix/qmgr[12]: CCCC2: removed"),
    (1.20, "srs postfix/qmgr[22]: DDDD1: from=<SRS0=x@srs.example.test>, size=2100, nrcpt=1 (queue active)"),
    (3.20, "srs postfix/smtp[23]: DDDD1: to=<someone@outlook.com>, relay=outlook-com.olc.protection.outlook.com"
           "[52.101.1.1]:25, delay=2, delays=0/0/1/1, dsn=4.7.1, status=deferred (host outlook-com.olc.protection"
           ".outlook.com[52.101.1.1] said: 451 4.7.1 Service unavailable; Client host [203.0.113.4] blocked using "
           "Spamhaus (in reply to RCPT TO command))"),
)  # fmt: skip

SUBMIT_ROUTE = RouteConfig("submission-587", "127.0.0.1", 587, "starttls", "probe@example.test", username="probe")
FORWARD_ROUTE = RouteConfig("forward-srs", "127.0.0.1", 25, "starttls", "probe@sender.test")


def tracking_of(text: str) -> MessageTracking:
    feature, pipeline = make()
    feed(feature, pipeline, text, flush=False)
    return MessageTracking(feature.tracking.tracker, threading.Lock())


def capabilities(tracking: MessageTracking) -> Capabilities:
    caps = Capabilities()
    caps.provide(MESSAGE_TRACKING, tracking)
    return caps


class FakeClock:
    """The correlator's wait, in simulated time (the tracker is already complete or never will be)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def correlate(tracking: MessageTracking | None, result: ProbeResult, route: RouteConfig,
              config: CorrelationConfig | None = None) -> FakeClock:  # fmt: skip
    clock = FakeClock()
    caps = capabilities(tracking) if tracking is not None else Capabilities()
    correlator = Correlator(config or CorrelationConfig(wait=5.0), caps, sleep=clock.sleep, clock=clock)
    asyncio.run(correlator.correlate(result, route))
    return clock


def delivered(route: str, queue_id: str | None, accepted: float, latency: float) -> ProbeResult:
    return ProbeResult("p", route, "t", outcome="delivered", queue_id=queue_id, message_id=f"<{MID}>",
                       accepted_at=accepted, latency_seconds=latency)  # fmt: skip


def test_submission_path_hops_add_up_to_the_latency() -> None:
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)  # seen over IMAP at 2.75
    clock = correlate(tracking_of(SUBMIT_PATH), result, SUBMIT_ROUTE)
    tl = result.timeline
    assert tl is not None
    assert tl.complete
    assert tl.uncorrelated is None
    assert tl.held is None
    assert clock.now == 0.0  # complete at the first look: no waiting
    got = [(h.hop, h.host, round(h.seconds, 2)) for h in tl.hops]  # the tracker keeps milliseconds
    assert got == [
        ("submit_queue", "mail", 0.15),  # acceptance 0.45 -> the MX's first line 0.60
        ("mx_queue", "mx", 0.30),  # 0.60 -> qmgr picks it up for the filter 0.90
        ("content_filter", "mx", 0.50),  # 0.90 -> re-injected 1.40
        ("delivery", "mx", 0.60),  # 1.40 -> LMTP sent 2.00
        ("imap_seen", "", 0.75),  # 2.00 -> arrival 2.75
    ]
    assert tl.hop_sum == pytest.approx(result.latency_seconds)
    assert tl.log_offset == pytest.approx(-0.35)  # the entry line was before the 250 to DATA
    events = [(e.host, e.queue_id, e.what) for e in tl.events]
    assert events[0] == ("", "AAAA1", "probe_accepted")
    assert ("mail", "AAAA1", "handoff") in events
    assert ("mx", "BBBB2", "sent") in events
    assert {h.hop for h in tl.hops} <= set(HOPS)


def test_found_by_message_id_when_the_route_gave_no_queue_id() -> None:
    result = delivered("submission-587", None, T0 + 0.45, 2.3)
    correlate(tracking_of(SUBMIT_PATH), result, SUBMIT_ROUTE)
    assert result.timeline is not None
    assert result.timeline.complete
    assert result.timeline.events[0].queue_id == "AAAA1"  # the Message-ID led back to the root


def test_queue_id_of_another_message_on_another_host_is_not_taken() -> None:
    """Short queue IDs repeat across hosts: the Message-ID decides between them."""
    other = lines((0.05, "relay postfix/relay/smtpd[1]: AAAA1: client=localhost[127.0.0.1]"),
                  (0.06, "relay postfix/cleanup[2]: AAAA1: message-id=<someone.else@example.test>"))  # fmt: skip
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    correlate(tracking_of(other + "\n" + SUBMIT_PATH), result, SUBMIT_ROUTE)
    assert result.timeline is not None
    assert result.timeline.hops[0].host == "mail"


def test_lost_forward_run_says_where_it_was_held_and_why() -> None:
    result = ProbeResult("p", "forward-srs", "t", accepted_at=T0 + 0.3, queue_id="CCCC1",
                         message_id=f"<{MID}>").fail("deliver", "lost", "not found within 20s", "lost")  # fmt: skip
    clock = correlate(tracking_of(FORWARD_HELD), result, FORWARD_ROUTE)
    tl = result.timeline
    assert tl is not None
    assert not tl.complete
    assert tl.held is not None
    assert (tl.held.host, tl.held.queue_id, tl.held.status, tl.held.reason, tl.held.provider) == (
        "srs",
        "DDDD1",
        "deferred",
        "blocklisted",
        "microsoft",
    )
    assert result.held == tl.held.text == "deferred at srs: blocklisted by microsoft"
    assert [h.hop for h in tl.hops] == ["mx_queue", "content_filter", "mx_queue", "delivery"]
    assert 1.5 <= clock.now < 2.0  # found at once, then one settle period for late lines
    assert "held: deferred at srs: blocklisted by microsoft" in _failure(result)
    assert _hops(result).text.endswith("held: deferred at srs: blocklisted by microsoft")


def test_roles_inferred_along_the_forward_path_and_configured_names_win() -> None:
    # the SRS host hands the message to the outside MX (an smtpd of the MX instance, as in the lab)
    forward_done = FORWARD_HELD.rsplit("\n", 1)[0] + "\n" + lines(
        (1.50, "mx postfix/outside/smtpd[30]: EEEE1: client=unknown[127.0.0.4]"),
        (1.55, f"mx postfix/cleanup[11]: EEEE1: message-id=<{MID}>"),
        (1.60, "srs postfix/smtp[23]: DDDD1: to=<probe@outside.test>, relay=127.0.0.1[127.0.0.1]:24010, delay=0.4, "
               "delays=0/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as EEEE1)"),
        (1.70, "mx postfix/qmgr[12]: EEEE1: from=<SRS0=x@srs.example.test>, size=2200, nrcpt=1 (queue active)"),
        (1.90, "mx postfix/lmtp[15]: EEEE1: to=<probe@outside.test>, relay=mx.example.test[/run/dovecot/lmtp], "
               "delay=0.4, delays=0/0.1/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 <probe@outside.test> y Saved)"),
    )  # fmt: skip
    result = delivered("forward-srs", "CCCC1", T0 + 0.3, 1.9)
    correlate(tracking_of(forward_done), result, FORWARD_ROUTE)
    tl = result.timeline
    assert tl is not None
    assert tl.complete
    got = [(h.hop, h.host) for h in tl.hops]
    assert got == [("mx_queue", "mx"), ("content_filter", "mx"), ("mx_queue", "mx"), ("srs", "srs"),
                   ("delivery", "mx"), ("imap_seen", "")]  # fmt: skip
    assert tl.hop_sum == pytest.approx(1.9)
    # a site names its hosts' roles: "srs" configured as a relay
    result = delivered("forward-srs", "CCCC1", T0 + 0.3, 1.9)
    correlate(tracking_of(forward_done), result, FORWARD_ROUTE, CorrelationConfig(hosts=(("srs", "relay"),)))
    assert result.timeline is not None
    assert [h.hop for h in result.timeline.hops][3] == "relay"


def test_not_in_logs_waits_the_configured_time_then_says_so() -> None:
    result = delivered("submission-587", "ZZZZ9", T0, 1.0)
    result.message_id = "<nobody@example.test>"
    clock = correlate(tracking_of(SUBMIT_PATH), result, SUBMIT_ROUTE, CorrelationConfig(wait=3.0))
    assert result.timeline is not None
    assert result.timeline.uncorrelated == "not_in_logs"
    assert 3.0 <= clock.now <= 3.5


def test_no_queue_id_and_no_message_id() -> None:
    result = delivered("submission-587", None, T0, 1.0)
    result.message_id = None
    correlate(tracking_of(SUBMIT_PATH), result, SUBMIT_ROUTE)
    assert result.timeline is not None
    assert result.timeline.uncorrelated == "no_queue_id"


def test_incomplete_when_the_final_host_is_not_tailed() -> None:
    only_submit = "\n".join(line for line in SUBMIT_PATH.splitlines() if " mail " in line)
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    correlate(tracking_of(only_submit), result, SUBMIT_ROUTE, CorrelationConfig(wait=1.0))
    tl = result.timeline
    assert tl is not None
    assert tl.uncorrelated == "incomplete"
    assert tl.hop_sum == pytest.approx(2.3)  # what is known still adds up: the rest is one hop


def test_without_the_capability_nothing_happens() -> None:
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    correlate(None, result, SUBMIT_ROUTE)
    assert result.timeline is None
    result2 = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    correlate(tracking_of(SUBMIT_PATH), result2, SUBMIT_ROUTE, CorrelationConfig(enabled=False))
    assert result2.timeline is None


def test_the_postfix_feature_provides_the_tracker_only_while_tracking_is_on(tmp_path: Path) -> None:
    feature = PostfixLogs()
    on = PostfixLogsConfig()
    caps = Capabilities()
    feature.formats(on)
    feature.configure(with_tracking(on, reconcile=False, state=False), Context(threading.Lock(), str(tmp_path), caps))
    provided = caps.get(MESSAGE_TRACKING)
    assert isinstance(provided, MessageTracking)
    caps.clear()  # what the kernel does before every (re)build
    off = with_tracking(on, enabled=False)
    feature.formats(off)
    feature.configure(off, Context(threading.Lock(), str(tmp_path), caps))
    assert caps.get(MESSAGE_TRACKING) is None
    assert caps.get(Capability[int]("unknown")) is None


def test_metrics_hops_uncorrelated_held(tmp_path: Path) -> None:
    config = ProbesConfig(None, correlation=CorrelationConfig(max_hosts=1))
    metrics = ProbeMetrics(config)
    ok = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    correlate(tracking_of(SUBMIT_PATH), ok, SUBMIT_ROUTE)
    metrics.timeline("p", ok.timeline, delivered=True)
    lost = ProbeResult("p", "forward-srs", "t", accepted_at=T0 + 0.3, queue_id="CCCC1", message_id=MID).fail("deliver", "lost", "x",
                                                                                            "lost")  # fmt: skip
    correlate(tracking_of(FORWARD_HELD), lost, FORWARD_ROUTE)
    metrics.timeline("p", lost.timeline, delivered=False)
    metrics.timeline("p", lost.timeline, delivered=False)
    gone = delivered("submission-587", "ZZZZ9", T0, 1.0)
    gone.message_id = None
    correlate(tracking_of(SUBMIT_PATH), gone, SUBMIT_ROUTE, CorrelationConfig(wait=0.5))
    metrics.timeline("p", gone.timeline, delivered=True)
    hops = {labels[1]: h for labels, h in metrics.hops.snapshot().items()}
    assert set(hops) == {"submit_queue", "mx_queue", "content_filter", "delivery", "imap_seen"}
    assert sum(h.sum for h in hops.values()) == pytest.approx(2.3)
    assert metrics.counters[HELD] == {("p", "srs", "deferred", "blocklisted"): 2.0}
    assert metrics.counters[UNCORRELATED_RUNS][("p", "not_in_logs")] == 1.0
    families = {m.name: m for m in metrics.collect()}
    assert HOP.name.removesuffix("_seconds") in {n.removesuffix("_seconds") for n in families}
    # the host label is capped: a second host name becomes "other"
    other = ProbeResult("p", "forward-srs", "t", accepted_at=T0 + 0.3, queue_id="CCCC1", message_id=MID).fail("deliver", "lost", "x",
                                                                                             "lost")  # fmt: skip
    correlate(tracking_of(FORWARD_HELD.replace(" srs ", " srs2 ")), other, FORWARD_ROUTE)
    metrics.timeline("p", other.timeline, delivered=False)
    assert metrics.counters[HELD][("p", "other", "deferred", "blocklisted")] == 1.0


def test_json_carries_the_timeline() -> None:
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    correlate(tracking_of(SUBMIT_PATH), result, SUBMIT_ROUTE)
    out = json.loads(json.dumps(result.as_json()))
    assert [h["hop"] for h in out["timeline"]["hops"]][-1] == "imap_seen"
    assert out["timeline"]["events"][0] == {"t": 0.0, "host": "", "queue_id": "AAAA1", "event": "probe_accepted",
                                            "detail": "the route's 250 to DATA"}  # fmt: skip
    assert result.timeline is not None  # as_json leaves the object in place
    assert "submit_queue @mail 0.15 s" in _hops(result).text


def test_a_hop_the_tracker_could_not_link_is_stitched_by_message_id() -> None:
    """Per-host logs read one after another: the outside MX's copy was delivered and removed before the
    SRS host's `queued as` line was read, so the tracker could not link it. The route's queue file was
    removed too (found among the journeys still in flight); the Message-ID stitches the last hop on."""
    feature, pipeline = make()
    head = FORWARD_HELD.rsplit("\n", 1)[0]
    outside = lines(
        (1.50, "mx postfix/outside/smtpd[30]: EEEE1: client=unknown[127.0.0.4]"),
        (1.55, f"mx postfix/cleanup[11]: EEEE1: message-id=<{MID}>"),
        (1.70, "mx postfix/qmgr[12]: EEEE1: from=<SRS0=x@srs.example.test>, size=2200, nrcpt=1 (queue active)"),
        (1.90, "mx postfix/lmtp[15]: EEEE1: to=<probe@outside.test>, relay=mx.example.test[/run/dovecot/lmtp], "
               "delay=0.4, delays=0/0.1/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 <probe@outside.test> y Saved)"),
        (1.91, "mx postfix/qmgr[12]: EEEE1: removed"),
    )  # fmt: skip
    srs_sent = lines(
        (1.60, "srs postfix/smtp[23]: DDDD1: to=<probe@outside.test>, relay=127.0.0.1[127.0.0.1]:24010, delay=0.4, "
               "delays=0/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as EEEE1)"),
        (1.61, "srs postfix/qmgr[22]: DDDD1: removed"),
    )  # fmt: skip
    for text in (head, outside, srs_sent):
        feed(feature, pipeline, text, flush=False)
    tracking = MessageTracking(feature.tracking.tracker, threading.Lock())
    result = delivered("forward-srs", "CCCC1", T0 + 0.3, 1.9)
    correlate(tracking, result, FORWARD_ROUTE)
    tl = result.timeline
    assert tl is not None
    assert tl.uncorrelated is None
    assert [(h.hop, h.host) for h in tl.hops] == [("mx_queue", "mx"), ("content_filter", "mx"), ("mx_queue", "mx"),
                                                  ("srs", "srs"), ("delivery", "mx"), ("imap_seen", "")]  # fmt: skip
    assert tl.hop_sum == pytest.approx(1.9)


def test_per_host_logs_read_next_host_first_still_give_the_whole_path() -> None:
    """The MX's log is read before the submission host's: the MX's copies are gone (delivered, removed) when
    the submission host's `queued as` line comes, so the tracker keeps it as a pending link; the query
    follows it, and the Message-ID's latest file (the submission host's, read last) does not mislead it."""
    feature, pipeline = make(link_grace=5.0)
    by_host: dict[str, list[str]] = {}
    for line in SUBMIT_PATH.splitlines():
        by_host.setdefault(line.split()[1], []).append(line)
    feed(feature, pipeline, "\n".join(by_host["mx"]), flush=False)
    feed(feature, pipeline, "\n".join(by_host["mail"]), flush=False)
    tracking = MessageTracking(feature.tracking.tracker, threading.Lock())
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    correlate(tracking, result, SUBMIT_ROUTE)
    tl = result.timeline
    assert tl is not None
    assert tl.uncorrelated is None
    assert [h.hop for h in tl.hops] == ["submit_queue", "mx_queue", "content_filter", "delivery", "imap_seen"]


def test_delivered_by_our_host_but_not_seen_in_time() -> None:
    """The logs say the mailbox took it; the watcher did not see it by the deadline: the detail says so."""
    result = ProbeResult("p", "submission-587", "t", accepted_at=T0 + 0.45, queue_id="AAAA1",
                         message_id=f"<{MID}>").fail("deliver", "lost", "not found within 20s", "lost")  # fmt: skip
    correlate(tracking_of(SUBMIT_PATH), result, SUBMIT_ROUTE)
    assert result.timeline is not None
    assert result.timeline.held is not None
    assert result.timeline.held.status == "delivered"
    assert result.held == "delivered at mx to the mailbox, not seen by the deadline"
    assert [h.hop for h in result.timeline.hops][-1] == "delivery"  # no imap_seen: it was not seen


def test_signed_and_scanned_come_from_rspamd_through_its_capability() -> None:
    """The Postfix log does not say when a message was DKIM-signed; rspamd's verdict lines do (matched to the
    path's queue files by the milter's queue ID). Lines written for this test in rspamd's default layout."""
    from mailpulse.exporter.config_rspamd import RspamdConfig
    from mailpulse.exporter.features.rspamd import RspamdLogs
    from mailpulse.exporter.metrics.sources import SourceStats
    from mailpulse.exporter.pipeline import LinePipeline
    from mailpulse.exporter.scanindex import MESSAGE_SCANS

    rspamd = RspamdLogs()
    lock = threading.Lock()
    caps = capabilities(tracking_of(SUBMIT_PATH))
    (fmt,) = rspamd.formats(RspamdConfig())
    rspamd.configure(RspamdConfig(), Context(lock, "/nonexistent", caps))
    assert caps.get(MESSAGE_SCANS) is rspamd.scans
    Correlator(CorrelationConfig(), caps).want_scans()  # what the probe service does when it starts
    verdict = ("2026-11-24 10:00:{s} #1(normal) <a1b2c3>; task; rspamd_task_write_log: id: <" + MID + ">, qid: <{qid}>,"
               " ip: 127.0.0.1, from: <probe@example.test>, (default: F (no action): [{score}/15.00] [{symbols}]),"
               " len: 483, time: 74.317ms, dns req: 6")  # fmt: skip
    other = verdict.replace(MID, "someone.else@example.test")
    LinePipeline(SourceStats("r"), [fmt], lock).feed([
        verdict.format(s="00", qid="AAAA1", score="-0.10", symbols="ARC_NA(0.00){},DKIM_SIGNED(0.00){example.test:s=lab;}"),
        verdict.format(s="01", qid="BBBB1", score="-1.00", symbols="DKIM_ALLOW(-0.20){example.test:+;},R_SPF_ALLOW(-0.20){+ip4:127.0.0.2;}"),
        other.format(s="01", qid="CCCC9", score="1.00", symbols="DKIM_SIGNED(0.00){example.test:s=lab;}"),
    ])  # fmt: skip
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    clock = FakeClock()
    asyncio.run(Correlator(CorrelationConfig(), caps, sleep=clock.sleep, clock=clock).correlate(result, SUBMIT_ROUTE))
    assert result.timeline is not None
    rspamd_events = [(e.host, e.queue_id, e.what, e.detail) for e in result.timeline.events if "rspamd" in e.detail]
    assert rspamd.scans.scans("someone.else@example.test") == []  # not a probe's: not recorded
    assert rspamd_events == [("mail", "AAAA1", "signed", "rspamd no_action, score -0.1, d=example.test"),
                             ("mx", "BBBB1", "scanned", "rspamd no_action, score -1")]  # fmt: skip


def test_waits_for_the_entry_hosts_lines_when_a_later_hosts_log_was_read_first() -> None:
    """The MX's lines (to the final delivery) are in, the submission host's not yet: that is no timeline yet;
    the correlator waits (bounded) and, when they never come, builds what it has and says it is incomplete."""
    mx_only = "\n".join(line for line in SUBMIT_PATH.splitlines() if " mx " in line)
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    clock = correlate(tracking_of(mx_only), result, SUBMIT_ROUTE, CorrelationConfig(wait=2.0))
    assert clock.now >= 2.0  # it waited for the entry host's lines
    assert result.timeline is not None
    assert result.timeline.uncorrelated == "incomplete"


def test_hops_from_postfix_delays_when_asked() -> None:
    """With the delays index asked for (the probe service does at its start), hops come from each queue file's
    delays=a/b/c/d (10 ms): b+c+d per file, a filter's parent split into b and c+d; arrival is the rest."""
    feature, pipeline = make()
    feature.delays.want()
    feed(feature, pipeline, SUBMIT_PATH, flush=False)
    tracking = MessageTracking(feature.tracking.tracker, threading.Lock(), feature.delays)
    result = delivered("submission-587", "AAAA1", T0 + 0.45, 2.3)
    correlate(tracking, result, SUBMIT_ROUTE)
    tl = result.timeline
    assert tl is not None
    assert tl.precise
    got = [(h.hop, h.host, round(h.seconds, 3)) for h in tl.hops]
    assert got == [
        ("submit_queue", "mail", 0.4),  # delays=0.2/0/0.2/0.2: b + c + d
        ("mx_queue", "mx", 0.0),  # delays=0.3/0/0.1/0.5: b
        ("content_filter", "mx", 0.6),  # c + d
        ("delivery", "mx", 0.6),  # delays=0/0.1/0.1/0.4
        ("imap_seen", "", 0.7),  # the rest of the measured 2.3 s
    ]
    assert tl.hop_sum == pytest.approx(2.3)
    assert tl.as_json()["hops_from"] == "postfix_delays"


def test_delays_are_not_recorded_until_asked() -> None:
    feature, pipeline = make()
    feed(feature, pipeline, SUBMIT_PATH, flush=False)
    assert feature.delays.get("mail", "AAAA1") is None
