"""The lab's traffic driver: known traffic in, a JSON report of exactly what was done out.

    from lab.traffic import run
    report = run(Path(lab_dir) / "lab.env")      # or: lab/mail-lab traffic --dir DIR

Deterministic (fixed kinds and counts, see scenarios.KINDS) and bounded in time (every wait has
a timeout; a run takes about 10-20 s, mostly the greylist delay). Report keys: docs/lab.md.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.envfile import LabEnv
from lab.traffic import logs
from lab.traffic.scenarios import KINDS, Record, Sender
from lab.traffic.tracking import Tracker

# Follow-ups need the first delivery attempt first; everything else is settled in one pass.
FOLLOW_UPS = ("greylisted", "expired", "deleted")


class TrafficError(RuntimeError):
    """The lab did not do what the driver expected; the report lists the problems."""


def _expected_ok(rec: Record) -> bool:
    kind, _, folder = rec.expect.partition(":")
    return rec.outcome == kind and (not folder or rec.folder == folder)


def run(
    env_path: Path, scale: int = 1, log: Callable[[str], None] = lambda _m: None, strict: bool = True
) -> dict[str, Any]:
    """Send every kind `scale` times, settle, and return the report (raise TrafficError if strict
    and anything did not turn out as the lab is built to do)."""
    env = LabEnv.load(env_path)
    t0, started = time.monotonic(), dt.datetime.now(dt.UTC)
    run_id = started.strftime("%H%M%S") + os.urandom(2).hex()
    tails = {
        name: logs.LogTail(Path(env[key]))
        for name, key in (("postfix", "LAB_POSTFIX_LOG"), ("rspamd", "LAB_RSPAMD_LOG"), ("dovecot", "LAB_DOVECOT_LOG"))
    }
    # per-host log mode: the other hosts' logs too ("postfix" is the submission host's or the central file)
    for name in env.get("LAB_POSTFIX_INSTANCES").split():
        path = Path(env.get(f"LAB_POSTFIX_{name.upper()}_LOG") or env["LAB_POSTFIX_LOG"])
        if all(path != tail.path for tail in tails.values()):
            tails[f"postfix-{name}"] = logs.LogTail(path)
    sender = Sender(env, run_id)
    sent_at: dict[int, float] = {}
    for kind in KINDS:
        for i in range(kind.per_scale * scale):
            rec = kind.run(sender, i)
            sent_at[id(rec)] = time.monotonic()
    log(f"traffic {run_id}: {len(sender.records)} sessions sent in {time.monotonic() - t0:.1f}s; settling")
    tracker = Tracker(env, tails)
    for rec in sender.records:
        tracker.settle_first_attempt(rec)
    for rec in sender.records:
        if rec.kind == "greylisted":
            tracker.retry_greylisted(rec, sent_at[id(rec)])
        elif rec.kind == "expired":
            tracker.expire(rec)
        elif rec.kind == "deleted":
            tracker.delete(rec)
    ndr_delivered = sum(tracker.ndr_delivered(r) for r in sender.records if r.ndr_queue_id)
    for rec in sender.records:
        rec.rspamd = tracker.verdicts(rec)
        if not _expected_ok(rec):
            tracker.problems.append(
                f"{rec.kind} {rec.queue_id or rec.reply}: expected {rec.expect}, "
                f"got {rec.outcome}{':' + rec.folder if rec.folder else ''}"
            )
    report = _report(
        env,
        run_id,
        started,
        t0=t0,
        tails=tails,
        records=sender.records,
        problems=tracker.problems,
        ndr_delivered=ndr_delivered,
    )
    log(f"traffic {run_id}: done in {report['duration_s']}s, {len(tracker.problems)} problems")
    if strict and tracker.problems:
        raise TrafficError("; ".join(tracker.problems))
    return report


def _report(
    env: LabEnv,
    run_id: str,
    started: dt.datetime,
    *,
    t0: float,
    tails: dict[str, logs.LogTail],
    records: list[Record],
    problems: list[str],
    ndr_delivered: int,
) -> dict[str, Any]:
    verdicts = [v for r in records for v in r.rspamd]
    derived = {
        "accepted": sum(r.queue_id is not None for r in records),
        "delivered_inbox": sum(r.outcome == "delivered" and r.folder == "INBOX" for r in records),
        "delivered_junk": sum(r.outcome == "delivered" and r.folder == "Junk" for r in records),
        "ndr_generated": sum(r.ndr_queue_id is not None for r in records),
        "ndr_delivered": ndr_delivered,
        # NDRs of the sending hosts reach the MX's smtpd and are scanned there; the MX's own are not
        "ndr_scanned": sum(r.ndr_via_mx for r in records),
        "postfix_deferred_attempts": sum(r.postfix_statuses.count("deferred") for r in records),
        "rspamd_verdicts": len(verdicts),
        "rspamd_dkim_signed": sum("DKIM_SIGNED" in v["symbols"] for v in verdicts),
        "rspamd_dkim_allow": sum("R_DKIM_ALLOW" in v["symbols"] for v in verdicts),
        "rspamd_dkim_reject": sum("R_DKIM_REJECT" in v["symbols"] for v in verdicts),
        "rspamd_greylisted": sum("GREYLIST" in v["symbols"] and v["action"] == "soft reject" for v in verdicts),
    }
    return {
        "run_id": run_id,
        "lab_dir": env["LAB_DIR"],
        "port_base": int(env["LAB_PORT_BASE"]),
        "dkim_mode": env.get("LAB_DKIM_MODE", "rspamd"),
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 2),
        # byte ranges of each log written during the run: [log_offsets, log_end_offsets)
        "log_offsets": {name: tail.offset for name, tail in tails.items()},
        "log_end_offsets": {name: tail.size() for name, tail in tails.items()},
        "counts": dict(Counter(r.kind for r in records)),
        "outcomes": dict(Counter(r.outcome or "unsettled" for r in records)),
        "derived": derived,
        "problems": problems,
        "records": [r.as_dict() for r in records],
    }
