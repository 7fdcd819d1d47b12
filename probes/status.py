"""The probes' section of the status page: each probe's state and its last runs, and the mailbox watchers.

The last runs are kept in memory only (:class:`RunHistory`, a few per probe, since the daemon started);
the per-probe state (last success, failures in a row) comes from the metrics, which the state file
restores after a restart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailpulse.exporter.status import Cell, State, StatusSection, Table, age, row, seconds
from mailpulse.probes.config import ProbesConfig
from mailpulse.probes.outcome import ProbeResult

if TYPE_CHECKING:
    from mailpulse.probes.mailbox import MailboxWatcher

RUNS_KEPT = 5  # last runs shown per probe
ERROR_CHARS = 200  # a server's reply is cut here on the page

OUTCOME_STATES = {"delivered": State.OK, "delivered_late": State.WARN, "lost": State.FAIL, "failed": State.FAIL}
AUTH_METHODS = ("dkim", "spf", "dmarc", "arc", "compauth")


@dataclass(frozen=True)
class ProbeState:
    """What the metrics know about one probe (read under the lock)."""

    success: bool
    last_run: float
    last_success: float
    consecutive_failures: int


class RunHistory:
    """The last :data:`RUNS_KEPT` results of each probe; written and read under the shared lock."""

    def __init__(self) -> None:
        self._runs: dict[str, deque[ProbeResult]] = {}

    def add(self, result: ProbeResult) -> None:
        self._runs.setdefault(result.probe, deque(maxlen=RUNS_KEPT)).appendleft(result)

    def keep(self, probes: Iterable[str]) -> None:
        """After a reload: forget probes that left the config."""
        wanted = set(probes)
        for name in [n for n in self._runs if n not in wanted]:
            del self._runs[name]

    def runs(self, probe: str) -> Sequence[ProbeResult]:
        return tuple(self._runs.get(probe, ()))


def _auth(result: ProbeResult) -> Cell:
    stated = result.auth
    if not stated:
        return Cell("-")
    text = " ".join(f"{m}={stated[m]}" for m in AUTH_METHODS if m in stated)
    bad = any(stated.get(m) not in (None, "pass") for m in ("dkim", "spf", "dmarc"))
    return Cell(text, State.WARN if bad else State.OK)


def _placement(result: ProbeResult) -> Cell:
    if result.folder is None:
        return Cell("-")
    shown = {"inbox": "Inbox", "junk": "Junk", "other": f"other ({result.folder_name or '?'})"}[result.folder]
    return Cell(shown, State.OK if result.folder == "inbox" else State.WARN)


def _failure(result: ProbeResult) -> str:
    if result.outcome == "delivered":
        return "-"
    where = f"{result.stage or 'internal'}/{result.reason or 'error'}"
    text = (result.error or "").strip()
    if len(text) > ERROR_CHARS:
        text = text[:ERROR_CHARS] + "…"
    out = f"{where}: {text}" if text else where
    return f"{out}; held: {result.held}" if result.held else out


def _hops(result: ProbeResult) -> Cell:
    """The run's hop timeline from the logs: each hop, where, and how long; why there is none."""
    tl = result.timeline
    if tl is None:
        return Cell("-")
    parts = [f"{h.hop}{' @' + h.host if h.host else ''} {h.seconds:.2f} s" for h in tl.hops]
    text = " → ".join(parts) if parts else ""
    if tl.uncorrelated:
        return Cell(f"{text} ({tl.uncorrelated})" if text else tl.uncorrelated, State.WARN)
    if tl.held is not None and not result.delivered:
        return Cell(f"{text} — held: {tl.held.text}" if text else f"held: {tl.held.text}", State.FAIL)
    return Cell(text or "-")


def _spam(result: ProbeResult) -> str:
    if result.spam_score is None:
        return "-"
    return f"{result.spam_score:g} ({result.spam_engine or '?'})"


def probes_section(config: ProbesConfig, states: dict[str, ProbeState], history: RunHistory,
                   watchers: Sequence[MailboxWatcher], overdue: Sequence[str],
                   now: float) -> StatusSection:  # fmt: skip
    summary, runs = [], []
    for probe in config.probes:
        st = states.get(probe.name)
        if st is None or not st.last_run:
            outcome = Cell("pending", State.UNKNOWN)
        else:
            outcome = Cell("delivered" if st.success else "failing", State.OK if st.success else State.FAIL)
        streak = st.consecutive_failures if st else 0
        late = probe.name in overdue
        summary.append(row(
            probe.name, f"{probe.route} → {probe.target}", outcome,
            Cell(age(st.last_run if st else 0.0, now), State.FAIL if late else None),
            age(st.last_success if st else 0.0, now),
            Cell(str(streak), State.FAIL if streak else None),
            f"every {probe.interval:g} s, deadline {probe.deadline:g} s",
        ))  # fmt: skip
        for r in history.runs(probe.name):
            when = age(r.finished_at, now) if r.finished_at else "-"
            runs.append(row(probe.name, when, Cell(r.outcome, OUTCOME_STATES.get(r.outcome, State.UNKNOWN)),
                            seconds(r.latency_seconds), _placement(r), _auth(r), _spam(r), _failure(r),
                            _hops(r)))  # fmt: skip
    mailboxes = []
    for w in watchers:
        error = w.error
        if w.up:
            state = Cell("up", State.OK)
        else:
            state = Cell("down", State.FAIL) if error is not None else Cell("starting", State.UNKNOWN)
        why = f"{error.reason}: {error}" if error is not None and not w.up else "-"
        mailboxes.append(row(w.name, f"{w.target.host}:{w.target.port}", ", ".join(w.target.folders), state, why))
    tables = (
        Table(("probe", "route → target", "last outcome", "last run", "last success", "failures in a row",
               "schedule"), tuple(summary), caption="Probes", empty="no probes configured"),
        Table(("probe", "finished", "outcome", "latency", "placement", "receiver's auth results", "spam score",
               "failure (stage/reason: detail)", "hops (from the logs)"), tuple(runs),
              caption=f"Last runs (up to {RUNS_KEPT} per probe, newest first, since mailpulse started)",
              empty="no probe has finished a run since mailpulse started"),
        Table(("mailbox watcher", "server", "folders", "state", "problem"), tuple(mailboxes),
              caption="Mailbox watchers", empty="no mailbox watched"),
    )  # fmt: skip
    note = (
        "Latency: from the route's server accepting the message to its arrival in the target mailbox. Hops: "
        "the run's message followed through the tailed Postfix logs (docs/probes.md, hop timelines)."
    )
    return StatusSection("End-to-end probes", tables, note=note)
