"""``mailpulse posture``: run every check once and print a table (or JSON); exit 1 if any fails."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TextIO

from mailpulse.exporter.features.posture.config import PostureConfig
from mailpulse.exporter.features.posture.result import CHECKS, CheckResult
from mailpulse.exporter.features.posture.service import run_once

DESCRIPTION = """\
Run every configured posture check once (all, or those named with --check) and print one line per
target: check, domain, item (selector, MX host, sender), zone, verdict, reason and details.

exit status:
  0   every check passed
  1   at least one check failed or could not reach a verdict
  2   no posture section, or an unknown --check name
  78  invalid config"""


def table(results: Sequence[CheckResult]) -> str:
    rows = [("CHECK", "DOMAIN", "ITEM", "ZONE", "RESULT", "REASON", "DETAIL")]
    order = {c: i for i, c in enumerate(CHECKS)}
    for r in sorted(results, key=lambda r: (order[r.target.check], r.target.domain, r.target.item, r.target.zone)):
        verdict = "ok" if r.ok else ("FAIL" if r.up else "ERROR")
        detail = r.detail + (f" [warning: {'; '.join(r.warnings)}]" if r.warnings else "")
        rows.append((r.target.check, r.target.domain or "-", r.target.item or "-", r.target.zone or "-", verdict,
                     r.reason, detail))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:6], widths, strict=True)) + "  " + row[6] for row in rows]
    failed = sum(not r.ok for r in results)
    lines.append(f"\n{len(results)} checks, {len(results) - failed} ok, {failed} failed")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def run_report(config: PostureConfig | None, checks: Sequence[str], *, as_json: bool, out: TextIO,
               err: TextIO) -> int:  # fmt: skip
    if config is None or (not config.domains and not config.senders):
        err.write("posture: no domains or senders configured\n")
        return 2
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        err.write(f"posture: unknown check {', '.join(unknown)} (known: {', '.join(CHECKS)})\n")
        return 2
    results = asyncio.run(run_once(config, checks))
    if as_json:
        out.write(json.dumps({"results": [r.as_json() for r in results],
                              "ok": all(r.ok for r in results)}, indent=2) + "\n")  # fmt: skip
    else:
        out.write(table(results))
    return 0 if all(r.ok for r in results) else 1
