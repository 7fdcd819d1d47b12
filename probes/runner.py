"""One probe run, start to outcome: check the mailbox, send, wait for the arrival, judge it.

Outcomes (probes/outcome.py): ``delivered`` (found before the deadline), ``lost`` (accepted by the
route but not found by the deadline: stage ``deliver``, reason ``lost``), or ``failed`` at a stage with
a bounded reason. If the mailbox watcher is down at the deadline, the run fails at ``receive`` with
the watcher's reason rather than calling the message lost: mailpulse cannot know. A message found
after the deadline but within the late window is a ``delivered_late`` arrival: logged and counted in
``mailpulse_probe_late_arrivals_total``, while its run already counted as lost.

The deadline runs from the route's acceptance (the 250 to DATA). The whole run is bounded by
``asyncio.timeout``, on top of every SMTP and IMAP step's own timeout.

Latency = arrival - acceptance, where arrival is the earlier of (a) the moment mailpulse had the
headers and (b) the end of the INTERNALDATE second. INTERNALDATE is the server's own delivery time,
independent of how often we poll, but it has whole-second resolution and comes from the server's
clock; detection time comes from our clock (the same one that stamped the acceptance) and, with IDLE,
trails the delivery by milliseconds. Taking the earlier bound gives IDLE's precision where IDLE works
and caps polling's error at one second where it does not. An INTERNALDATE before the acceptance can
only be clock skew: then detection time alone is used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from mailpulse.probes.autoreply import parse_report
from mailpulse.probes.config import ProbeConfig, ProbesConfig, TargetConfig
from mailpulse.probes.correlate import Correlator
from mailpulse.probes.dkimcheck import DkimChecker
from mailpulse.probes.errors import ProbeError
from mailpulse.probes.mailbox import MailboxWatcher
from mailpulse.probes.message import DkimKey, build
from mailpulse.probes.outcome import ProbeResult
from mailpulse.probes.registry import Found, Pending, Registry
from mailpulse.probes.send import Sender
from mailpulse.probes.verdicts import judge, parse_headers, receiver_domains

log = structlog.get_logger(__name__)


def arrival_latency(found: Found, accepted_at: float) -> float:
    arrived = found.detected_at
    if found.internaldate is not None and found.internaldate + 1.0 >= accepted_at:
        arrived = min(arrived, found.internaldate + 1.0)
    return max(0.0, arrived - accepted_at)


class ProbeRunner:
    def __init__(self, config: ProbesConfig, *, key: bytes, registry: Registry, watchers: dict[str, MailboxWatcher],
                 senders: dict[str, Sender], dkim: DkimChecker,
                 on_late: Callable[[ProbeResult], None] | None = None,
                 correlator: Correlator | None = None) -> None:  # fmt: skip
        self.config = config
        self.key = key
        self.registry = registry
        self.watchers = watchers  # by target name
        self.senders = senders  # by route name
        self.dkim = dkim
        self.on_late = on_late
        self.correlator = correlator
        self._late_tasks: set[asyncio.Task[None]] = set()
        self._signers = {r.name: DkimKey(r.dkim.domain, r.dkim.selector, r.dkim.key_file)
                         for r in config.routes if r.dkim is not None}  # fmt: skip

    async def run(self, probe: ProbeConfig) -> ProbeResult:
        """One run, then its hop timeline from the logs (when the tracker is there; bounded by its wait)."""
        result = await self._run(probe)
        await self.correlate(result)
        return result

    def want_scans(self) -> None:
        if self.correlator is not None:
            self.correlator.want_scans()

    async def correlate(self, result: ProbeResult) -> None:
        if self.correlator is None:
            return
        try:
            await self.correlator.correlate(result, self.config.route(result.route))
        except Exception:  # a bug in the timeline must not cost the run its outcome
            log.exception("probe correlation failed", probe=result.probe)

    async def _run(self, probe: ProbeConfig) -> ProbeResult:
        route, target = self.config.route(probe.route), self.config.target(probe.target)
        result = ProbeResult(probe.name, route.name, target.name, started_at=time.time())
        watcher = self.watchers[target.name]
        budget = route.connect_timeout + 6 * route.timeout + 3 * target.timeout + probe.deadline + 30
        phase, token = "receive", None
        try:
            async with asyncio.timeout(budget):
                await watcher.wait_ready(2 * target.timeout)
                phase = "send"
                msg = build(key=self.key, probe=probe.name, mail_from=route.mail_from, rcpt=target.address,
                            extra_headers=dict(probe.headers), body_lines=probe.body_lines,
                            dkim_sign=self._signers.get(route.name), location=self.config.location)  # fmt: skip
                token, result.message_id = msg.token, msg.message_id
                # registered before sending: a fast server can deliver before send() returns
                pending = self.registry.expect(token, probe.name, watcher.name, target.kind, probe.late_window)
                sent = await self.senders[route.name].send(target.address, msg.data)
                pending.accepted_at = result.accepted_at = sent.accepted_at
                result.queue_id, result.tls_version, result.smtp_reply = sent.queue_id, sent.tls_version, sent.reply
                result.send_seconds = sent.duration
                phase = "deliver"
                found = await self._wait(pending, probe, watcher, result)
                if found is None:
                    return result
                await self.judge(result, found, target)
                result.outcome = "delivered"
                _check_expectations(result, probe)
        except ProbeError as exc:
            if token is not None:
                self.registry.done(token)
            result.fail(exc.stage, exc.reason, str(exc))
        except TimeoutError:
            stage, reason = {"receive": ("receive", "imap_timeout"), "send": ("send", "timeout")}.get(
                phase, ("deliver", "lost"))  # fmt: skip
            if token is not None:
                self.registry.mark_late(token)
            result.fail(stage, reason, f"the run took longer than {budget:g}s",
                        outcome="lost" if reason == "lost" else "failed")  # fmt: skip
        except Exception as exc:  # a bug: keep the scheduler alive, count it, show the traceback
            log.exception("probe run crashed", probe=probe.name)
            if token is not None:
                self.registry.done(token)
            result.fail("internal", "error", f"{type(exc).__name__}: {exc}")
        finally:
            result.finished_at = time.time()
        return result

    async def _wait(self, pending: Pending, probe: ProbeConfig, watcher: MailboxWatcher,
                    result: ProbeResult) -> Found | None:  # fmt: skip
        remaining = (pending.accepted_at or time.time()) + probe.deadline - time.time()
        try:
            found = await asyncio.wait_for(asyncio.shield(pending.future), max(remaining, 0.0))
        except (TimeoutError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not pending.future.cancelled():
                raise  # we are being cancelled, not the future
            self.registry.mark_late(pending.token)
            error = watcher.error if not watcher.up else None
            if error is not None:
                result.fail("receive", error.reason, f"mailbox {watcher.name} down at the deadline: {error}")
            else:
                result.fail("deliver", "lost", f"not found within {probe.deadline:g}s of acceptance", "lost")
            return None
        self.registry.done(pending.token)
        return found

    async def judge(self, result: ProbeResult, found: Found, target: TargetConfig) -> None:
        """Fill in arrival, folder and verdicts from what the watcher found."""
        if result.accepted_at is not None:
            result.latency_seconds = arrival_latency(found, result.accepted_at)
        if found.internaldate is not None:
            result.detection_delay_seconds = max(0.0, found.detected_at - found.internaldate)
        result.folder, result.folder_name, result.watch_mode = found.folder_kind, found.folder, found.watch_mode
        if target.kind == "autoresponder":
            report = parse_report(found.raw or found.headers)
            _set_auth(result, report.auth)
            result.authserv_id, result.auth_source, result.spam_score = report.authserv_id, "autoresponder", \
                report.spam_score  # fmt: skip
            return
        domains = receiver_domains(target.host, target.address)
        verdict = judge(parse_headers(found.headers), target.authserv_id, domains)
        _set_auth(result, verdict.auth)
        result.authserv_id, result.auth_source = verdict.authserv_id, "receiver"
        result.spf_domain = verdict.spf_domain
        spam = verdict.spam
        result.spam_score, result.spam_engine, result.spam_flagged = spam.score, spam.engine, spam.flagged
        result.spam_action, result.provider_dest = spam.action, spam.provider_dest
        if found.raw is not None:
            check = await self.dkim.check(found.raw)
            result.dkim_own, result.dkim_own_domain = check.result, check.domain
            if check.detail:
                result.extra["dkim_own_detail"] = check.detail

    def late(self, pending: Pending, found: Found) -> None:
        """Registry callback for an arrival after the deadline (runs in the watcher: do the work aside)."""
        task = asyncio.create_task(self._late(pending, found))
        self._late_tasks.add(task)
        task.add_done_callback(self._late_tasks.discard)

    async def _late(self, pending: Pending, found: Found) -> None:
        probe = next((p for p in self.config.probes if p.name == pending.probe), None)
        if probe is None:
            return
        route, target = self.config.route(probe.route), self.config.target(probe.target)
        result = ProbeResult(probe.name, route.name, target.name, outcome="delivered_late",
                             accepted_at=pending.accepted_at, finished_at=time.time())  # fmt: skip
        try:
            await self.judge(result, found, target)
        except Exception:
            log.exception("judging a late arrival failed", probe=probe.name)
        log.warning("probe arrived late", **_log_fields(result))
        if self.on_late is not None:
            self.on_late(result)


def _check_expectations(result: ProbeResult, probe: ProbeConfig) -> None:
    """A delivered probe whose receiver's verdicts differ from ``expect`` fails (stage deliver)."""
    seen = {**result.auth, "spf_domain": result.spf_domain}
    wrong = [f"{key}={seen.get(key) or 'none'} (expected {want})" for key, want in probe.expect
             if (seen.get(key) or "none").lower() != want.lower()]  # fmt: skip
    if wrong:
        result.fail("deliver", "auth_unexpected", "the receiver's Authentication-Results say " + ", ".join(wrong))


def _set_auth(result: ProbeResult, auth: dict[str, str]) -> None:
    result.dkim, result.spf, result.dmarc = auth.get("dkim"), auth.get("spf"), auth.get("dmarc")
    result.arc, result.compauth = auth.get("arc"), auth.get("compauth")


def _log_fields(r: ProbeResult) -> dict[str, Any]:
    keys = ("probe", "outcome", "stage", "reason", "latency_seconds", "folder", "dkim", "spf", "dmarc", "dkim_own",
            "spam_score", "queue_id", "message_id", "error", "held")  # fmt: skip
    out = {k: v for k, v in r.as_json().items() if k in keys and v is not None}
    if r.timeline is not None:
        if r.timeline.hops:
            out["hops"] = [{"hop": h.hop, "host": h.host, "seconds": round(h.seconds, 3)} for h in r.timeline.hops]
            out["hop_sum_seconds"] = round(r.timeline.hop_sum, 3)
            out["hops_from"] = "postfix_delays" if r.timeline.precise else "log_stamps"
        if r.timeline.log_offset is not None:
            out["log_offset_seconds"] = round(r.timeline.log_offset, 3)
        if r.timeline.uncorrelated:
            out["uncorrelated"] = r.timeline.uncorrelated
    return out


def log_result(r: ProbeResult) -> None:
    if r.delivered:
        log.info("probe delivered", **_log_fields(r))
    else:
        log.warning("probe failed" if r.outcome == "failed" else "probe lost", **_log_fields(r))
