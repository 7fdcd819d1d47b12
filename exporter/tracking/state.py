"""The tracker's state in ``state_dir/tracking.json``: written atomically, read back at start.

A file that cannot be read or makes no sense is counted (``mailpulse_postfix_tracking_state_errors_total
{reason="corrupt"}``), logged once and ignored: the tracker starts empty, never crashes. The format is
versioned JSON: the step-code table once, then one array per queue file (in flight, and finished ones still
in the query window), parents before children, each naming its parent by position.
"""

from __future__ import annotations

import json
import os
from array import array
from typing import Any

import structlog

from mailpulse.exporter.sources.position import write_atomic
from mailpulse.exporter.tracking.record import CODE_BITS, CODE_MASK, DONE, NOTICE, REMOVED, Msg
from mailpulse.exporter.tracking.tracker import Tracker

log = structlog.get_logger(__name__)

MAGIC = "mailpulse-tracking"
VERSION = 1
FILE_NAME = "tracking.json"


def state_path(state_dir: str) -> str:
    return os.path.join(state_dir, FILE_NAME)


def dump(tracker: Tracker) -> str:
    records: list[Msg] = []
    seen: set[int] = set()
    roots = [m.root() for m in tracker.inflight()] + [root for _, root in tracker.finished]
    for root in roots:
        for m in _tree(root):
            if id(m) not in seen:
                seen.add(id(m))
                records.append(m)
    index = {id(m): i for i, m in enumerate(records)}
    rows = [
        [m.host, m.qid, m.t0, m.mid, m.entry, m.flags, m.delivered, m.bounced, m.deferred, m.attempts,
         m.pending, m.provider, m.step_values(), index.get(id(m.parent), -1) if m.parent is not None else -1]
        for m in records
    ]  # fmt: skip
    finished = [[when, index[id(root)], tracker.outcomes.get(id(root), "unknown")] for when, root in tracker.finished]
    doc = {"magic": MAGIC, "version": VERSION, "now": tracker.now, "codes": tracker.codes.table,
           "messages": rows, "finished": finished}  # fmt: skip
    return json.dumps(doc, separators=(",", ":"))


def _tree(root: Msg) -> list[Msg]:
    out = [root]
    i = 0
    while i < len(out):
        out.extend(out[i].children or ())
        i += 1
    return out


def save(tracker: Tracker, state_dir: str) -> bool:
    try:
        write_atomic(state_path(state_dir), dump(tracker))
    except OSError as exc:
        tracker.metrics.error("write")
        log.warning("cannot save the message tracking state", path=state_path(state_dir),
                    error=exc.strerror or str(exc))  # fmt: skip
        return False
    return True


def load(tracker: Tracker, state_dir: str) -> int:
    """Restore a saved state into an empty tracker; return the queue files restored (0 on a corrupt file)."""
    path = state_path(state_dir)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as exc:
        return _corrupt(tracker, path, str(exc))
    try:
        return _restore(tracker, json.loads(text))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        tracker.hosts.clear()
        tracker.count = 0
        tracker.by_mid.clear()
        tracker.finished.clear()
        tracker.finished_keys.clear()
        return _corrupt(tracker, path, f"{type(exc).__name__}: {exc}")


def _corrupt(tracker: Tracker, path: str, problem: str) -> int:
    tracker.metrics.error("corrupt")
    log.warning("message tracking state is unreadable, starting empty", path=path, problem=problem[:200])
    return 0


def _restore(tracker: Tracker, doc: Any) -> int:
    if not isinstance(doc, dict) or doc.get("magic") != MAGIC or doc.get("version") != VERSION:
        raise ValueError("not a mailpulse tracking state of this version")
    remap = [tracker.codes.code(*(str(x) for x in row)) for row in doc["codes"]]
    records: list[Msg] = []
    inflight = 0
    for row in doc["messages"]:
        host, qid, t0, mid, entry, flags, delivered, bounced, deferred, attempts, pending, provider, steps, parent = row
        m = Msg(str(host), str(qid), float(t0), str(entry))
        m.mid = str(mid) if mid is not None else None
        m.flags, m.delivered, m.bounced, m.deferred = int(flags), int(delivered), int(bounced), int(deferred)
        m.attempts, m.pending, m.provider = int(attempts), int(pending), str(provider)
        m.steps = array("q", ((int(s) >> CODE_BITS) << CODE_BITS | remap[int(s) & CODE_MASK] for s in steps)).tobytes()
        if int(parent) >= 0:
            p = records[int(parent)]
            m.parent = p
            if p.children is None:
                p.children = []
            p.children.append(m)
        records.append(m)
    for m in records:
        host = tracker.hosts.setdefault(m.host, {})
        if not m.flags & DONE:
            if not m.flags & REMOVED:
                host[m.qid] = m
                inflight += 1
            if m.mid is not None:
                tracker.by_mid[m.mid] = m
    for when, i, outcome in doc["finished"]:
        root = records[int(i)]
        tracker.finished.append((float(when), root))
        tracker.outcomes[id(root)] = str(outcome)
        for m in root.journey():
            tracker.finished_keys[(m.host, m.qid)] = m
            if m.mid is not None:
                tracker.by_mid.setdefault(m.mid, m)
    for m in records:  # journeys that ended within their grace when the state was saved
        if not m.flags & DONE and m.pending <= 0 and (m.parent is None or m.flags & NOTICE):
            tracker.settling.append((float(doc["now"]), 0.0, m))
    tracker.count = inflight
    tracker.note_hosts()
    tracker.now = max(tracker.now, float(doc["now"]))
    tracker.metrics.inflight = inflight
    tracker.metrics.finished = len(tracker.finished)
    return inflight
