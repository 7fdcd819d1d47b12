"""Probe <-> log correlation: after a run, find its message in the message tracker and build its timeline.

The tracker is another feature's (the Postfix logs'); the probes reach it only through the kernel's
capabilities (:data:`exporter.tracking.api.MESSAGE_TRACKING`), looked up at each run: it is there while
the daemon tails Postfix logs with tracking on, and absent in ``mailpulse probe`` without logs or when
tracking is off (then runs have no timeline and nothing is counted).

Log lines reach the tracker a little after the events (the file sources poll every second or so), so a
finished run polls the tracker until its message's journey is complete (a delivered run: the final
delivery is there; a lost one: the journey was found and one more poll period has passed) or
``probes.correlation.wait`` is over, whichever is first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from mailpulse.exporter.capabilities import Capabilities
from mailpulse.exporter.scanindex import MESSAGE_SCANS, Scan
from mailpulse.exporter.tracking.api import MESSAGE_TRACKING, Journey, MessageTracking
from mailpulse.probes.config import CorrelationConfig, RouteConfig
from mailpulse.probes.outcome import ProbeResult
from mailpulse.probes.timeline import Timeline, build, chain, final_delivery

MESSAGE_ID_PREFIX = "mp."  # every probe's Message-ID: <mp.LOCATION.TOKEN.MAC@domain> (probes/message.py)
POLL = 0.25  # seconds between looks at the tracker
LOOK_BACK = 300.0  # the route's queue file entered at most this long before the acceptance was measured
SETTLE = 1.5  # a lost run's journey, once found: one more file-source poll period for its latest lines


def entry_role(route: RouteConfig) -> str:
    """The role of the host a route hands the probe to: SASL means a submission host, a client certificate
    an MTA relay, no authentication an MX (mail from outside)."""
    if route.username or route.auth in ("password", "xoauth2"):
        return "submit"
    return "relay" if route.auth == "client_cert" else "mx"


def arrival(result: ProbeResult) -> float | None:
    if result.accepted_at is None or result.latency_seconds is None:
        return None
    return result.accepted_at + result.latency_seconds


def _delivered_in_logs(journey: Journey) -> bool:
    final = final_delivery(chain(journey)[-1])
    return final is not None and final.status == "sent"


class Correlator:
    def __init__(self, config: CorrelationConfig, capabilities: Capabilities | None, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.config = config
        self.capabilities = capabilities
        self.roles = dict(config.hosts)
        self._sleep = sleep
        self._clock = clock

    def tracking(self) -> MessageTracking | None:
        if not self.config.enabled or self.capabilities is None:
            return None
        return self.capabilities.get(MESSAGE_TRACKING)

    async def correlate(self, result: ProbeResult, route: RouteConfig) -> Timeline | None:
        """The run's timeline, or None when there is nothing to correlate with (no tracker, or the route
        never accepted the message). Sets ``result.timeline`` and, for a run not delivered, ``result.held``."""
        tracking = self.tracking()
        if tracking is None or result.accepted_at is None:
            return None
        arrived = arrival(result)
        if not result.queue_id and not result.message_id:
            return self._set(result, Timeline(result.accepted_at, uncorrelated="no_queue_id"))
        give_up = self._clock() + self.config.wait
        found_at: float | None = None
        journey = None
        while True:
            journey = tracking.journey(result.queue_id, result.message_id, since=result.accepted_at - LOOK_BACK)
            now = self._clock()
            # the route's own queue file must be in it: a later host's log can be read before the entry host's
            if journey is not None and (not result.queue_id or journey.has_queue_id(result.queue_id)):
                if arrived is not None and _delivered_in_logs(journey):
                    break
                found_at = now if found_at is None else found_at
                if arrived is None and now - found_at >= SETTLE:
                    break
            if now >= give_up:
                break
            await self._sleep(POLL)
        if journey is None:
            why = "not_in_logs" if result.queue_id else "no_queue_id"
            return self._set(result, Timeline(result.accepted_at, uncorrelated=why))
        timeline = build(journey, accepted_at=result.accepted_at, arrived_at=arrived, configured_roles=self.roles,
                         entry_role=entry_role(route), scans=self._scans(result.message_id))  # fmt: skip
        if result.queue_id and not journey.has_queue_id(result.queue_id):
            timeline.complete = False  # found by the Message-ID only: the entry host's lines are not there
        if arrived is not None and not timeline.complete:
            timeline.uncorrelated = "incomplete"
        return self._set(result, timeline)

    def want_scans(self) -> None:
        """Ask the log features (if they are there) for what the timelines use beyond the tracker's steps:
        rspamd's verdicts of probe messages, Postfix's ``delays=``. Call once the features are configured (a
        service's start, or ``mailpulse probe`` once its logs are followed)."""
        if not self.config.enabled or self.capabilities is None:
            return
        index = self.capabilities.get(MESSAGE_SCANS)
        if index is not None:
            index.want(MESSAGE_ID_PREFIX)
        tracking = self.capabilities.get(MESSAGE_TRACKING)
        if tracking is not None:
            tracking.want_delays()

    def _scans(self, message_id: str | None) -> list[Scan]:
        index = self.capabilities.get(MESSAGE_SCANS) if self.capabilities is not None else None
        return index.scans(message_id) if index is not None and message_id else []

    @staticmethod
    def _set(result: ProbeResult, timeline: Timeline) -> Timeline:
        result.timeline = timeline
        if timeline.held is not None and not result.delivered:
            result.held = timeline.held.text
        return timeline
