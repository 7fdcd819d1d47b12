"""``mailpulse scan --summary``: a human report for admins who would otherwise run pflogsumm.

Built from the same events as the metrics, so the two never disagree. Addresses are not reported
(mailpulse never keeps them); reasons are the same bounded classes the metrics use.

The grand totals follow pflogsumm's definitions where they can, and say so in the report's footer where
they differ on purpose:

* received: smtpd ``QID: client=`` lines and pickup, once per message: a message that a content filter
  (amavis on 127.0.0.1:10024, a second smtpd on 127.0.0.1:10025, ...) re-injects is received again under a
  new queue ID, which the filter reports in its reply (``queued as QID``); that second receipt is not counted.
  The same for a hop to our next host whose log is scanned too (submission -> MX -> SRS).
* delivered: ``status=sent`` except local's ``forwarded as`` (counted as forwarded, as pflogsumm does) and
  the hand-off to a content filter or our next host that received it again (counted apart).
* smtpd connections: completed sessions (``disconnect`` lines), as pflogsumm's ``--smtpd_stats``.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable
from io import StringIO

from mailpulse.exporter.metrics.sources import SourcesAggregator
from mailpulse.exporter.tracking.record import NOTICE, Msg
from mailpulse.exporter.tracking.tracker import Tracker
from mailpulse.parsers.postfix import events as ev
from mailpulse.parsers.postfix.vocab import REJECT_ACTIONS
from mailpulse.parsers.results import Unparsed
from mailpulse.parsers.rspamd.events import RspamdError, RspamdRepeated, RspamdScan
from mailpulse.parsers.rspamd.vocab import scan_label


def hour_of(ts: str) -> str:
    """``Jan 27 06:33:59`` → ``Jan 27 06h``; ``2022-01-08T19:42:13+00:00`` → ``2022-01-08 19h``."""
    if ts[4:5] == "-":
        return f"{ts[:10]} {ts[11:13]}h"
    return f"{ts[:-6]}h" if len(ts) >= 14 else ts


FOOTER = """
Compared with pflogsumm
-----------------------
  Same definitions: received (smtpd client= and pickup), delivered (status=sent), forwarded (local's
  "forwarded as"), deferred, bounced, smtpd connections (completed sessions).
  Where mailpulse differs, on purpose:
  - a message re-injected by a content filter is received and delivered once; pflogsumm counts it twice
    when the filter re-injects through the main smtpd (e.g. localhost), and the hand-off to the filter as a
    delivery;
  - every smtpd service counts (submission, smtps, postfix-*/ instances); pflogsumm counts "postfix/smtpd"
    lines only, so it misses mail received on submission and rejects there (its --smtpd_stats connections
    also leave out a session whose connect line is before the start of the log);
  - rejects include postscreen, milter and before-queue filter rejects, which pflogsumm leaves out.
"""


class SummaryAggregator:
    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.per_hour: dict[str, Counter[str]] = {}
        self.rejects: Counter[tuple[str, str, str]] = Counter()
        self.deferrals: Counter[str] = Counter()
        self.bounces: Counter[str] = Counter()
        self.blocklisted: Counter[str] = Counter()
        self.deferred_ids: set[str] = set()
        self.delays = array("d")
        self.stage_sums = [0.0, 0.0, 0.0, 0.0]
        self.sasl: Counter[tuple[str, str]] = Counter()
        self.tls_in: Counter[str] = Counter()
        self.tls_out: Counter[str] = Counter()
        self.problems: Counter[tuple[str, str, str]] = Counter()
        self.unparsed: Counter[str] = Counter()
        self.rspamd_actions: Counter[str] = Counter()
        self.rspamd_errors: Counter[str] = Counter()
        # queue IDs received by smtpd, and the IDs a sent delivery created (content filter, forward) with the
        # number of deliveries that reported each: matched at report time (the re-injection is logged first)
        self.accepted_ids: dict[str, str] = {}  # queue ID -> hour received
        self.handoffs: dict[str, list[str]] = {}  # queue ID a sent delivery created -> hours of those deliveries
        self.sessions: Counter[str] = Counter()
        # message tracking (when on): messages by final outcome and provider, instead of lines
        self.tracker: Tracker | None = None
        self.outcomes: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()
        self.by_provider: dict[str, Counter[str]] = {}
        self.transit = array("d")
        self.attempt_deferrals: dict[str, Counter[str]] = {}  # provider -> {deferred, bounced, sent} attempts

    def follow(self, tracker: Tracker) -> None:
        """Count messages as the tracker finishes them."""
        self.tracker = tracker
        tracker.on_finish = self._message

    def _message(self, root: Msg, outcome: str, provider: str) -> None:
        if root.flags & NOTICE:
            self.notices[outcome] += 1
            return
        self.outcomes[outcome] += 1
        row = self.by_provider.get(provider)
        if row is None:
            row = self.by_provider[provider] = Counter()
        row[outcome] += 1
        last = max(m.last() for m in root.journey())
        self.transit.append(last - root.t0)

    def handler(self, fmt: str) -> Callable[[object], None]:
        return self._postfix if fmt == "postfix" else self._rspamd

    @staticmethod
    def event_types(fmt: str) -> tuple[type, ...]:
        """Event types the summary wants even where the metrics have no handler for them."""
        if fmt != "postfix":
            return ()
        return (*(c for c in vars(ev).values() if isinstance(c, type) and issubclass(c, ev.PostfixEvent)), Unparsed)

    def _hour(self, ts: str, what: str) -> None:
        key = hour_of(ts)
        bucket = self.per_hour.get(key)
        if bucket is None:
            bucket = self.per_hour[key] = Counter()
        bucket[what] += 1

    def _postfix(self, e: object) -> None:
        t = self.totals
        if isinstance(e, ev.SmtpdAccepted):
            t["received"] += 1
            self.accepted_ids[e.queue_id] = hour_of(e.ts)
            self._hour(e.ts, "received")
        elif isinstance(e, ev.Pickup):
            t["received"] += 1
            self._hour(e.ts, "received")
        elif isinstance(e, ev.Delivery):
            self._delivery(e)
        elif isinstance(e, ev.AccessAction):
            if e.action in REJECT_ACTIONS:
                t["rejected"] += 1
                self.rejects[(e.stage, e.reason, e.code or "-")] += 1
                self._hour(e.ts, "rejected")
            else:
                t[e.action.replace("-", "_")] += 1
        elif isinstance(e, ev.QueueExpired):
            t["expired"] += 1
        elif isinstance(e, ev.SaslFailure):
            self.sasl[(e.service, e.method)] += 1
        elif isinstance(e, ev.TlsConnection):
            (self.tls_in if e.direction == "inbound" else self.tls_out)[e.protocol] += 1
        elif isinstance(e, ev.SmtpdConnect):
            t["connects"] += 1
        elif isinstance(e, ev.SmtpdDisconnect):
            t["connections"] += 1
            self.sessions[e.service] += 1
        elif isinstance(e, ev.RemoteReply) and e.blocklist:
            self.blocklisted[e.blocklist] += 1
        elif isinstance(e, ev.LogMessage) and e.level != "info":
            self.problems[(e.level, e.daemon, e.kind)] += 1
        elif isinstance(e, Unparsed):
            self.unparsed[e.daemon] += 1

    def _delivery(self, e: ev.Delivery) -> None:
        t = self.totals
        if e.status == "sent" and e.next_queue_id:
            if e.forwarded:
                t["forwarded"] += 1
                return
            # a content filter answered "queued as QID": a delivery, unless this log shows the QID received
            # again (known at report time), when it is a hand-off within this Postfix
            self.handoffs.setdefault(e.next_queue_id, []).append(hour_of(e.ts))
        if e.provider and e.provider != "internal":
            row = self.attempt_deferrals.get(e.provider)
            if row is None:
                row = self.attempt_deferrals[e.provider] = Counter()
            row[e.status] += 1
        if e.status == "sent":
            t["delivered"] += 1
            self._hour(e.ts, "delivered")
            self.delays.append(e.delay)
            if e.delays is not None:
                for i, v in enumerate(e.delays):
                    self.stage_sums[i] += v
                t["delays_with_stages"] += 1
        elif e.status == "deferred":
            t["deferrals"] += 1
            self.deferrals[e.reason] += 1
            self.deferred_ids.add(e.queue_id)
            self._hour(e.ts, "deferred")
        elif e.status == "bounced":
            t["bounced"] += 1
            self.bounces[e.reason] += 1
            self._hour(e.ts, "bounced")
        if e.blocklist:
            self.blocklisted[e.blocklist] += 1

    def _rspamd(self, e: object) -> None:
        if isinstance(e, RspamdScan):
            self.rspamd_actions[scan_label(e.action, e.forced_by)] += 1
        elif isinstance(e, RspamdError):
            self.rspamd_errors[e.error_class] += 1
        elif isinstance(e, RspamdRepeated) and isinstance(e.previous, RspamdError):
            self.rspamd_errors[e.previous.error_class] += e.count  # lines rspamd collapsed

    # -- the report ------------------------------------------------------------------------------------
    def report(self, sources: SourcesAggregator) -> str:
        out = StringIO()
        w = out.write
        t = self.totals
        w("mailpulse summary\n=================\n\nGrand totals\n------------\n")
        reinjected = self.accepted_ids.keys() & self.handoffs.keys()
        handed_off = sum(len(self.handoffs[qid]) for qid in reinjected)
        received, rejected = t["received"] - len(reinjected), t["rejected"]
        delivered = t["delivered"] - handed_off
        for label, value in (
            ("received", received),
            ("delivered", delivered),
            ("forwarded", t["forwarded"]),
            ("handed on and received again (content filter, next host)", handed_off),
            ("deferred (messages)", len(self.deferred_ids)),
            ("deferrals (attempts)", t["deferrals"]),
            ("bounced", t["bounced"]),
            ("expired", t["expired"]),
            ("rejected", rejected),
            ("reject warnings", t["reject_warning"]),
            ("held", t["hold"] + t["milter_hold"]),
            ("discarded", t["discard"] + t["milter_discard"]),
            ("smtpd connections (completed sessions)", t["connections"]),
        ):
            w(f"  {value:>9}  {label}\n")
        attempts = received + rejected
        if attempts:
            w(f"  {100.0 * rejected / attempts:>8.1f}%  rejected (of received + rejected)\n")
        self._messages(w)
        self._table(w, "Deferrals by reason", self.deferrals)
        self._table(w, "Bounces by reason", self.bounces)
        self._table(w, "Rejects by stage, reason and code", {" / ".join(k): v for k, v in self.rejects.items()})
        self._table(w, "Replies saying we are blocklisted, by provider", self.blocklisted)
        self._delays(w)
        self._hours(w, reinjected)
        self._table(w, "SASL authentication failures by service and mechanism",
                    {" / ".join(k): v for k, v in self.sasl.items()})  # fmt: skip
        self._table(w, "TLS sessions in, by protocol", self.tls_in)
        self._table(w, "TLS sessions out, by protocol", self.tls_out)
        self._table(w, "Warnings, errors, fatal and panic by daemon and kind",
                    {" / ".join(k): v for k, v in self.problems.items()})  # fmt: skip
        self._table(w, "smtpd sessions by service", self.sessions)
        self._table(w, "rspamd actions", self.rspamd_actions)
        self._table(w, "rspamd errors by class", self.rspamd_errors)
        w("\nLines\n-----\n")
        for s in sources.sources.values():
            total = s.parsed + s.unparsed + s.foreign
            w(f"  {s.name}: {total} lines, {s.parsed} parsed, {s.unparsed} unparsed, {s.foreign} from other programs\n")
        if self.unparsed:
            w("  unparsed by daemon: " + ", ".join(f"{d} {n}" for d, n in self.unparsed.most_common()) + "\n")
        if self.totals.keys() & {"received", "delivered", "rejected", "connections"}:
            w(FOOTER)
        return out.getvalue()

    def _messages(self, w: Callable[[str], object]) -> None:
        """Messages, joined by queue ID across re-injection and hops (message tracking)."""
        if self.tracker is None:
            return
        total = sum(self.outcomes.values())
        w("\nMessages (joined by queue ID; a re-injected or relayed copy is the same message)\n")
        w("-------------------------------------------------------------------------------\n")
        w(f"  {total:>9}  finished\n")
        for outcome, n in sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
            w(f"  {n:>9}    {outcome}\n")
        w(f"  {self.tracker.count:>9}  still in the queue at the end of the log (queue files)\n")
        if self.notices:
            w(f"  {sum(self.notices.values()):>9}  notifications Postfix generated (bounces, delay notices)\n")
        if self.transit:
            ordered = sorted(self.transit)
            n = len(ordered)
            w(f"  transit (first accept to final outcome), seconds: p50 {ordered[n // 2]:.1f}  "
              f"p90 {ordered[min(n - 1, int(0.9 * n))]:.1f}  max {ordered[-1]:.1f}\n")  # fmt: skip
        if self.by_provider:
            outcomes = sorted({o for row in self.by_provider.values() for o in row})
            title = "Messages by destination provider and outcome"
            w(f"\n{title}\n{'-' * len(title)}\n  {'provider':<14}" + "".join(f" {o:>10}" for o in outcomes) + "\n")
            for provider, row in sorted(self.by_provider.items(), key=lambda kv: -sum(kv[1].values())):
                w(f"  {provider:<14}" + "".join(f" {row[o]:>10}" for o in outcomes) + "\n")
        if self.attempt_deferrals:
            title = "Delivery attempts by destination provider"
            w(f"\n{title}\n{'-' * len(title)}\n  {'provider':<14} {'sent':>10} {'deferred':>10} {'bounced':>10}"
              f" {'deferred %':>10}\n")  # fmt: skip
            for provider, row in sorted(self.attempt_deferrals.items(), key=lambda kv: -sum(kv[1].values())):
                n = sum(row.values())
                pct = 100.0 * row["deferred"] / n if n else 0.0
                w(f"  {provider:<14} {row['sent']:>10} {row['deferred']:>10} {row['bounced']:>10} {pct:>9.1f}%\n")

    @staticmethod
    def _table(w: Callable[[str], object], title: str, counts: dict[str, int] | Counter[str]) -> None:
        if not counts:
            return
        w(f"\n{title}\n{'-' * len(title)}\n")
        for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            w(f"  {value:>9}  {key}\n")

    def _delays(self, w: Callable[[str], object]) -> None:
        n = len(self.delays)
        if not n:
            return
        ordered = sorted(self.delays)

        def pct(p: float) -> float:
            return ordered[min(n - 1, int(p * n))]

        w("\nDelivery delays (sent), seconds\n-------------------------------\n")
        w(f"  p50 {pct(0.5):.2f}  p90 {pct(0.9):.2f}  p99 {pct(0.99):.2f}  max {ordered[-1]:.2f}  (n={n})\n")
        staged = self.totals["delays_with_stages"]
        if staged:
            names = ("before queue manager", "in queue manager", "connection setup", "transmission")
            means = "  ".join(f"{name} {s / staged:.2f}" for name, s in zip(names, self.stage_sums, strict=True))
            w(f"  mean per stage: {means}\n")

    def _hours(self, w: Callable[[str], object], reinjected: set[str]) -> None:
        if not self.per_hour:
            return
        # the re-injections and hand-offs found at the end come off the hours they were counted in
        per_hour = {hour: c.copy() for hour, c in self.per_hour.items()}
        for qid in reinjected:
            per_hour[self.accepted_ids[qid]]["received"] -= 1
            for hour in self.handoffs[qid]:
                per_hour[hour]["delivered"] -= 1
        w("\nPer hour\n--------\n  hour               received delivered  deferred   bounced  rejected\n")
        for hour, c in per_hour.items():
            w(f"  {hour:<16} {c['received']:>9} {c['delivered']:>9} {c['deferred']:>9} {c['bounced']:>9}"
              f" {c['rejected']:>9}\n")  # fmt: skip
